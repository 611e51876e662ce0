"""Compute a ClusterTLSPolicy's status (Accepted, StandardsCompliant, Ready, and with
spec.mtaSts / spec.tlsRpt MTASTSRecordsRendered plus status.mtaSts) and its events.

The same condition rules as a TLSPolicy's (render/status.py): lastTransitionTime moves
only when a condition's status changes and events come only on transitions, so re-running
with the same inputs changes nothing. The records are rendered by render/mtasts.py, the
very code a TLSPolicy's are. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mxgate_gateway.config.model import Listener, Mode
from mxgate_operator.render.floors import (
    ACCEPTED,
    PUBLISHED,
    ClusterPolicyInput,
    FloorAdmission,
)
from mxgate_operator.render.mtasts import MTASTSView, mtasts_view
from mxgate_operator.render.status import (
    RFC3207_MESSAGE,
    Event,
    StatusResult,
    conditions_and_events,
)
from mxgate_operator.spec import TLSPolicySpec
from mxgate_operator.spec_cluster import FloorSpec


def _publication_view(
    spec: FloorSpec, admission: FloorAdmission, previous: Mapping[str, Any]
) -> MTASTSView | None:
    """status.mtaSts and MTASTSRecordsRendered, rendered exactly as a TLSPolicy's records."""
    if spec.mta_sts is None and not spec.tlsrpt_rua:
        return None
    as_policy = TLSPolicySpec(
        mode=spec.mode,
        scope=spec.scope,
        listener=spec.listener,
        min_tls_version=spec.min_tls_version,
        priority=spec.priority,
        refusal=spec.refusal,
        mta_sts=spec.mta_sts,
        tlsrpt_rua=spec.tlsrpt_rua,
    )
    view = mtasts_view(as_policy, None, previous)
    if view is None:
        return None
    # No certificate of its own: the chart's allowlists checked every mx (render_floors).
    conditions = {"MTASTSRecordsRendered": view.conditions["MTASTSRecordsRendered"]}
    if spec.mta_sts is not None and admission.publication != PUBLISHED:
        conditions = {
            "MTASTSRecordsRendered": (
                "False",
                admission.publication,
                f"{admission.publication_message}; this floor still applies",
            )
        }
        return MTASTSView((), {}, conditions, changed=False)
    if admission.publication_message and spec.mta_sts is not None:
        status, reason, message = conditions["MTASTSRecordsRendered"]
        conditions["MTASTSRecordsRendered"] = (
            status,
            reason,
            f"{message}; {admission.publication_message}",
        )
    return MTASTSView(view.policies, view.status, conditions, view.changed)


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
    mta = _publication_view(spec, admission, previous) if spec and admission.accepted else None
    if mta is not None:
        wanted.update(mta.conditions)
        published = mta.conditions["MTASTSRecordsRendered"]
        if published[0] == "False":  # the floor applies; what it publishes does not
            wanted["Ready"] = ("False", published[1], published[2])
    # Its conditions are Accepted, StandardsCompliant, Ready, MTASTSRecordsRendered: of
    # NORMAL_EVENTS only Ready applies (a floor has no CertificateReady).
    conditions, events = conditions_and_events(
        wanted,
        previous,
        policy.generation,
        now,
        warn=("Accepted", "StandardsCompliant", "MTASTSRecordsRendered"),
    )
    status_out: dict[str, Any] = {
        "observedGeneration": policy.generation,
        "floorId": policy.floor_id,
        "conditions": conditions,
    }
    if mta is not None and mta.status:
        status_out["mtaSts"] = mta.status
        if mta.changed:
            message = wanted["MTASTSRecordsRendered"][2]
            events.append(Event("Normal", "MTASTSRecordsChanged", message[:1024]))
    return StatusResult(status_out, tuple(events))
