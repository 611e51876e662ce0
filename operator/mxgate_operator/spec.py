"""Parse a TLSPolicy (metadata.name + spec) into typed objects with field-path issues.

Mirrors the CRD exactly: its OpenAPI bounds (constants below; a test compares them
with the CRD file) and every CEL rule (same message text). Pure: never touches the
API, never logs; an invalid spec is a value (`Parsed.issues`), not an exception.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from mxgate_gateway.config.model import Listener, Mode, Refusal, TLSVersion
from mxgate_operator.checks import Checker, Issue
from mxgate_operator.spec_mtasts import (
    MSG_MTASTS_DOMAINS,
    MSG_MTASTS_MX,
    MTASTSSpec,
    check_published_domains,
    parse_mtasts,
    parse_tlsrpt,
)

DOMAIN_PATTERN = (
    r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
)
HOST_PATTERN = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
ISSUER_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
GROUP_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DURATION_PATTERN = r"^([0-9]{1,5}(h|m|s)){1,3}$"
# address/bits only: no netmask or hostmask form, no zone, no bare address, decimal bits.
CIDR_SHAPE = r"[0-9A-Fa-f:.]+/(0|[1-9][0-9]?|1[01][0-9]|12[0-8])"
MAX_SCOPE_ITEMS = 64
MAX_DNS_NAMES = 16
MAX_NAME = 63
PRIORITY_BOUND = 1_000_000

MSG_NAME = (
    "metadata.name must be at most 63 characters"
    " (it becomes part of the rule id <namespace>/<name>)"
)
MSG_REQUIRE_CERT = (
    "mode 'require' needs spec.certificate: STARTTLS must be offered before it can be required"
)
MSG_SCOPE = "scope needs at least one of recipientDomains, senderDomains, clientCIDRs"
MSG_CIDR = "must be a CIDR network like 192.0.2.0/24 with no host bits set"
MSG_DURATION_MIN = "duration must be at least 1h"
MSG_RENEW_MIN = "renewBefore must be at least 5m"
MSG_RENEW_LT = "renewBefore must be shorter than duration (default 2160h)"
MSG_RSA = "RSA key size must be 2048, 3072 or 4096"
MSG_ECDSA = "ECDSA key size must be 256, 384 or 521"
MSG_ED25519 = "Ed25519 keys have no size"
DEFAULT_DURATION = "2160h"
# The spec.mtaSts / spec.tlsRpt CEL messages live in spec_mtasts; listed with the rest here.
_MTASTS_MESSAGES = (MSG_MTASTS_MX, MSG_MTASTS_DOMAINS)
T = TypeVar("T")


@dataclass(frozen=True)
class IssuerRef:
    name: str
    kind: str = "Issuer"
    group: str = "cert-manager.io"


@dataclass(frozen=True)
class PrivateKey:
    algorithm: str = "ECDSA"
    size: int | None = None


@dataclass(frozen=True)
class CertificateSpec:
    """What the cert-manager Certificate for a listener must look like."""

    issuer_ref: IssuerRef
    dns_names: tuple[str, ...]
    private_key: PrivateKey = PrivateKey()
    duration: str | None = None
    renew_before: str | None = None


@dataclass(frozen=True)
class ScopeSpec:
    recipient_domains: tuple[str, ...] = ()
    sender_domains: tuple[str, ...] = ()
    client_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class TLSPolicySpec:
    mode: Mode
    scope: ScopeSpec
    listener: Listener = Listener.PUBLIC_MX
    min_tls_version: TLSVersion = TLSVersion.TLS1_2
    priority: int = 0
    refusal: Refusal = Refusal.PERMANENT
    certificate: CertificateSpec | None = None
    mta_sts: MTASTSSpec | None = None  # spec.mtaSts (RFC 8461), see spec_mtasts
    tlsrpt_rua: tuple[str, ...] = ()  # spec.tlsRpt.rua (RFC 8460)


@dataclass(frozen=True)
class Parsed:
    """A parse outcome: ``spec`` when valid, otherwise every ``issue`` found."""

    spec: TLSPolicySpec | None
    issues: tuple[Issue, ...] = ()


def go_duration_seconds(value: str) -> int:
    """Seconds in a ``DURATION_PATTERN`` duration such as ``2160h`` or ``1h30m``."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)(h|m|s)", value))


