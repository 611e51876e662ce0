"""The gateway's configuration contract: typed, immutable, validated snapshots.

This module is the contract the operator renders into (it imports only this
module from the gateway). It parses and validates; it must not read files,
touch the network, log, or import asyncio/aiosmtpd/aiohttp.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_WILDCARD_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --- scalar types -----------------------------------------------------------


def _parse_hostport(value: str) -> str:
    host, port = split_hostport(value)
    if host.startswith("[") or ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def split_hostport(value: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` into (host, port); raise ValueError if malformed."""
    if not isinstance(value, str):
        raise ValueError("must be a string 'host:port'")
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})", value.strip())
    if not m:
        raise ValueError(f"{value!r} is not 'host:port' (use '[::]:port' for IPv6)")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if m.group(1):
        ipaddress.IPv6Address(host)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range 0-65535")
    return host, port


HostPort = Annotated[str, AfterValidator(_parse_hostport)]


def _parse_domain(value: str) -> str:
    v = value.strip().lower()
    if v.endswith("."):
        raise ValueError(f"{value!r}: write domains without a trailing dot")
    if len(v) > 253 or not _DOMAIN_RE.fullmatch(v):
        raise ValueError(f"{value!r} is not a valid domain name")
    return v


def _parse_domain_pattern(value: str) -> str:
    v = value.strip().lower()
    if v.endswith("."):
        raise ValueError(f"{value!r}: write domains without a trailing dot")
    if len(v) > 253 or not _WILDCARD_RE.fullmatch(v):
        raise ValueError(f"{value!r} is not a domain or '*.domain' pattern")
    return v


def _parse_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR network ({exc})") from None


Domain = Annotated[str, AfterValidator(_parse_domain)]
DomainPattern = Annotated[str, AfterValidator(_parse_domain_pattern)]
CIDR = Annotated[str, AfterValidator(_parse_cidr)]
PathStr = Annotated[Path, PlainSerializer(str, return_type=str)]
# The one limit table shared by the gateway (which loads) and the operator (which renders
# at most this, by construction): the policy document is checked against it at render
# time, so whatever the operator writes, every gateway can load.
MAX_MTA_STS_POLICIES = 1000  # per source: the config file's own, and the policy document's
MAX_DOCUMENT_RULES = 10_000  # rules in one operator-rendered policy document
MAX_DOCUMENT_FLOORS = 1_000  # floors (ClusterTLSPolicies) in one operator-rendered document
MAX_POLICY_DOCUMENT_BYTES = 1_048_576  # a ConfigMap's data limit; the operator keeps a margin
# A ClusterTLSPolicy's floor id is this plus its name (a namespace has no dot, so a floor id
# never equals a TLSPolicy's rule id ``<namespace>/<name>``): the operator renders it, and
# ``mxgate estimate --policy`` replays ClusterTLSPolicy YAML under the same id.
FLOOR_ID_PREFIX = "cluster.mxgate.io/"

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9._/-]{0,126}[a-z0-9])?$")]


# --- enums ------------------------------------------------------------------


class Mode(StrEnum):
    """What a policy does to mail that arrives without (enough) TLS."""

    OPPORTUNISTIC = "opportunistic"
    AUDIT = "audit"
    REQUIRE = "require"


class Refusal(StrEnum):
    """How a ``require`` refusal is answered: 5xx bounces, 4xx makes the sender retry."""

    PERMANENT = "permanent"
    TEMPORARY = "temporary"


class TLSVersion(StrEnum):
    TLS1_2 = "1.2"
    TLS1_3 = "1.3"


class Listener(StrEnum):
    """The role of a listener; RFC 3207 §4 constrains ``public-mx``."""

    PUBLIC_MX = "public-mx"
    SUBMISSION = "submission"
    INTERNAL = "internal"


class UpstreamTLS(StrEnum):
    NONE = "none"
    OPPORTUNISTIC = "opportunistic"
    REQUIRED = "required"


class MTASTSMode(StrEnum):
    """RFC 8461 §5 policy modes: what a sending MTA does when TLS to us fails."""

    NONE = "none"
    TESTING = "testing"
    ENFORCE = "enforce"


