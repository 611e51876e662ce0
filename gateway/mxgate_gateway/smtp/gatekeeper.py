"""Before the greeting: connection limits and, from trusted balancers, the PROXY header.

``Gatekeeper.admit`` decides whether a new connection may be greeted and who the
client really is; the result is a ``Gate`` value the server acts on (greet, or
send ``reply`` and close). It must not write to the socket, log, or touch
sessions after admission; ``release`` gives the connection's slot back.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mxgate_gateway.config.model import Config, Limits
from mxgate_gateway.smtp.limits import Admission, ConnectionLimiter, Lease
from mxgate_gateway.smtp.proxy_protocol import (
    IPAddress,
    Malformed,
    Reason,
    is_trusted,
    read_proxy_header,
)

REFUSED_PROXY: Final = "proxy_"  # prefix of refusal labels for PROXY problems


@dataclass(frozen=True, slots=True)
class Gate:
    """Admission of one connection. ``refused`` is a bounded label (metric-safe)."""

    client_ip: IPAddress | None = None  # the real client; None when refused
    lease: Lease | None = None
    reply: str | None = None  # sent before closing when refused; None: just close
    refused: str | None = None

    @property
    def admitted(self) -> bool:
        return self.refused is None


class Gatekeeper:
    """Shared by all sessions of one gateway; limits follow the current config."""

    def __init__(self, limits: Limits, on_refused: Callable[[str], None] | None = None) -> None:
        self.limiter = ConnectionLimiter(limits.max_connections, limits.max_connections_per_ip)
        self.on_refused = on_refused

    def configure(self, limits: Limits) -> None:
        """Apply a reloaded config's limits (proxy settings come with each admit)."""
        self.limiter.set_limits(limits.max_connections, limits.max_connections_per_ip)

    async def admit(self, config: Config, peer: IPAddress, reader: asyncio.StreamReader) -> Gate:
        """Count the connection; from a trusted peer read the PROXY header first.

        Limits and proxy settings come from ``config``, the snapshot the session
        started with, so a reload applies to the next connection.
        """
        self.configure(config.limits)
        proxy = config.listen.proxy_protocol
        trusted = proxy.enabled and is_trusted(str(peer), proxy.trusted_networks)
        verdict, lease = self.limiter.admit(str(peer), per_ip=not trusted)
        if lease is None:
            return self.refuse(verdict.value, verdict.reply)
        if not trusted:
            return Gate(peer, lease)
        try:
            async with asyncio.timeout(proxy.timeout):
                header = await read_proxy_header(reader)
        except TimeoutError:
            header = Malformed(Reason.TIMEOUT)
        except BaseException:  # cancelled (connection lost): give the slot back
            self.limiter.release(lease)
            raise
        if isinstance(header, Malformed):
            self.limiter.release(lease)
            return self.refuse(REFUSED_PROXY + header.reason.value, None)
        if header.source is None:  # LOCAL / UNKNOWN: the balancer itself is the client
            return Gate(peer, lease)
        client = _unmap(header.source[0])
        verdict, lease = self.limiter.rekey(lease, str(client))
        if lease is None:
            return self.refuse(verdict.value, verdict.reply)
        return Gate(client, lease)

    def release(self, gate: Gate) -> None:
        if gate.lease is not None:
            self.limiter.release(gate.lease)

    def refuse(self, label: str, reply: str | None = None) -> Gate:
        """Count a refusal (bounded ``label``) and return the refusing Gate."""
        if self.on_refused is not None:
            self.on_refused(label)
        return Gate(reply=reply, refused=label)


def _unmap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def refusal_labels() -> tuple[str, ...]:
    """Every label ``on_refused`` can get, for pre-creating metric series."""
    limits = tuple(a.value for a in Admission if a is not Admission.ADMITTED)
    return (*limits, *(REFUSED_PROXY + r.value for r in Reason), REFUSED_PROXY + "untrusted")
