"""Connection admission: a total and a per-client limit, answered ``421 4.7.0``.

``ConnectionLimiter`` counts open connections and decides admission as a value;
the server writes the reply and closes. IPv6 clients are counted per /64 (one
host usually owns the whole prefix). It must not do I/O, log, or sleep.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

REPLY_TOO_MANY: Final = "421 4.7.0 Too many connections, try again later"
REPLY_TOO_MANY_FROM_YOU: Final = "421 4.7.0 Too many connections from your address, try again later"


class Admission(StrEnum):
    """The verdict for one new connection; bounded, so it may label a metric."""

    ADMITTED = "admitted"
    TOTAL_LIMIT = "total_limit"
    PER_IP_LIMIT = "per_ip_limit"

    @property
    def reply(self) -> str | None:
        """The 421 line to send before closing, or None when admitted."""
        if self is Admission.TOTAL_LIMIT:
            return REPLY_TOO_MANY
        if self is Admission.PER_IP_LIMIT:
            return REPLY_TOO_MANY_FROM_YOU
        return None


def client_key(ip: str) -> str:
    """The bucket an address is counted in: the IPv4 address, or the IPv6 /64."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip  # a unix socket path or similar: its own bucket
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof of one admitted connection; give it back with ``release`` exactly once."""

    key: str


class ConnectionLimiter:
    """Counts open connections in total and per client bucket.

    Limits may be changed at runtime (config reload); open connections above a
    lowered limit are not cut, new ones wait until the count drops.
    """

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self._max_total = max_total
        self._max_per_ip = max_per_ip
        self._per_key: Counter[str] = Counter()
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def count(self, ip: str) -> int:
        return self._per_key[client_key(ip)]

    def set_limits(self, max_total: int, max_per_ip: int) -> None:
        self._max_total = max_total
        self._max_per_ip = max_per_ip

    def admit(self, ip: str, *, per_ip: bool = True) -> tuple[Admission, Lease | None]:
        """Admit one connection from ``ip`` if the limits allow; count it if so.

        ``per_ip=False`` is for a trusted load balancer whose PROXY header will name
        the real client (then ``rekey``): only the total limit applies to it.
        """
        key = client_key(ip)
        if self._total >= self._max_total:
            return Admission.TOTAL_LIMIT, None
        if per_ip and self._per_key[key] >= self._max_per_ip:
            return Admission.PER_IP_LIMIT, None
        self._total += 1
        self._per_key[key] += 1
        return Admission.ADMITTED, Lease(key)

    def release(self, lease: Lease) -> None:
        """Forget one admitted connection."""
        if self._per_key[lease.key] <= 0:
            raise ValueError(f"lease for {lease.key!r} released twice")
        self._per_key[lease.key] -= 1
        if self._per_key[lease.key] == 0:
            del self._per_key[lease.key]
        self._total -= 1

    def rekey(self, lease: Lease, ip: str) -> tuple[Admission, Lease | None]:
        """Move a lease to the real client address (after a PROXY header).

        The TCP peer was the load balancer; the per-client limit is checked again
        for ``ip``. On refusal the old lease is released too.
        """
        self.release(lease)
        key = client_key(ip)
        if self._per_key[key] >= self._max_per_ip:
            return Admission.PER_IP_LIMIT, None
        self._total += 1
        self._per_key[key] += 1
        return Admission.ADMITTED, Lease(key)