class BareLineEndings(StrEnum):
    """What to do with a bare CR or LF inside DATA (SMTP smuggling defence)."""

    REJECT = "reject"
    NORMALIZE = "normalize"


# --- sections ---------------------------------------------------------------


class ProxyProtocol(_Frozen):
    """PROXY protocol v1/v2 on the SMTP listener, accepted only from trusted networks."""

    enabled: bool = False
    trusted_networks: tuple[CIDR, ...] = ()
    timeout: float = Field(default=5.0, gt=0, le=60)


class Listen(_Frozen):
    smtp: HostPort = "127.0.0.1:2525"
    http: HostPort = "127.0.0.1:8025"  # admin: /livez /readyz /metrics /report
    # Public HTTP: only the MTA-STS policy and POST /tlsrpt (what an Ingress routes to).
    # Unset: those two routes are served on ``http`` too (a single-listener setup).
    public: HostPort | None = None
    proxy_protocol: ProxyProtocol = ProxyProtocol()


class TLS(_Frozen):
    cert: PathStr
    key: PathStr
    min_version: TLSVersion = TLSVersion.TLS1_2
    handshake_timeout: float = Field(default=30.0, gt=0, le=300)


class Upstream(_Frozen):
    address: HostPort
    tls: UpstreamTLS = UpstreamTLS.OPPORTUNISTIC
    ca_file: PathStr | None = None
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    timeout: float = Field(default=60.0, gt=0, le=900)
    # The wait for the upstream's reply to the final dot. RFC 5321 4.5.3.2.6 gives our
    # sender 10 minutes for it; giving up earlier while the upstream still stores the
    # message makes the sender retry and the recipient get two copies. Stay below 600.
    final_reply_timeout: float = Field(default=540.0, gt=0, le=900)

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> Upstream:
        if self.ca_file is not None and self.tls is UpstreamTLS.NONE:
            raise ValueError("ca_file is set but tls is 'none'")
        return self


class Limits(_Frozen):
    """Protocol limits (RFC 5321 §4.5.3) and timeouts (seconds)."""

    max_message_size: int = Field(default=26_214_400, ge=1024, le=1 << 31)
    max_recipients: int = Field(default=100, ge=100, le=10_000)
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    max_connections_per_ip: int = Field(default=20, ge=1, le=100_000)
    greeting_timeout: float = Field(default=30.0, gt=0, le=600)
    command_timeout: float = Field(default=300.0, gt=0, le=3600)
    data_timeout: float = Field(default=600.0, gt=0, le=3600)
    drain_timeout: float = Field(default=25.0, ge=0, le=3600)
    # The whole session, however busy: a NOOP every few seconds must not hold a slot forever.
    max_session_duration: float = Field(default=1800.0, gt=0, le=86_400)
    # NOOP, RSET, VRFY, EXPN, HELP without a message relayed in between (Postfix's
    # smtpd_junk_command_limit); one more is answered 421 4.7.0 and the session closed.
    junk_command_limit: int = Field(default=100, ge=1, le=100_000)
    # Each HTTP listener (admin, public): open connections (also kept under a quarter of
    # the descriptor limit), seconds to deliver a request's headers, to read and answer it.
    http_max_connections: int = Field(default=256, ge=1, le=100_000)
    http_header_timeout: float = Field(default=10.0, gt=0, le=600)
    http_request_timeout: float = Field(default=30.0, gt=0, le=3600)


class SMTPOptions(_Frozen):
    bare_line_endings: BareLineEndings = BareLineEndings.REJECT
    banner: str = Field(default="ESMTP mxgate", max_length=200)


class Scope(_Frozen):
    """Where a rule applies. Dimensions are ANDed; entries within one are ORed.

    An empty dimension matches everything.
    """

    recipient_domains: tuple[DomainPattern, ...] = ()
    sender_domains: tuple[DomainPattern, ...] = ()
    client_cidrs: tuple[CIDR, ...] = ()

    def is_empty(self) -> bool:
        return not (self.recipient_domains or self.sender_domains or self.client_cidrs)


