"""Render ClusterTLSPolicies into the floors of the gateway policy document.

Floors are rendered before any TLSPolicy and identically into every namespace's document
(the same inputs, the same budget), so one admission per ClusterTLSPolicy holds for all.
They never conflict (every matching floor applies), so only an invalid spec or a full
budget keeps one out. A ClusterTLSPolicy's mtaSts is published under the TLSPolicy rules
(the chart's allowlists, one policy per domain, the older claim wins) but its floor applies
even when the publication is refused: a publication problem never lowers a floor. Its
published domains are claimed before any TLSPolicy's (render_policies), so the
administrator's claim wins. Pure: no I/O, no logging, no clock; the output is a value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from pydantic import ValidationError

from mxgate_gateway.config.model import (
    FLOOR_ID_PREFIX,
    MAX_DOCUMENT_FLOORS,
    MAX_MTA_STS_POLICIES,
    Floor,
    MTASTSPolicy,
)
from mxgate_operator.render.allowed import MTASTSRules
from mxgate_operator.spec import ScopeSpec
from mxgate_operator.spec_cluster import FloorSpec, ParsedFloor

#: Floor ids are ``cluster.mxgate.io/<name>``: a namespace name has no dot, so a floor id
#: can never equal a TLSPolicy's rule id ``<namespace>/<name>``. The prefix lives in the
#: gateway's model, so ``mxgate estimate --policy`` replays a floor under the same id.
FLOOR_PREFIX = FLOOR_ID_PREFIX
ACCEPTED, INVALID, OVERFLOW = "Accepted", "InvalidSpec", "Overflow"
PUBLISHED, MTASTS_CONFLICT, MTASTS_NOT_ALLOWED = "Published", "MTASTSConflict", "MTASTSNotAllowed"


@dataclass(frozen=True)
class ClusterPolicyInput:
    """One ClusterTLSPolicy as the renderer sees it: identity plus the parse outcome."""

    name: str
    uid: str
    generation: int
    parsed: ParsedFloor
    created: str = ""  # metadata.creationTimestamp (RFC 3339 sorts as text)

    @property
    def floor_id(self) -> str:
        return FLOOR_PREFIX + self.name


@dataclass(frozen=True)
class FloorAdmission:
    """Whether one ClusterTLSPolicy made it into the documents, and why (not)."""

    name: str
    reason: str
    message: str
    # spec.mtaSts publication: Published, MTASTSConflict, MTASTSNotAllowed, Overflow ("" if none)
    publication: str = ""
    publication_message: str = ""

    @property
    def accepted(self) -> bool:
        return self.reason == ACCEPTED


@dataclass(frozen=True)
class FloorsResult:
    """The floors every document carries, the bytes they take, one admission per input."""

    floors: tuple[Floor, ...] = ()
    size: int = 0  # bytes the floors take in the canonical document (JSON plus commas)
    admissions: tuple[FloorAdmission, ...] = ()
    inputs: tuple[ClusterPolicyInput, ...] = ()
    # domain -> (floor id, policy): served in every document, claimed before any TLSPolicy
    mta_sts: tuple[tuple[str, tuple[str, MTASTSPolicy]], ...] = ()


def scope_json(scope: ScopeSpec) -> dict[str, list[str]]:
    """A parsed scope as the gateway model takes it, lists sorted for deterministic bytes."""
    return {
        "recipient_domains": sorted(scope.recipient_domains),
        "sender_domains": sorted(scope.sender_domains),
        "client_cidrs": sorted(scope.client_cidrs),
    }


def to_floor(floor_id: str, spec: FloorSpec) -> Floor:
    """The gateway floor for one parsed spec (scope lists sorted for deterministic bytes)."""
    return Floor.model_validate(
        {
            "id": floor_id,
            "mode": spec.mode,
            "priority": spec.priority,
            "min_tls_version": spec.min_tls_version,
            "refusal": spec.refusal,
            "listener": spec.listener,
            "scope": scope_json(spec.scope),
        }
    )


def floor_json(floor: Floor) -> dict[str, object]:
    """A floor as the document carries it: ``priority`` only when set, so a document
    without floor priorities is byte for byte what it was before they existed."""
    data = floor.model_dump(mode="json")
    if data.get("priority") == 0:
        del data["priority"]
    return data


def published_policies(spec: FloorSpec) -> tuple[MTASTSPolicy, ...]:
    """One gateway MTA-STS policy per published domain (recipient domains without '*.')."""
    if spec.mta_sts is None:
        return ()
    m = spec.mta_sts
    domains = sorted(d for d in spec.scope.recipient_domains if not d.startswith("*."))
    return tuple(MTASTSPolicy(domain=d, mode=m.mode, mx=m.mx, max_age=m.max_age) for d in domains)


def _json_size(data: object) -> int:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode()) + 2  # a comma, and the newline canonical_json adds once


def _size(floor: Floor) -> int:
    return _json_size(floor_json(floor))


def render_floors(
    policies: Sequence[ClusterPolicyInput],
    budget_bytes: int,
    max_floors: int = MAX_DOCUMENT_FLOORS,
    mta_sts_rules: MTASTSRules | None = None,
    max_mta_sts: int = MAX_MTA_STS_POLICIES,
) -> FloorsResult:
    """Every valid ClusterTLSPolicy → a floor, oldest first while ``budget_bytes`` and
    ``max_floors`` (the gateway's limit) allow; the rest are refused with reason Overflow.
    An admitted floor's spec.mtaSts is published when ``mta_sts_rules`` allow it, no older
    ClusterTLSPolicy publishes a different policy for its domains and there is room;
    otherwise its ``publication`` says why not (the floor itself still applies).

    Output is sorted by floor id, so the bytes do not depend on the API server's order.
    """
    used = 0
    floors: list[Floor] = []
    admissions: list[FloorAdmission] = []
    publishing = mta_sts_rules or MTASTSRules()
    served: dict[str, tuple[str, MTASTSPolicy]] = {}
    contested: dict[str, list[str]] = {}  # holder name -> later ClusterTLSPolicies refused
    for policy in sorted(policies, key=lambda p: (p.created, p.name)):
        spec = policy.parsed.spec
        if spec is None:
            text = "; ".join(f"{i.path}: {i.message}" for i in policy.parsed.issues)
            admissions.append(FloorAdmission(policy.name, INVALID, text or "invalid spec"))
            continue
        try:
            floor = to_floor(policy.floor_id, spec)
        except ValidationError as exc:
            message = str(exc.errors()[0]["msg"])
            admissions.append(FloorAdmission(policy.name, INVALID, message))
            continue
        size = _size(floor)
        if used + size > budget_bytes or len(floors) + 1 > max_floors:
            admissions.append(
                FloorAdmission(
                    policy.name,
                    OVERFLOW,
                    f"the gateway policy has no room for more floors ({used} of {budget_bytes}"
                    f" bytes, {len(floors)} of {max_floors} floors; this one needs {size}"
                    " bytes); older ClusterTLSPolicies are admitted first",
                )
            )
            continue
        used += size
        floors.append(floor)
        publication, why = "", ""
        if spec.mta_sts is not None:
            publication, why, extra = _publish(
                policy,
                spec,
                rules=publishing,
                served=served,
                contested=contested,
                room=budget_bytes - used,
                max_mta_sts=max_mta_sts,
            )
            used += extra
        admissions.append(
            FloorAdmission(
                policy.name,
                ACCEPTED,
                "rendered as a floor into every gateway policy",
                publication,
                why,
            )
        )
    floors.sort(key=lambda f: f.id)
    admissions = [_contested(a, contested.get(a.name)) for a in admissions]
    admissions.sort(key=lambda a: a.name)
    ordered = tuple(sorted(policies, key=lambda p: p.name))
    mta_sts = tuple(sorted(served.items()))
    return FloorsResult(tuple(floors), used, tuple(admissions), ordered, mta_sts)


def _publish(
    policy: ClusterPolicyInput,
    spec: FloorSpec,
    *,
    rules: MTASTSRules,
    served: dict[str, tuple[str, MTASTSPolicy]],
    contested: dict[str, list[str]],
    room: int,
    max_mta_sts: int,
) -> tuple[str, str, int]:
    """Publish one floor's MTA-STS into ``served``: (publication, message, bytes used)."""
    mine = published_policies(spec)
    domains = tuple(m.domain for m in mine)
    mx = spec.mta_sts.mx if spec.mta_sts is not None else ()
    refused = rules.refusal(domains, mx)
    if refused is not None:
        return MTASTS_NOT_ALLOWED, refused, 0
    clash = next((served[m.domain] for m in mine if served.get(m.domain, ("", m))[1] != m), None)
    if clash is not None:
        holder = clash[0].removeprefix(FLOOR_PREFIX)
        contested.setdefault(holder, []).append(policy.floor_id)
        return (
            MTASTS_CONFLICT,
            f"{clash[0]} already publishes a different MTA-STS policy for a domain in this"
            " policy's scope; one policy per domain (the older claim serves)",
            0,
        )
    new = [m for m in mine if m.domain not in served]
    size = sum(_json_size(m.model_dump(mode="json")) for m in new)
    if size > room or len(served) + len(new) > max_mta_sts:
        return (
            OVERFLOW,
            f"the gateway policy has no room for {len(new)} more MTA-STS domains"
            f" ({size} bytes, {len(served)} of {max_mta_sts} domains)",
            0,
        )
    for m in new:
        served[m.domain] = (policy.floor_id, m)
    return PUBLISHED, f"MTA-STS served for {', '.join(domains)} by every gateway", size


def _contested(admission: FloorAdmission, claimants: list[str] | None) -> FloorAdmission:
    """Show a holder that later ClusterTLSPolicies claimed its MTA-STS domains."""
    if not claimants:
        return admission
    return FloorAdmission(
        admission.name,
        admission.reason,
        admission.message,
        admission.publication,
        f"{admission.publication_message}; a different MTA-STS policy for its domains was"
        f" also claimed by {', '.join(sorted(claimants))} (refused there: the older claim"
        " serves)",
    )


def with_tlspolicy_claims(
    result: FloorsResult, claims: Iterable[tuple[str, tuple[MTASTSPolicy, ...]]]
) -> FloorsResult:
    """``result`` with each publishing ClusterTLSPolicy told which TLSPolicies (rule id, the
    policies they would serve) claim one of its domains with a different policy: those are
    refused with MTASTSConflict (render_policies), so the conflict shows on both objects."""
    served = dict(result.mta_sts)
    contested: dict[str, set[str]] = {}
    for rule_id, policies in claims:
        for m in policies:
            holder = served.get(m.domain)
            if holder is not None and holder[1] != m:
                contested.setdefault(holder[0].removeprefix(FLOOR_PREFIX), set()).add(rule_id)
    if not contested:
        return result
    admissions = tuple(
        _claimed_by_tlspolicies(a, sorted(contested[a.name])) if a.name in contested else a
        for a in result.admissions
    )
    return replace(result, admissions=admissions)


def _claimed_by_tlspolicies(admission: FloorAdmission, rule_ids: list[str]) -> FloorAdmission:
    return replace(
        admission,
        publication_message=f"{admission.publication_message}; TLSPolicy {', '.join(rule_ids)}"
        " also claimed its domains with a different MTA-STS policy (refused there with"
        " MTASTSConflict: a ClusterTLSPolicy's claim wins)",
    )