@dataclass(frozen=True)
class SharedSpec:
    """The spec fields TLSPolicy and ClusterTLSPolicy (spec_cluster) share, parsed and checked."""

    mode: Mode
    scope: ScopeSpec
    listener: Listener
    min_tls_version: TLSVersion
    refusal: Refusal
    priority: int
    mta_sts: MTASTSSpec | None
    tlsrpt_rua: tuple[str, ...]


def parse_shared(
    c: Checker, s: Mapping[str, object], after_scope: Callable[[str | None], T]
) -> tuple[SharedSpec | None, T]:
    """Parse mode, listener, minTLSVersion, refusal, priority, scope, mtaSts and tlsRpt.

    ``after_scope(mode)`` runs between scope and mtaSts (TLSPolicy's certificate), so issues
    keep the order the API server reports them in. The spec is ``None`` once ``c`` holds any issue.
    """
    mode = c.string("spec.mode", s.get("mode"), enum=[m.value for m in Mode])
    if "mode" not in s:
        c.add("spec.mode", "Required value")
    listener = c.string(
        "spec.listener", s.get("listener"), default="public-mx", enum=[x.value for x in Listener]
    )
    tls = c.string("spec.minTLSVersion", s.get("minTLSVersion"), default="1.2", enum=["1.2", "1.3"])
    refusal = c.string(
        "spec.refusal", s.get("refusal"), default="permanent", enum=[r.value for r in Refusal]
    )
    bound = PRIORITY_BOUND
    priority = c.integer("spec.priority", s.get("priority"), default=0, lo=-bound, hi=bound)
    if "scope" not in s:
        c.add("spec.scope", "Required value")
    scope = parse_scope(c, s.get("scope"))
    extra = after_scope(mode)
    mta_sts, rua = parse_mtasts(c, s), parse_tlsrpt(c, s)
    check_published_domains(c, s)
    if c.issues or mode is None or listener is None or tls is None or refusal is None:
        return None, extra
    shared = SharedSpec(
        mode=Mode(mode),
        scope=scope,
        listener=Listener(listener),
        min_tls_version=TLSVersion(tls),
        refusal=Refusal(refusal),
        priority=priority,
        mta_sts=mta_sts,
        tlsrpt_rua=rua,
    )
    return shared, extra


def parse_policy(name: str, spec: object) -> Parsed:
    """Parse and validate one TLSPolicy exactly as the API server would, plus its CEL rules."""
    c = Checker()
    if len(name) > MAX_NAME:
        c.add("(root)", MSG_NAME)
    if spec is None:
        c.add("spec", "Required value")
        return Parsed(None, tuple(c.issues))
    s = c.mapping("spec", spec)

    def certificate(mode: str | None) -> CertificateSpec | None:
        parsed = _certificate(c, s.get("certificate")) if "certificate" in s else None
        if mode == Mode.REQUIRE and "certificate" not in s:
            c.add("spec", MSG_REQUIRE_CERT)
        return parsed

    shared, cert = parse_shared(c, s, certificate)
    if shared is None:
        return Parsed(None, tuple(c.issues))
    return Parsed(
        TLSPolicySpec(
            mode=shared.mode,
            scope=shared.scope,
            listener=shared.listener,
            min_tls_version=shared.min_tls_version,
            priority=shared.priority,
            refusal=shared.refusal,
            certificate=cert,
            mta_sts=shared.mta_sts,
            tlsrpt_rua=shared.tlsrpt_rua,
        )
    )


