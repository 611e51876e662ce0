"""Compute a TLSPolicy's status (conditions, certificate, observed effect) and its events.

Conditions have the metav1.Condition shape; lastTransitionTime moves only when a
condition's status changes, and events (Warning on trouble, Normal for Ready and an issued
certificate) are produced only on transitions,
so re-running with the same inputs changes nothing. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mxgate_gateway.config.model import Listener, Mode
from mxgate_gateway.report.document import ReportDocument
from mxgate_operator.render.certificates import CertificatePlan, CertificateState
from mxgate_operator.render.gateway_config import Admission
from mxgate_operator.render.mtasts import mtasts_view
from mxgate_operator.spec import TLSPolicySpec

RFC3207_MESSAGE = (
    "mode require on listener public-mx: a publicly referenced MX must not require STARTTLS"
    " (RFC 3207 §4); senders without TLS cannot deliver. Measure the cost with mode audit first"
    " (see `mxgate report`), and prefer MTA-STS for senders that support it."
)


# Normal events on a transition to True (issue 16 item 7), besides the Warnings.
NORMAL_EVENTS = {"Ready": "Ready", "CertificateReady": "CertificateIssued"}


@dataclass(frozen=True)
class Effect:
    """A policy's observed effect over the gateways' rolling window, summed over the reports read.

    ``window_minutes`` is the window the counts cover (the reports' ``window_minutes``;
    0 when no report was read). Counts come from each report's ``window``, never from
    ``since_start``, so a restarted pod drops only its own share of the last hour instead
    of resetting a lifetime total (issue 16 item 7).
    """

    gateways: int
    matched: int
    plaintext: int
    refused: int
    would_refuse: int
    updated_at: str
    message: str = ""
    window_minutes: int = 0

    @property
    def basis(self) -> str:
        """The stated window, in words, for ``status.observed.message``."""
        if not self.gateways:
            return ""
        return (
            f"last {self.window_minutes} minutes, summed over the {self.gateways}"
            f" gateway(s) that answered"
        )


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to post on the policy."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class StatusResult:
    status: dict[str, Any]
    events: tuple[Event, ...]


def conditions_and_events(
    wanted: Mapping[str, tuple[str, str, str]],
    previous: Mapping[str, Any],
    generation: int,
    now: str,
    *,
    warn: tuple[str, ...],
) -> tuple[list[dict[str, Any]], list[Event]]:
    """The metav1.Conditions for ``wanted`` (type -> status, reason, message) and the events
    their transitions deserve; shared with a ClusterTLSPolicy's status (floor_status).

    lastTransitionTime moves only when a condition's status changes. A Warning comes when a
    ``warn`` type is False with a new status or reason; a Normal (NORMAL_EVENTS) when a type
    turns True, except CertificateReady's NotRequested.
    """
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
                "observedGeneration": generation,
                "lastTransitionTime": now if changed else prior.get("lastTransitionTime", now),
            }
        )
        bad = status == "False" and ctype in warn
        if bad and (changed or prior.get("reason") != reason):
            events.append(Event("Warning", reason, message[:1024]))
        good = NORMAL_EVENTS.get(ctype) if status == "True" and changed else None
        if good is not None and (ctype != "CertificateReady" or reason != "NotRequested"):
            events.append(Event("Normal", good, message[:1024]))
    return conditions, events


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1)


def observed_status(effect: Effect) -> dict[str, Any]:
    """Counts, plus percentages only when the policy matched something (0 of 0 is not 0 %)."""
    out: dict[str, Any] = {
        "gateways": effect.gateways,
        "matched": effect.matched,
        "plaintext": effect.plaintext,
        "refused": effect.refused,
        "wouldRefuse": effect.would_refuse,
        "updatedAt": effect.updated_at,
    }
    if effect.window_minutes:
        out["windowMinutes"] = effect.window_minutes
    if effect.matched:
        out["plaintextPercent"] = _percent(effect.plaintext, effect.matched)
        out["wouldRefusePercent"] = _percent(effect.refused + effect.would_refuse, effect.matched)
    message = "; ".join(m for m in (effect.basis, effect.message) if m)
    if message:
        out["message"] = message[:1024]
    return out


def _certificate_condition(
    admission: Admission, plan: CertificatePlan | None, state: CertificateState | None
) -> tuple[str, str, str]:
    if not admission.accepted:
        return "Unknown", "NotAccepted", "the policy is not accepted"
    if plan is None:
        return "True", "NotRequested", "no spec.certificate; the gateway's own TLS material serves"
    if state is None or state.ready is None:
        reason = state.reason if state else "Pending"
        return "Unknown", reason or "Pending", (state.message if state else "") or "pending"
    status = "True" if state.ready else "False"
    return status, state.reason or "Unknown", state.message or f"Certificate {plan.name}"


def policy_status(
    *,
    generation: int,
    rule_id: str,
    admission: Admission,
    spec: TLSPolicySpec | None,
    config_hash: str,
    plan: CertificatePlan | None,
    cert_state: CertificateState | None,
    effect: Effect | None,
    previous: Mapping[str, Any],
    now: str,
) -> StatusResult:
    """The whole status for one policy, given what the reconciler observed.

    ``effect=None`` keeps the previous observed effect (no fresh report this round).
    """
    accepted = (
        ("True", "Accepted", admission.message)
        if admission.accepted
        else ("False", admission.reason.value, admission.message)
    )
    cert = _certificate_condition(admission, plan, cert_state)
    if spec is None:
        compliant = ("Unknown", "NotAccepted", "the spec is invalid")
    elif spec.mode is Mode.REQUIRE and spec.listener is Listener.PUBLIC_MX:
        compliant = ("False", "RequireOnPublicMX", RFC3207_MESSAGE)
    else:
        compliant = ("True", "Compliant", "no standard is violated by this policy")
    if accepted[0] != "True":
        ready = ("False", "NotAccepted", admission.message)
    elif cert[0] != "True":
        ready = ("False", "CertificateNotReady", cert[2])
    else:
        ready = ("True", "Ready", "rendered into the gateway policy")
    wanted = {
        "Accepted": accepted,
        "CertificateReady": cert,
        "StandardsCompliant": compliant,
        "Ready": ready,
    }
    mta = mtasts_view(spec, plan, previous) if admission.accepted else None
    if mta is not None:  # MTA-STS / TLS-RPT (issue 8): two more conditions, status.mtaSts
        wanted.update(mta.conditions)
    conditions, events = conditions_and_events(
        wanted, previous, generation, now, warn=("Accepted", "StandardsCompliant")
    )
    status_out: dict[str, Any] = {
        "observedGeneration": generation,
        "ruleId": rule_id,
        "conditions": conditions,
    }
    if admission.accepted:
        # The hash of the document this generation was rendered into: kept while the
        # policy's own rule is unchanged, so one edit does not rewrite every status.
        same = previous.get("observedGeneration") == generation
        status_out["configHash"] = (previous.get("configHash") if same else None) or config_hash
    if plan is not None:
        certificate: dict[str, Any] = {"name": plan.name, "secretName": plan.secret_name}
        if cert_state is not None and cert_state.not_after:
            certificate["notAfter"] = cert_state.not_after
        status_out["certificate"] = certificate
    if mta is not None:
        status_out["mtaSts"] = mta.status
        if mta.changed:
            events.append(
                Event("Normal", "MTASTSRecordsChanged", wanted["MTASTSRecordsRendered"][2][:1024])
            )
    observed = observed_field(effect, previous)
    if observed:
        status_out["observed"] = observed
    return StatusResult(status_out, tuple(events))


def observed_field(effect: Effect | None, previous: Mapping[str, Any]) -> dict[str, Any] | None:
    """``status.observed`` of a TLSPolicy or a ClusterTLSPolicy: ``effect`` rendered, or the
    previous one when only ``updatedAt`` would change (no write per report tick) or when
    ``effect`` is None (no report read this round)."""
    if effect is None:
        kept = previous.get("observed")
        return dict(kept) if isinstance(kept, Mapping) and kept else None
    return _unless_same_counts(observed_status(effect), previous)


def _unless_same_counts(observed: dict[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """The previous ``observed`` when only ``updatedAt`` would change (no write per tick)."""
    before = previous.get("observed")
    if isinstance(before, Mapping):
        same = {k: v for k, v in before.items() if k != "updatedAt"} == {
            k: v for k, v in observed.items() if k != "updatedAt"
        }
        if same:
            return dict(before)
    return observed


def effects_from_reports(
    reports: Sequence[ReportDocument], rule_ids: Sequence[str], now: str, message: str = ""
) -> dict[str, Effect]:
    """Sum each rule's rolling-window counters over several gateway ``/report`` documents.

    The window is the gateways' own (``window_minutes``, 60 by default); should the
    reports disagree, the longest is stated.
    """
    minutes = max((r.window_minutes for r in reports), default=0)
    out: dict[str, Effect] = {}
    for rid in rule_ids:
        sums = [0, 0, 0, 0]
        for report in reports:
            counts = rule_counts(report, rid)
            sums = [a + b for a, b in zip(sums, counts, strict=True)]
        matched, plaintext, refused, would = sums
        out[rid] = Effect(len(reports), matched, plaintext, refused, would, now, message, minutes)
    return out


def rule_counts(report: ReportDocument, rule_id: str) -> tuple[int, int, int, int]:
    """(matched, plaintext, refused, would_refuse) for one rule in one ``/report``; 0 if absent.

    Reads ``window.rules`` (the last ``window_minutes``; one row per mode the rule had),
    not ``since_start``: lifetime counters reset with every pod. "plaintext" is what
    the rule judged as lacking TLS: refused plus would-refuse, so it is only counted
    for audit and require rules.
    """
    rows = report.window.rule(rule_id)
    matched = sum(r.accept + r.refuse + r.would_refuse for r in rows)
    refused = sum(r.refuse for r in rows)
    would = sum(r.would_refuse for r in rows)
    return (matched, refused + would, refused, would)
