"""Render ClusterTLSPolicies into the floors of the gateway policy document.

Floors are rendered before any TLSPolicy and identically into every namespace's document
(the same inputs, the same budget), so one admission per ClusterTLSPolicy holds for all.
They never conflict (every matching floor applies), so only an invalid spec or a full
budget keeps one out. Pure: no I/O, no logging, no clock; the output is a value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from mxgate_gateway.config.model import MAX_DOCUMENT_FLOORS, Floor
from mxgate_operator.spec_cluster import FloorSpec, ParsedFloor

#: Floor ids are ``cluster.mxgate.io/<name>``: a namespace name has no dot, so a floor id
#: can never equal a TLSPolicy's rule id ``<namespace>/<name>``.
FLOOR_PREFIX = "cluster.mxgate.io/"
ACCEPTED, INVALID, OVERFLOW = "Accepted", "InvalidSpec", "Overflow"


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


def to_floor(floor_id: str, spec: FloorSpec) -> Floor:
    """The gateway floor for one parsed spec (scope lists sorted for deterministic bytes)."""
    return Floor.model_validate(
        {
            "id": floor_id,
            "mode": spec.mode,
            "min_tls_version": spec.min_tls_version,
            "refusal": spec.refusal,
            "listener": spec.listener,
            "scope": {
                "recipient_domains": sorted(spec.scope.recipient_domains),
                "sender_domains": sorted(spec.scope.sender_domains),
                "client_cidrs": sorted(spec.scope.client_cidrs),
            },
        }
    )


def _size(floor: Floor) -> int:
    text = json.dumps(
        floor.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return len(text.encode()) + 2  # a comma, and the newline canonical_json adds once


def render_floors(
    policies: Sequence[ClusterPolicyInput],
    budget_bytes: int,
    max_floors: int = MAX_DOCUMENT_FLOORS,
) -> FloorsResult:
    """Every valid ClusterTLSPolicy → a floor, oldest first while ``budget_bytes`` and
    ``max_floors`` (the gateway's limit) allow; the rest are refused with reason Overflow.

    Output is sorted by floor id, so the bytes do not depend on the API server's order.
    """
    used = 0
    floors: list[Floor] = []
    admissions: list[FloorAdmission] = []
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
        admissions.append(
            FloorAdmission(policy.name, ACCEPTED, "rendered as a floor into every gateway policy")
        )
    floors.sort(key=lambda f: f.id)
    admissions.sort(key=lambda a: a.name)
    ordered = tuple(sorted(policies, key=lambda p: p.name))
    return FloorsResult(tuple(floors), used, tuple(admissions), ordered)