class _Scoped(_Frozen):
    """The fields a rule and a floor share: what they ask for and whom they apply to."""

    id: RuleId
    mode: Mode
    min_tls_version: TLSVersion = TLSVersion.TLS1_2
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    refusal: Refusal = Refusal.PERMANENT
    listener: Listener | None = None
    scope: Scope

    @field_validator("scope")
    @classmethod
    def _scope_not_empty(cls, scope: Scope) -> Scope:
        if scope.is_empty():
            raise ValueError(
                "scope needs at least one of recipient_domains, sender_domains, client_cidrs"
                " (use policy.mode for the default)"
            )
        return scope


class Rule(_Scoped):
    """One scoped TLS policy rule. ``id`` names it in metrics, logs and the report."""


class Floor(_Scoped):
    """A minimum for every session its scope matches (rendered from a ClusterTLSPolicy).

    The winning rule (or the default) is applied, then raised to every matching floor:
    mode to the strictest (opportunistic < audit < require), minimum TLS to the highest.
    Floors never lower anything and never compete with each other: ``priority`` only says
    which of several floors raising a decision equally it is reported under (and answers with
    the refusal of): the highest priority, then the smallest id.
    """


class Policy(_Frozen):
    """The default mode, scoped rules and floors. Rule and floor ids are unique together."""

    mode: Mode = Mode.OPPORTUNISTIC
    min_tls_version: TLSVersion = TLSVersion.TLS1_2
    refusal: Refusal = Refusal.PERMANENT
    trace_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    rules: tuple[Rule, ...] = ()
    # Minimums no rule can weaken (policy.md, "Floors"); operator-rendered from ClusterTLSPolicies.
    floors: tuple[Floor, ...] = ()

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return rules

    @field_validator("floors")
    @classmethod
    def _unique_floor_ids(cls, floors: tuple[Floor, ...]) -> tuple[Floor, ...]:
        seen: set[str] = set()
        for floor in floors:
            if floor.id in seen:
                raise ValueError(f"duplicate floor id {floor.id!r}")
            seen.add(floor.id)
        return floors

    @model_validator(mode="after")
    def _floor_ids_not_rule_ids(self) -> Policy:
        shared = {r.id for r in self.rules} & {f.id for f in self.floors}
        if shared:
            raise ValueError(f"floor id {sorted(shared)[0]!r} is also a rule id")
        return self


class MTASTSPolicy(_Frozen):
    """One domain's MTA-STS policy (RFC 8461 §3.2), served for ``mta-sts.<domain>``."""

    domain: Domain
    mode: MTASTSMode = MTASTSMode.TESTING
    mx: tuple[DomainPattern, ...] = Field(default=(), max_length=64)
    # RFC 8461 §3.2: at most 31557600 s; §5 recommends weeks; a day is the floor we allow.
    max_age: int = Field(default=604_800, ge=86_400, le=31_557_600)

    @model_validator(mode="after")
    def _mx_unless_none(self) -> MTASTSPolicy:
        if not self.mx and self.mode is not MTASTSMode.NONE:
            raise ValueError("mx needs at least one pattern unless mode is 'none'")
        return self


class TLSRPTSettings(_Frozen):
    """TLS-RPT intake (``POST /tlsrpt``, RFC 8460 §5.3): off unless enabled; sizes in bytes."""

    enabled: bool = False
    max_compressed_bytes: int = Field(default=1_048_576, ge=1024, le=64 << 20)
    max_decompressed_bytes: int = Field(default=8_388_608, ge=1024, le=256 << 20)
    # Per source (client address) and interval: a sender reports once a day per policy
    # domain, so these only stop floods and counter inflation (issue 12.11).
    max_reports_per_source: int = Field(default=100, ge=1, le=1_000_000)
    max_sessions_per_source: int = Field(default=1_000_000_000, ge=1, le=10**12)
    source_interval: float = Field(default=3600.0, gt=0, le=86_400 * 7)
    # Proxies (the Ingress controller) whose X-Forwarded-For names the real source.
    trusted_proxies: tuple[CIDR, ...] = ()

    @model_validator(mode="after")
    def _decompressed_not_smaller(self) -> TLSRPTSettings:
        if self.max_decompressed_bytes < self.max_compressed_bytes:
            raise ValueError("max_decompressed_bytes must be >= max_compressed_bytes")
        return self