def parse_scope(c: Checker, raw: object) -> ScopeSpec:
    """spec.scope, shared with ClusterTLSPolicy (spec_cluster)."""
    s = c.mapping("spec.scope", raw)

    def domain(path: str, v: object) -> str | None:
        return c.string(path, v, max_length=253, pattern=DOMAIN_PATTERN)

    def cidr(path: str, v: object) -> str | None:
        text = c.string(path, v, max_length=43)
        if text is None:
            return None
        if not re.fullmatch(CIDR_SHAPE, text):  # CEL isCIDR (Go netip.ParsePrefix) is strict
            c.add(path, MSG_CIDR)
            return None
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError:
            c.add(path, MSG_CIDR)
            return None
        if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped:
            c.add(path, MSG_CIDR)  # CEL's cidr() refuses IPv4-mapped IPv6 (::ffff:0:0/96)
            return None
        return text

    scope = ScopeSpec(
        recipient_domains=c.string_set(
            "spec.scope.recipientDomains",
            s.get("recipientDomains"),
            max_items=MAX_SCOPE_ITEMS,
            item=domain,
        ),
        sender_domains=c.string_set(
            "spec.scope.senderDomains",
            s.get("senderDomains"),
            max_items=MAX_SCOPE_ITEMS,
            item=domain,
        ),
        client_cidrs=c.string_set(
            "spec.scope.clientCIDRs", s.get("clientCIDRs"), max_items=MAX_SCOPE_ITEMS, item=cidr
        ),
    )
    raw_lists = [s.get(k) for k in ("recipientDomains", "senderDomains", "clientCIDRs")]
    if raw is not None and not any(isinstance(v, list) and v for v in raw_lists):
        c.add("spec.scope", MSG_SCOPE)
    return scope


def _certificate(c: Checker, raw: object) -> CertificateSpec:
    s = c.mapping("spec.certificate", raw)
    ref = c.mapping("spec.certificate.issuerRef", s.get("issuerRef"))
    if "issuerRef" not in s:
        c.add("spec.certificate.issuerRef", "Required value")
    elif "name" not in ref:
        c.add("spec.certificate.issuerRef.name", "Required value")
    issuer = IssuerRef(
        name=c.string(
            "spec.certificate.issuerRef.name",
            ref.get("name"),
            max_length=253,
            pattern=ISSUER_PATTERN,
        )
        or "",
        kind=c.string(
            "spec.certificate.issuerRef.kind",
            ref.get("kind"),
            default="Issuer",
            enum=["Issuer", "ClusterIssuer"],
        )
        or "Issuer",
        group=c.string(
            "spec.certificate.issuerRef.group",
            ref.get("group"),
            default="cert-manager.io",
            max_length=253,
            pattern=GROUP_PATTERN,
        )
        or "cert-manager.io",
    )
    if "dnsNames" not in s:
        c.add("spec.certificate.dnsNames", "Required value")
    dns_names = c.string_set(
        "spec.certificate.dnsNames",
        s.get("dnsNames"),
        max_items=MAX_DNS_NAMES,
        min_items=1 if "dnsNames" in s else 0,
        item=lambda p, v: c.string(p, v, max_length=253, pattern=HOST_PATTERN),
    )
    key = _private_key(c, s.get("privateKey"))
    duration = c.string(
        "spec.certificate.duration", s.get("duration"), max_length=20, pattern=DURATION_PATTERN
    )
    renew = c.string(
        "spec.certificate.renewBefore",
        s.get("renewBefore"),
        max_length=20,
        pattern=DURATION_PATTERN,
    )
    if duration is not None and go_duration_seconds(duration) < 3600:
        c.add("spec.certificate", MSG_DURATION_MIN)
    if renew is not None and go_duration_seconds(renew) < 300:
        c.add("spec.certificate", MSG_RENEW_MIN)
    if renew is not None and go_duration_seconds(renew) >= go_duration_seconds(
        duration or DEFAULT_DURATION
    ):
        c.add("spec.certificate", MSG_RENEW_LT)
    return CertificateSpec(issuer, dns_names, key, duration, renew)


def _private_key(c: Checker, raw: object) -> PrivateKey:
    path = "spec.certificate.privateKey"
    s = c.mapping(path, raw)
    algorithm = c.string(
        f"{path}.algorithm", s.get("algorithm"), default="ECDSA", enum=["RSA", "ECDSA", "Ed25519"]
    )
    size = c.integer(f"{path}.size", s.get("size"), default=None, lo=256, hi=8192)
    has_size = "size" in s
    if algorithm == "RSA" and has_size and size not in (2048, 3072, 4096):
        c.add(path, MSG_RSA)
    if algorithm == "ECDSA" and has_size and size not in (256, 384, 521):
        c.add(path, MSG_ECDSA)
    if algorithm == "Ed25519" and has_size:
        c.add(path, MSG_ED25519)
    return PrivateKey(algorithm or "ECDSA", size if has_size else None)
