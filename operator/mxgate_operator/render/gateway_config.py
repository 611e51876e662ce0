"""Render every TLSPolicy of a namespace into one canonical gateway policy document.

prometheus-operator's pattern: validate each policy, skip the invalid and the
conflicting with a reason, sort so identical inputs give identical bytes, hash the
bytes. Pure: no I/O, no logging, no Kubernetes client; the output is a value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import ValidationError

from mxgate_gateway.config.model import (
    MAX_DOCUMENT_RULES,
    MAX_MTA_STS_POLICIES,
    MAX_POLICY_DOCUMENT_BYTES,
    MTASTSPolicy,
    PolicyDocument,
    Rule,
)
from mxgate_operator.render.allowed import CertificateRules, MTASTSRules
from mxgate_operator.render.floors import (
    ClusterPolicyInput,
    FloorsResult,
    floor_json,
    render_floors,
    scope_json,
)
from mxgate_operator.render.mtasts import gateway_policies, published_domains
from mxgate_operator.spec import CertificateSpec, Parsed, TLSPolicySpec


class Reason(StrEnum):
    """Why a policy is (not) part of the rendered document; used as condition reasons."""

    ACCEPTED = "Accepted"
    INVALID = "InvalidSpec"
    CONFLICT = "Conflict"
    CERTIFICATE_CONFLICT = "CertificateConflict"  # a CertificateReady reason, never Accepted
    MTASTS_CONFLICT = "MTASTSConflict"
    OVERFLOW = "Overflow"
    CERTIFICATE_NOT_ALLOWED = "CertificateNotAllowed"
    MTASTS_NOT_ALLOWED = "MTASTSNotAllowed"


# The default budget for policy.json: three quarters of what a ConfigMap can hold, so the
# object (metadata, annotations, managedFields) stays far below the API server's limit.
DEFAULT_BUDGET_BYTES = MAX_POLICY_DOCUMENT_BYTES * 3 // 4
# {"mta_sts_policies":[],"rules":[],"version":1} plus the trailing newline.
_DOCUMENT_OVERHEAD = 64
_FLOORS_KEY = 16  # "floors":[], when there are floors


@dataclass(frozen=True)
class Budget:
    """How much one rendered policy document may hold (the gateway's limits, by construction)."""

    bytes: int = DEFAULT_BUDGET_BYTES
    rules: int = MAX_DOCUMENT_RULES
    mta_sts_policies: int = MAX_MTA_STS_POLICIES

    def __post_init__(self) -> None:
        if not 0 < self.bytes <= MAX_POLICY_DOCUMENT_BYTES:
            raise ValueError(f"budget must be 1..{MAX_POLICY_DOCUMENT_BYTES} bytes")


def floor_room(budget: Budget | None = None) -> int:
    """Bytes of the budget floors may take: floors are admitted before any TLSPolicy."""
    return (budget or Budget()).bytes - _DOCUMENT_OVERHEAD - _FLOORS_KEY


def floors_within(
    policies: Sequence[ClusterPolicyInput], budget: Budget, mta_sts_rules: MTASTSRules
) -> FloorsResult:
    """The ClusterTLSPolicies' floors sized to ``budget``: its floor room and MTA-STS count."""
    return render_floors(
        policies,
        floor_room(budget),
        mta_sts_rules=mta_sts_rules,
        max_mta_sts=budget.mta_sts_policies,
    )


@dataclass(frozen=True)
class PolicyInput:
    """One TLSPolicy as the renderer sees it: identity plus the parse outcome."""

    namespace: str
    name: str
    uid: str
    generation: int
    parsed: Parsed
    created: str = ""  # metadata.creationTimestamp (RFC 3339 sorts as text)

    @property
    def rule_id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Admission:
    """Whether one policy made it into the document, and why (not)."""

    rule_id: str
    reason: Reason
    message: str

    @property
    def accepted(self) -> bool:
        return self.reason is Reason.ACCEPTED


@dataclass(frozen=True)
class RenderResult:
    """The rendered document, its canonical bytes and hash, and one admission per policy."""

    document: PolicyDocument
    text: str
    config_hash: str
    admissions: tuple[Admission, ...]
    accepted: tuple[PolicyInput, ...]
    # rule id -> why its certificate request is not served (its rule still applies)
    certificate_conflicts: Mapping[str, str] = field(default_factory=dict)

    def admission(self, rule_id: str) -> Admission:
        return next(a for a in self.admissions if a.rule_id == rule_id)


def to_rule(rule_id: str, spec: TLSPolicySpec) -> Rule:
    """The gateway rule for one parsed spec (scope lists sorted for deterministic bytes)."""
    return Rule.model_validate(
        {
            "id": rule_id,
            "mode": spec.mode,
            "min_tls_version": spec.min_tls_version,
            "priority": spec.priority,
            "refusal": spec.refusal,
            "listener": spec.listener,
            "scope": scope_json(spec.scope),
        }
    )


def canonical_json(data: object) -> str:
    """Sorted keys, no insignificant whitespace, one trailing newline: stable bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def sha256_hex(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _conflict_key(rule: Rule) -> tuple[object, ...]:
    s = rule.scope
    return (rule.listener, rule.priority, s.recipient_domains, s.sender_domains, s.client_cidrs)


def _verdict(rule: Rule) -> tuple[str, str, str]:
    return (rule.mode.value, rule.min_tls_version.value, rule.refusal.value)


def _contested(admission: Admission, claimants: list[str] | None) -> Admission:
    """Show a holder that later policies claimed its MTA-STS domains (never silently)."""
    if not claimants or not admission.accepted:
        return admission
    return Admission(
        admission.rule_id,
        admission.reason,
        f"{admission.message}; a different MTA-STS policy for its domains was also claimed by"
        f" {', '.join(sorted(claimants))} (refused there: the older claim serves)",
    )


def _size(model: Rule | MTASTSPolicy) -> int:
    """Bytes one entry takes in the canonical document (its JSON plus a comma)."""
    return len(canonical_json(model.model_dump(mode="json")).encode())


def render_policies(
    policies: Sequence[PolicyInput],
    budget: Budget | None = None,
    certificates: CertificateRules | None = None,
    mta_sts_rules: MTASTSRules | None = None,
    floors: FloorsResult | None = None,
) -> RenderResult:
    """All policies of a namespace → one document; invalid or conflicting ones are skipped.

    Conflicts go to the oldest policy (creationTimestamp, then rule id, as in the
    Gateway API), so a new policy cannot unseat a running one; output is sorted by
    rule id, so the bytes do not depend on the order the API server listed them in.
    Policies are admitted oldest first until ``budget`` (bytes, rules, MTA-STS domains:
    the gateway's own limits) is reached; the rest are refused with reason Overflow, so
    whatever is rendered, every gateway can load. ``floors`` (rendered from
    ClusterTLSPolicies by ``render_floors`` within ``floor_room(budget)``) go into the
    document first and take their bytes from the same budget; the MTA-STS domains they
    publish are claimed before any TLSPolicy's, so a TLSPolicy publishing a different
    policy for one of them is refused (MTASTSConflict): the administrator's claim wins.
    """
    limit = budget or Budget()
    allowed = certificates or CertificateRules()
    publishing = mta_sts_rules or MTASTSRules()
    contested: dict[str, list[str]] = {}  # holder rule id -> refused later claimants
    floor_list = floors.floors if floors is not None else ()
    used = _DOCUMENT_OVERHEAD + ((_FLOORS_KEY + floors.size) if floor_list and floors else 0)
    admissions: list[Admission] = []
    rules: list[Rule] = []
    accepted: list[PolicyInput] = []
    seen_scope: dict[tuple[object, ...], Rule] = {}
    listener_cert: dict[str, tuple[str, CertificateSpec]] = {}
    # domain -> (owner rule or floor id, policy); ClusterTLSPolicies' claims come first
    mta_sts: dict[str, tuple[str, MTASTSPolicy]] = dict(floors.mta_sts if floors else ())
    cert_conflicts: dict[str, str] = {}
    for policy in sorted(policies, key=lambda p: (p.created, p.rule_id)):
        rid = policy.rule_id
        spec = policy.parsed.spec
        if spec is None:
            text = "; ".join(f"{i.path}: {i.message}" for i in policy.parsed.issues)
            admissions.append(Admission(rid, Reason.INVALID, text or "invalid spec"))
            continue
        try:
            rule = to_rule(rid, spec)
        except ValidationError as exc:
            admissions.append(Admission(rid, Reason.INVALID, str(exc.errors()[0]["msg"])))
            continue
        other = seen_scope.get(_conflict_key(rule))
        if other is not None and _verdict(other) != _verdict(rule):
            admissions.append(
                Admission(
                    rid,
                    Reason.CONFLICT,
                    f"same listener, scope and priority as {other.id} but a different"
                    " mode/minTLSVersion/refusal; give one of them another priority",
                )
            )
            continue
        mine = gateway_policies(spec)
        if spec.mta_sts is not None:
            why = publishing.refusal(published_domains(spec), spec.mta_sts.mx)
            if why is not None:
                admissions.append(Admission(rid, Reason.MTASTS_NOT_ALLOWED, why))
                continue
        clash = next(
            (mta_sts[m.domain] for m in mine if mta_sts.get(m.domain, (rid, m))[1] != m), None
        )
        if clash is not None:
            contested.setdefault(clash[0], []).append(rid)
            admissions.append(
                Admission(
                    rid,
                    Reason.MTASTS_CONFLICT,
                    f"{clash[0]} already publishes a different MTA-STS policy for a domain"
                    " in this policy's scope; one policy per domain",
                )
            )
            continue
        refused = allowed.refusal(spec.certificate) if spec.certificate is not None else None
        if refused is not None:
            admissions.append(Admission(rid, Reason.CERTIFICATE_NOT_ALLOWED, refused))
            continue
        new_domains = [m for m in mine if m.domain not in mta_sts]
        size = _size(rule) + sum(_size(m) for m in new_domains)
        full = (
            used + size > limit.bytes
            or len(rules) + 1 > limit.rules
            or len(mta_sts) + len(new_domains) > limit.mta_sts_policies
        )
        if full:
            admissions.append(
                Admission(
                    rid,
                    Reason.OVERFLOW,
                    f"the gateway policy is full ({used} of {limit.bytes} bytes,"
                    f" {len(rules)} of {limit.rules} rules, {len(mta_sts)} of"
                    f" {limit.mta_sts_policies} MTA-STS domains; this policy needs {size} bytes"
                    f" and {len(new_domains)} domains); older policies are admitted first",
                )
            )
            continue
        used += size
        if spec.certificate is not None:  # the request is judged apart from the rule
            owner = listener_cert.setdefault(spec.listener.value, (rid, spec.certificate))
            if owner[1] != spec.certificate:
                cert_conflicts[rid] = (
                    f"listener {spec.listener.value} already has a different certificate"
                    f" from {owner[0]} (the oldest request wins); this policy's rule applies,"
                    " its certificate request does not"
                )
        seen_scope.setdefault(_conflict_key(rule), rule)
        for m in mine:
            mta_sts.setdefault(m.domain, (rid, m))
        rules.append(rule)
        accepted.append(policy)
        admissions.append(Admission(rid, Reason.ACCEPTED, "rendered into the gateway policy"))
    rules.sort(key=lambda r: r.id)
    admissions = [_contested(a, contested.get(a.rule_id)) for a in admissions]
    admissions.sort(key=lambda a: a.rule_id)
    accepted.sort(key=lambda p: p.rule_id)
    served = tuple(m for _, (_, m) in sorted(mta_sts.items()))
    document = PolicyDocument(
        version=1, rules=tuple(rules), mta_sts_policies=served, floors=floor_list
    )
    # Only what the operator renders: new optional sections of the model stay out of the bytes
    # (a gateway older than floors still loads a document without them).
    keys = (
        {"version", "rules"}
        | ({"mta_sts_policies"} if served else set())
        | ({"floors"} if floor_list else set())
    )
    data = document.model_dump(mode="json", include=keys)
    if floor_list:
        data["floors"] = [floor_json(f) for f in floor_list]
    text = canonical_json(data)
    if len(text.encode()) > limit.bytes:  # the estimate above is an upper bound
        raise AssertionError(f"rendered {len(text.encode())} bytes past budget {limit.bytes}")
    return RenderResult(
        document, text, sha256_hex(text), tuple(admissions), tuple(accepted), cert_conflicts
    )
