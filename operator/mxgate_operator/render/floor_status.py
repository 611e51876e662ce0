"""Compute a ClusterTLSPolicy's status (Accepted, StandardsCompliant, Ready, and with
spec.mtaSts / spec.tlsRpt MTASTSRecordsRendered plus status.mtaSts; status.observed, its
counts summed over every namespace's gateways) and its events.

The same condition rules as a TLSPolicy's (render/status.py): lastTransitionTime moves
only when a condition's status changes and events come only on transitions, so re-running
with the same inputs changes nothing. The records are rendered by render/mtasts.py, the
very code a TLSPolicy's are. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mxgate_gateway.config.model import Listener, Mode
from mxgate_gateway.report.document import ReportDocument
from mxgate_operator.render.floors import (
    ACCEPTED,
    PUBLISHED,
    ClusterPolicyInput,
    FloorAdmission,
)
from mxgate_operator.render.mtasts import MTASTSView, mtasts_view
from mxgate_operator.render.status import (
    RFC3207_MESSAGE,
    Effect,
    Event,
    StatusResult,
    conditions_and_events,
    effects_from_reports,
    observed_field,
)
from mxgate_operator.spec import TLSPolicySpec
from mxgate_operator.spec_cluster import FloorSpec

#: The note for a namespace of the report pass whose reports were not read at all.
NOT_READ = "no report read this pass (the namespace's reconcile stopped before reading /report)"
NO_NAMESPACE = "no namespace to read gateway reports for"


@dataclass(frozen=True)
class NamespaceReads:
    """What one namespace's report reconcile read: (source, document) per gateway that
    answered, and why any did not (the very note a TLSPolicy there gets)."""

    documents: tuple[tuple[str, ReportDocument], ...] = ()
    message: str = ""


def floor_effects(
    reads: Mapping[str, NamespaceReads | None], floor_ids: Sequence[str], now: str
) -> dict[str, Effect]:
    """Each floor's rolling-window counters summed over every namespace's gateways: a floor
    is in every namespace's document, and a gateway counts what it decided under the floor's
    id (``cluster.mxgate.io/<name>``), so the sum is the floor's effect fleet-wide.

    A gateway read for several namespaces (the same source: fixed report URLs) counts once.
    Each namespace's note (unreadable gateways, none found; ``None``: nothing read) is kept,
    naming the namespaces it came from. The Effect has a TLSPolicy's exact shape and window.
    """
    documents: dict[str, ReportDocument] = {}
    notes: dict[str, list[str]] = {}
    for namespace in sorted(reads):
        read = reads[namespace] or NamespaceReads(message=NOT_READ)
        for source, document in read.documents:
            documents.setdefault(source, document)
        if read.message:
            notes.setdefault(read.message, []).append(namespace)
    message = "; ".join(
        f"{note} (namespace{'s' if len(names) > 1 else ''} {', '.join(names)})"
        for note, names in notes.items()
    )
    if not reads:
        message = NO_NAMESPACE
    return effects_from_reports(list(documents.values()), floor_ids, now, message)


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
    effect: Effect | None = None,
) -> StatusResult:
    """The status of one ClusterTLSPolicy (Accepted, StandardsCompliant, Ready) and the
    events its transitions deserve; re-running with the same inputs changes nothing.

    ``effect`` (floor_effects) becomes status.observed exactly as a TLSPolicy's does; None
    (not a report pass) keeps the previous one.
    """
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
    observed = observed_field(effect, previous)
    if observed:
        status_out["observed"] = observed
    return StatusResult(status_out, tuple(events))
