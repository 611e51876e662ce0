"""Per-connection and per-transaction state of one SMTP session.

Plain mutable holders owned by one ``EdgeSMTP`` protocol instance. They
must not do I/O; the server fills them in, the handler reads and updates them.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING

from mxgate_gateway.config.model import Config
from mxgate_gateway.replies import Reply
from mxgate_gateway.smtp.addresses import Path
from mxgate_gateway.tls.contexts import TLSFacts

if TYPE_CHECKING:
    from mxgate_gateway.relay.client import UpstreamTransaction
    from mxgate_gateway.relay.outcome import RelayOutcome


@dataclass(frozen=True, slots=True)
class Close:
    """A handler's answer that ends the session: send ``reply``, then close."""

    reply: Reply


def new_session_id() -> str:
    """A short random id naming the session in logs and the Received header."""
    return secrets.token_hex(8).upper()


def new_queue_id() -> str:
    """A short random id naming one accepted message (``Queued as``, Received, logs)."""
    return secrets.token_hex(6).upper()


def parse_peer(peer: object) -> IPv4Address | IPv6Address:
    """The client IP from a transport's ``peername`` (unknown peers become 0.0.0.0).

    An IPv4 client of a dual-stack listener (``::ffff:a.b.c.d``) is its IPv4 address,
    so limits, policy CIDRs, logs and the Received line see one form.
    """
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        try:
            addr = ip_address(peer[0].split("%", 1)[0])
        except ValueError:
            pass
        else:
            if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
                return addr.ipv4_mapped
            return addr
    return IPv4Address("0.0.0.0")  # noqa: S104 - a placeholder value, never bound


@dataclass
class Connection:
    """What we know about one client connection; survives the STARTTLS reset."""

    config: Config
    client_ip: IPv4Address | IPv6Address
    session_id: str = field(default_factory=new_session_id)
    started: float = field(default_factory=time.monotonic)
    helo: str = ""
    esmtp: bool = False
    tls: TLSFacts | None = None
    transactions: int = 0
    messages_relayed: int = 0
    protocol_errors: int = 0
    junk_commands: int = 0  # since the last relayed message (commands.JUNK)
    closed: bool = False

    @property
    def tls_version(self) -> str | None:
        return self.tls.version if self.tls else None


@dataclass
class Transaction:
    """One MAIL..DATA transaction: the envelope (one name per field) plus its live upstream."""

    sender: Path | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    recipients: list[str] = field(default_factory=list)
    upstream: UpstreamTransaction | None = None
    upstream_failure: RelayOutcome | None = None
    queue_id: str = ""  # set when DATA is relayed: one id per message
    verdict: str = ""  # the policy's action for this message (MAIL, or a stricter RCPT)
    policy_rule: str = ""

    @property
    def active(self) -> bool:
        return self.sender is not None
