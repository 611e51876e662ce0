"""Pure rendering of MTA-STS policies and the DNS records a domain owner publishes.

Renders RFC 8461 §3.2 policy text, a stable policy id (§3.1) and the TXT record values
for ``_mta-sts.<domain>`` and ``_smtp._tls.<domain>`` (RFC 8460 §3). Shared by the
gateway (serving) and the operator (status), so both agree byte for byte. It must not
do I/O, log, or import asyncio/aiohttp.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mxgate_gateway.config.model import MTASTSPolicy

__all__ = [
    "POLICY_PATH",
    "DNSRecords",
    "TXTRecord",
    "dns_records",
    "mx_matches",
    "pattern_covered_by",
    "policy_host",
    "policy_id",
    "render_policy",
    "sts_txt_record",
    "tlsrpt_txt_record",
    "validate_rua",
]

POLICY_PATH = "/.well-known/mta-sts.txt"
CRLF = "\r\n"
_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
# RFC 8460 §3: "mailto:" or "https:" URIs; "," and ";" must be percent-encoded.
_RUA_RE = re.compile(r"^(mailto:[^\s,;@]+@[^\s,;@]+|https://[^\s,;/]+(/[^\s,;]*)?)$")


def render_policy(policy: MTASTSPolicy) -> str:
    """The policy file body, field by field as RFC 8461 §3.2 shows it, CRLF-terminated.

    ``version`` first, then ``mode``, one ``mx`` line per pattern in configured order,
    then ``max_age``. ``mode: none`` policies keep their mx lines if any were given.
    """
    lines = ["version: STSv1", f"mode: {policy.mode.value}"]
    lines += [f"mx: {pattern}" for pattern in policy.mx]
    lines.append(f"max_age: {policy.max_age}")
    return CRLF.join(lines) + CRLF


def policy_id(text: str) -> str:
    """A stable id for a policy text: 32 hex digits of its SHA-256 (RFC 8461 §3.1 syntax).

    Equal texts give equal ids; any change to the text changes the id, which tells
    senders to fetch the policy again.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def sts_txt_record(id_: str) -> str:
    """The ``_mta-sts.<domain>`` TXT value announcing policy ``id_`` (RFC 8461 §3.1)."""
    if not _ID_RE.fullmatch(id_):
        raise ValueError(f"{id_!r} is not 1-32 alphanumerics (RFC 8461 §3.1)")
    return f"v=STSv1; id={id_}"


def validate_rua(uri: str) -> str:
    """Return ``uri`` if it is a TLS-RPT reporting URI we can publish; else ValueError."""
    if not _RUA_RE.fullmatch(uri):
        raise ValueError(
            f"{uri!r} is not a 'mailto:user@host' or 'https://host/path' URI"
            " without spaces, ',' or ';' (RFC 8460 §3)"
        )
    return uri


def tlsrpt_txt_record(rua: Sequence[str]) -> str:
    """The ``_smtp._tls.<domain>`` TXT value sending reports to ``rua`` (RFC 8460 §3)."""
    if not rua:
        raise ValueError("rua needs at least one URI")
    return "v=TLSRPTv1; rua=" + ",".join(validate_rua(u) for u in rua)


def policy_host(domain: str) -> str:
    """The HTTPS host that serves ``domain``'s policy (RFC 8461 §3.3)."""
    return f"mta-sts.{domain}"


@dataclass(frozen=True, slots=True)
class TXTRecord:
    """One DNS TXT record to publish: owner name (absolute, with dot) and value."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class DNSRecords:
    """What a domain owner publishes for one domain, and what we serve."""

    domain: str
    policy_id: str
    policy_text: str
    policy_url: str
    mta_sts: TXTRecord
    tlsrpt: TXTRecord | None


def dns_records(policy: MTASTSPolicy, rua: Sequence[str] = ()) -> DNSRecords:
    """Everything to publish for ``policy``; the TLS-RPT record only when ``rua`` is given."""
    text = render_policy(policy)
    id_ = policy_id(text)
    domain = policy.domain
    tlsrpt = TXTRecord(f"_smtp._tls.{domain}.", tlsrpt_txt_record(rua)) if rua else None
    return DNSRecords(
        domain=domain,
        policy_id=id_,
        policy_text=text,
        policy_url=f"https://{policy_host(domain)}{POLICY_PATH}",
        mta_sts=TXTRecord(f"_mta-sts.{domain}.", sts_txt_record(id_)),
        tlsrpt=tlsrpt,
    )


def mx_matches(pattern: str, host: str) -> bool:
    """Does MX ``host`` match policy ``pattern`` (RFC 8461 §4.1)?

    A leading ``*.`` stands for exactly one label; comparison ignores case and a
    trailing dot on the host.
    """
    pattern = pattern.lower()
    host = host.lower().removesuffix(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return host == pattern


def pattern_covered_by(pattern: str, dns_names: Iterable[str]) -> bool:
    """Is every host that mx ``pattern`` admits also named by a certificate dnsName?

    A plain pattern is covered by an equal dnsName or a wildcard dnsName matching it;
    a ``*.`` pattern only by the same wildcard dnsName (RFC 6125 §6.4.3 semantics).
    """
    pattern = pattern.lower()
    names = [n.lower().removesuffix(".") for n in dns_names]
    if pattern.startswith("*."):
        return pattern in names
    return any(n == pattern or (n.startswith("*.") and mx_matches(n, pattern)) for n in names)
