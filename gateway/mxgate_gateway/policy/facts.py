"""What the policy engine knows about an SMTP session: the facts a decision depends on.

Plain values the SMTP handler fills in (client address, negotiated TLS version,
listener role) plus small pure helpers to normalise them. This module must not
read sockets, SSL objects or config files; the handler extracts facts, we only model them.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from mxgate_gateway.config.model import Listener, TLSVersion
from mxgate_gateway.negotiated import tls_label

#: The value written for a plaintext session (trace header, report keys).
PLAINTEXT = "none"

_RANKS: dict[str, tuple[int, int]] = {
    "TLSv1": (1, 0),
    "TLSv1.1": (1, 1),
    "TLSv1.2": (1, 2),
    "TLSv1.3": (1, 3),
}
_MIN_RANKS: dict[TLSVersion, tuple[int, int]] = {
    TLSVersion.TLS1_2: (1, 2),
    TLSVersion.TLS1_3: (1, 3),
}


@dataclass(frozen=True)
class SessionFacts:
    """One session as the policy sees it.

    ``tls_version`` is the protocol name Python's ``ssl`` reports
    (``"TLSv1.2"``, ``"TLSv1.3"``) or ``None`` while the session is plaintext.
    """

    client_ip: IPv4Address | IPv6Address
    tls_version: str | None
    listener: Listener

    @property
    def is_plaintext(self) -> bool:
        return self.tls_version is None

    def meets(self, minimum: TLSVersion) -> bool:
        """True when the session's TLS is at least ``minimum`` (plaintext never is)."""
        if self.tls_version is None:
            return False
        # Unknown protocol names rank lowest: never satisfy a minimum by accident.
        return _RANKS.get(self.tls_version, (0, 0)) >= _MIN_RANKS[minimum]

    @property
    def client_address(self) -> IPv4Address | IPv6Address:
        """The client address, with IPv4-mapped IPv6 (``::ffff:a.b.c.d``) unwrapped."""
        ip = self.client_ip
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        return ip


def normalize_domain(domain: str | None) -> str | None:
    """Lower-case a domain and drop one trailing dot; empty means no domain (``None``)."""
    if domain is None:
        return None
    d = domain.strip().lower()
    if d.endswith("."):
        d = d[:-1]
    return d or None


def domain_of(address: str | None) -> str | None:
    """The domain of a mailbox (``user@Example.ORG`` → ``example.org``).

    The null reverse-path (``""`` or ``"<>"``) and an address without ``@`` have none.
    """
    if address is None:
        return None
    a = address.strip()
    if a.startswith("<") and a.endswith(">"):
        a = a[1:-1]
    if "@" not in a:
        return None
    return normalize_domain(a.rsplit("@", 1)[1])


def trace_header_value(facts: SessionFacts) -> str:
    """The trace header's value: the TLS version (``TLSv1.3``) or ``none`` for plaintext."""
    return tls_label(facts.tls_version)
