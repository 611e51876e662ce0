"""The ``Received:`` trace header we prepend to every relayed message.

Pure (RFC 5321 §4.4, RFC 3848 ``with`` types, RFC 8314 §7.4 ``tls`` clause):
facts in, header bytes out. It must not resolve names, read clocks itself,
or touch the message body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

_HELO_SAFE = re.compile(r"[^A-Za-z0-9.\-\[\]:_]")
_IANA_SUITE = re.compile(r"^TLS_[A-Z0-9_]+$")


@dataclass(frozen=True)
class TraceFacts:
    """Everything the header says about one transaction."""

    helo: str
    client_ip: str
    hostname: str
    session_id: str
    esmtp: bool
    tls_version: str | None
    tls_cipher: str | None
    tls_bits: int | None
    recipient: str | None
    when: datetime


def protocol_type(esmtp: bool, tls: bool) -> str:
    """The RFC 3848 ``with`` keyword: SMTP, ESMTP or ESMTPS (no AUTH here)."""
    if not esmtp:
        return "SMTP"
    return "ESMTPS" if tls else "ESMTP"


def _address_literal(ip: str) -> str:
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def _helo_token(helo: str) -> str:
    token = _HELO_SAFE.sub("?", helo.strip())[:64]
    return token or "unknown"


def received_header(facts: TraceFacts) -> bytes:
    """Render the folded header line(s), CRLF-terminated, ready to prepend."""
    tls = facts.tls_version is not None
    parts = [
        f"Received: from {_helo_token(facts.helo)} ({_address_literal(facts.client_ip)})",
    ]
    if tls:
        cipher = facts.tls_cipher or "unknown"
        bits = f" ({facts.tls_bits} bits)" if facts.tls_bits else ""
        parts.append(f"(using {facts.tls_version} with cipher {cipher}{bits})")
    with_clause = f"by {facts.hostname} (mxgate) with {protocol_type(facts.esmtp, tls)}"
    if tls and facts.tls_cipher and _IANA_SUITE.match(facts.tls_cipher):
        with_clause += f" tls {facts.tls_cipher}"
    parts.append(f"{with_clause} id {facts.session_id}")
    last = f"; {format_datetime(facts.when)}"
    if facts.recipient is not None and len(facts.recipient) < 200:
        last = f"for <{facts.recipient}>{last}"
        parts.append(last)
    else:
        parts[-1] += last
    return ("\r\n\t".join(parts) + "\r\n").encode("utf-8")