class MTASTS(_Frozen):
    """MTA-STS policies to serve (one per domain) and the TLS-RPT intake settings."""

    # Room for the config file's own policies plus the policy document's (each capped).
    policies: tuple[MTASTSPolicy, ...] = Field(default=(), max_length=2 * MAX_MTA_STS_POLICIES)
    tlsrpt: TLSRPTSettings = TLSRPTSettings()

    @field_validator("policies")
    @classmethod
    def _unique_domains(cls, policies: tuple[MTASTSPolicy, ...]) -> tuple[MTASTSPolicy, ...]:
        seen: set[str] = set()
        for policy in policies:
            if policy.domain in seen:
                raise ValueError(f"duplicate MTA-STS policy for domain {policy.domain!r}")
            seen.add(policy.domain)
        return policies


class PolicyDocument(_Frozen):
    """The separate policy file (``--policy FILE``) the operator renders.

    ``rules`` are appended to the main config's rules; ``mode`` (if set)
    replaces the main config's default mode.
    """

    version: Literal[1] = 1
    mode: Mode | None = None
    rules: tuple[Rule, ...] = Field(default=(), max_length=MAX_DOCUMENT_RULES)
    # Floors rendered from ClusterTLSPolicies; appended to the main config's floors. Written
    # only when there are some, so a gateway older than floors still loads a floor-less file.
    floors: tuple[Floor, ...] = Field(default=(), max_length=MAX_DOCUMENT_FLOORS)
    # MTA-STS policies rendered from TLSPolicies; appended to the main config's policies.
    mta_sts_policies: tuple[MTASTSPolicy, ...] = Field(default=(), max_length=MAX_MTA_STS_POLICIES)


class LogSettings(_Frozen):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(_Frozen):
    """A whole gateway configuration snapshot."""

    hostname: Domain
    listener: Listener = Listener.PUBLIC_MX
    listen: Listen = Listen()
    domains: tuple[Domain, ...] = Field(min_length=1)
    tls: TLS | None = None
    upstreams: tuple[Upstream, ...] = Field(min_length=1)
    policy: Policy = Policy()
    limits: Limits = Limits()
    smtp: SMTPOptions = SMTPOptions()
    log: LogSettings = LogSettings()
    mta_sts: MTASTS | None = None

    @field_validator("mta_sts")
    @classmethod
    def _own_policies_capped(cls, value: MTASTS | None) -> MTASTS | None:
        if value is not None and len(value.policies) > MAX_MTA_STS_POLICIES:
            raise ValueError(f"at most {MAX_MTA_STS_POLICIES} MTA-STS policies")
        return value

    def with_policy_document(self, doc: PolicyDocument) -> Config:
        """Merge an operator-rendered policy document into this config (pure).

        A rule or floor id or MTA-STS domain defined in both is an error; at start the
        gateway then serves without the file (reloading.load_for_start).
        """
        rules = self.policy.rules + doc.rules
        floors = self.policy.floors + doc.floors
        policy = Policy.model_validate(
            {
                **self.policy.model_dump(),
                "mode": doc.mode if doc.mode is not None else self.policy.mode,
                "rules": [r.model_dump() for r in rules],
                "floors": [f.model_dump() for f in floors],
            }
        )
        if not doc.mta_sts_policies:
            return self.model_copy(update={"policy": policy})
        base = self.mta_sts if self.mta_sts is not None else MTASTS()
        mta_sts = MTASTS.model_validate(
            {
                **base.model_dump(),
                "policies": [p.model_dump() for p in base.policies + doc.mta_sts_policies],
            }
        )
        return self.model_copy(update={"policy": policy, "mta_sts": mta_sts})
