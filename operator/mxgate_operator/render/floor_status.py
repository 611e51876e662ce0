"""Compute a ClusterTLSPolicy's status (Accepted, StandardsCompliant, Ready) and its events.

The same condition rules as a TLSPolicy's (render/status.py): lastTransitionTime moves
only when a condition's status changes and events come only on transitions, so re-running
with the same inputs changes nothing. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mxgate_gateway.config.model import Listener, Mode
from mxgate_operator.render.floors import ACCEPTED, ClusterPolicyInput, FloorAdmission
from mxgate_operator.render.status import RFC3207_MESSAGE, Event, StatusResult


def floor_status(
    *,
    policy: ClusterPolicyInput,
    admission: FloorAdmission,
    previous: Mapping[str, Any],
    now: str,
) -> StatusResult:
    """The status of one ClusterTLSPolicy (Accepted, StandardsCompliant, Ready) and the
    events its transitions deserve; re-running with the same inputs changes nothing."""
    spec = policy.parsed.spec
    if admission.accepted:
        accepted = ("True", ACCEPTED, admission.message)
        ready = ("True", "Ready", "every gateway policy the operator writes carries this floor")
    else:
        accepted = ("False", admission.reason, admission.message)
        ready = ("False", "NotAccepted", admission.message)
    if spec is None:
        compliant = ("Unknown", "NotAccepted", "the spec is invalid")
    elif spec.mode is Mode.REQUIRE and spec.listener is Listener.PUBLIC_MX:
        compliant = ("False", "RequireOnPublicMX", RFC3207_MESSAGE)
    else:
        compliant = ("True", "Compliant", "no standard is violated by this floor")
    wanted = {"Accepted": accepted, "StandardsCompliant": compliant, "Ready": ready}
    old = {c.get("type"): c for c in previous.get("conditions") or []}
    conditions = []
    events: list[Event] = []
    for ctype, (status, reason, message) in wanted.items():
        prior = old.get(ctype) or {}
        changed = prior.get("status") != status
        conditions.append(
            {
                "type": ctype,
                "status": status,
                "reason": reason,
                "message": message[:32768],
                "observedGeneration": policy.generation,
                "lastTransitionTime": now if changed else prior.get("lastTransitionTime", now),
            }
        )
        bad = status == "False" and ctype in ("Accepted", "StandardsCompliant")
        if bad and (changed or prior.get("reason") != reason):
            events.append(Event("Warning", reason, message[:1024]))
        if ctype == "Ready" and status == "True" and changed:
            events.append(Event("Normal", "Ready", message[:1024]))
    status_out = {
        "observedGeneration": policy.generation,
        "floorId": policy.floor_id,
        "conditions": conditions,
    }
    return StatusResult(status_out, tuple(events))
