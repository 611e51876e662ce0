"""Status: conditions, RFC 3207 warnings, certificate mirroring and the observed effect."""

from __future__ import annotations

from typing import Any

import pytest
from validation_table import CERT

from mxgate_gateway.config.model import Mode
from mxgate_gateway.policy.decisions import Action, Decision
from mxgate_gateway.report.document import ReportDocument, ReportFormatError, parse_document
from mxgate_gateway.report.loss import LossReport
from mxgate_operator.render.certificates import CertificateState, plan_certificates
from mxgate_operator.render.gateway_config import PolicyInput, render_policies
from mxgate_operator.render.status import (
    Effect,
    effects_from_reports,
    observed_status,
    policy_status,
    rule_counts,
)
from mxgate_operator.spec import parse_policy

NOW = "2026-11-28T12:00:00Z"
LATER = "2026-11-28T13:00:00Z"


def status_for(
    spec: dict[str, Any],
    *,
    cert: CertificateState | None = None,
    effect: Effect | None = None,
    previous: dict[str, Any] | None = None,
    now: str = NOW,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    p = PolicyInput("mail", "p", "uid-p", 3, parse_policy("p", spec))
    result = render_policies([p])
    plans = plan_certificates("mxgate", result.accepted)
    out = policy_status(
        generation=3,
        rule_id="mail/p",
        admission=result.admission("mail/p"),
        spec=p.parsed.spec,
        config_hash=result.config_hash,
        plan=plans[0] if plans else None,
        cert_state=cert,
        effect=effect,
        previous=previous or {},
        now=now,
    )
    return out.status, [(e.type, e.reason) for e in out.events]


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


READY = CertificateState(True, "Ready", "issued", "2027-02-26T12:00:00Z")
AUDIT = {"mode": "audit", "scope": {"senderDomains": ["a.test"]}}
REQUIRE_MX = {"mode": "require", "scope": {"senderDomains": ["a.test"]}, "certificate": CERT}
REQUIRE_INT = {**REQUIRE_MX, "listener": "internal"}


@pytest.mark.parametrize(
    ("spec", "cert", "expected", "events"),
    [
        (
            AUDIT,
            None,
            {
                "Accepted": ("True", "Accepted"),
                "CertificateReady": ("True", "NotRequested"),
                "StandardsCompliant": ("True", "Compliant"),
                "Ready": ("True", "Ready"),
            },
            [("Normal", "Ready")],
        ),
        (
            REQUIRE_INT,
            READY,
            {
                "CertificateReady": ("True", "Ready"),
                "Ready": ("True", "Ready"),
                "StandardsCompliant": ("True", "Compliant"),
            },
            [("Normal", "CertificateIssued"), ("Normal", "Ready")],
        ),
        (
            REQUIRE_INT,
            None,
            {"CertificateReady": ("Unknown", "Pending"), "Ready": ("False", "CertificateNotReady")},
            [],
        ),
        (
            REQUIRE_INT,
            CertificateState(False, "DoesNotExist", "no issuer", None),
            {
                "CertificateReady": ("False", "DoesNotExist"),
                "Ready": ("False", "CertificateNotReady"),
            },
            [],
        ),
        (
            REQUIRE_MX,
            READY,
            {"StandardsCompliant": ("False", "RequireOnPublicMX"), "Ready": ("True", "Ready")},
            [
                ("Normal", "CertificateIssued"),
                ("Warning", "RequireOnPublicMX"),
                ("Normal", "Ready"),
            ],
        ),
        (
            {"mode": "audit", "scope": {}},
            None,
            {
                "Accepted": ("False", "InvalidSpec"),
                "Ready": ("False", "NotAccepted"),
                "CertificateReady": ("Unknown", "NotAccepted"),
            },
            [("Warning", "InvalidSpec")],
        ),
    ],
)
def test_conditions_table(
    spec: dict[str, Any],
    cert: CertificateState | None,
    expected: dict[str, tuple[str, str]],
    events: list[tuple[str, str]],
) -> None:
    """Each situation yields the expected conditions and events: Warnings for trouble,
    Normal for Ready and an issued certificate (issue 16 item 7), only on transitions."""
    status, got_events = status_for(spec, cert=cert)
    got = conds(status)
    assert {k: got[k] for k in expected} == expected
    assert got_events == events
    assert status["observedGeneration"] == 3
    assert status["ruleId"] == "mail/p"


def test_rfc3207_message_points_to_audit() -> None:
    """require on public-mx says RFC 3207 §4 and points to audit."""
    status, _ = status_for(REQUIRE_MX, cert=READY)
    msg = next(c["message"] for c in status["conditions"] if c["type"] == "StandardsCompliant")
    assert "RFC 3207" in msg
    assert "audit" in msg


def test_rerun_keeps_transition_times_and_emits_no_events() -> None:
    """Reconciling again with the same facts changes nothing and repeats no warning."""
    first, events = status_for(REQUIRE_MX, cert=READY)
    again, events2 = status_for(REQUIRE_MX, cert=READY, previous=first, now=LATER)
    assert events
    assert not events2
    assert again == first


def test_transition_time_moves_when_status_changes() -> None:
    """A condition whose status changes gets the new lastTransitionTime."""
    first, _ = status_for(REQUIRE_INT, cert=None)
    second, _ = status_for(REQUIRE_INT, cert=READY, previous=first, now=LATER)
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times["CertificateReady"] == LATER
    assert times["Accepted"] == NOW
    assert second["certificate"] == {
        "name": "mxgate-internal",
        "secretName": "mxgate-internal-tls",
        "notAfter": "2027-02-26T12:00:00Z",
    }


def test_observed_effect_percentages_and_keep_previous() -> None:
    """Observed counts become percentages; no fresh report keeps the previous numbers."""
    effect = Effect(2, matched=200, plaintext=30, refused=0, would_refuse=30, updated_at=NOW)
    status, _ = status_for(AUDIT, effect=effect)
    assert status["observed"]["wouldRefusePercent"] == 15.0
    assert status["observed"]["plaintextPercent"] == 15.0
    kept, _ = status_for(AUDIT, previous=status, now=LATER)
    assert kept["observed"] == status["observed"]


def test_nothing_matched_shows_no_percentage() -> None:
    """A policy that matched nothing shows no Would-Refuse %, not a misleading 0."""
    effect = Effect(1, matched=0, plaintext=0, refused=0, would_refuse=0, updated_at=NOW)
    status, _ = status_for(AUDIT, effect=effect)
    assert status["observed"]["matched"] == 0
    assert "wouldRefusePercent" not in status["observed"]
    assert "plaintextPercent" not in status["observed"]


def report(*rows: dict[str, Any]) -> ReportDocument:
    """A /report document whose window has these rule rows (what the operator reads)."""
    body = LossReport(clock=lambda: 0.0).snapshot().to_json()
    body["window"]["rules"] = list(rows)
    return parse_document(body)


REPORT_A = report({"rule": "mail/p", "mode": "audit", "accept": 6, "refuse": 0, "would_refuse": 4})
REPORT_B = report(
    {"rule": "mail/p", "mode": "require", "accept": 4, "refuse": 1, "would_refuse": 0},
    {"rule": "mail/other", "mode": "audit", "accept": 9, "refuse": 0, "would_refuse": 9},
)


@pytest.mark.parametrize(
    ("body", "counts"),
    [
        (REPORT_A, (10, 4, 0, 4)),
        (REPORT_B, (5, 1, 1, 0)),
        (report(), (0, 0, 0, 0)),
        (
            report(
                {"rule": "mail/p", "mode": "audit", "accept": 1, "would_refuse": 1},
                {"rule": "mail/p", "mode": "require", "accept": 1, "refuse": 2},
            ),
            (5, 3, 2, 1),
        ),
    ],
)
def test_rule_counts_read_reports_generically(
    body: ReportDocument, counts: tuple[int, int, int, int]
) -> None:
    """A rule's rows (one per mode) are summed; absent means zero."""
    assert rule_counts(body, "mail/p") == counts


@pytest.mark.parametrize(
    "row",
    [
        {"rule": "mail/p", "mode": "audit", "accept": "x"},
        {"rule": "mail/p", "mode": "audit", "would_refuse": True},
        {"rule": "mail/p", "accept": 1},
    ],
)
def test_a_report_with_junk_rows_is_refused_not_read_as_zero(row: dict[str, Any]) -> None:
    """Junk in a rule row makes the whole document unreadable (noted), never silent zeros."""
    with pytest.raises(ReportFormatError, match=r"window\.rules"):
        report(row)


def test_effects_sum_over_gateways() -> None:
    """Counts from several gateways add up per rule."""
    effects = effects_from_reports([REPORT_A, REPORT_B], ["mail/p", "mail/q"], NOW)
    assert effects["mail/p"] == Effect(2, 15, 5, 1, 4, NOW, window_minutes=60)
    assert effects["mail/q"] == Effect(2, 0, 0, 0, 0, NOW, window_minutes=60)


def test_reads_the_gateways_real_report_format() -> None:
    """Contract: counts recorded by the gateway's LossReport come out per rule in status."""
    loss = LossReport(clock=lambda: 0.0)
    for action, n in ((Action.ACCEPT, 7), (Action.WOULD_REFUSE, 3)):
        for _ in range(n):
            loss.record_decision(Decision(action, "mail/p", Mode.AUDIT, None))
    loss.record_decision(Decision(Action.REFUSE, "mail/q", Mode.REQUIRE, (530, "x")))
    effects = effects_from_reports([loss.snapshot()], ["mail/p", "mail/q"], NOW)
    assert effects["mail/p"] == Effect(1, 10, 3, 0, 3, NOW, window_minutes=60)
    assert effects["mail/q"] == Effect(1, 1, 1, 1, 0, NOW, window_minutes=60)


class Clock:
    """Seconds for the gateways' LossReports, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def serve(pods: list[LossReport], clock: Clock, minutes: int, accept: int, would: int) -> None:
    """Each pod decides ``accept`` + ``would`` audit decisions for mail/p in each of the next
    ``minutes`` minutes (the clock is left in the last of them)."""
    for _ in range(minutes):
        clock.now += 60
        for loss in pods:
            for action, n in ((Action.ACCEPT, accept), (Action.WOULD_REFUSE, would)):
                for _ in range(n):
                    loss.record_decision(Decision(action, "mail/p", Mode.AUDIT, None))


def observed_of(pods: list[LossReport]) -> dict[str, Any]:
    effect = effects_from_reports([p.snapshot() for p in pods], ["mail/p"], NOW)["mail/p"]
    return observed_status(effect)


def test_a_pod_restart_does_not_move_the_would_refuse_percent() -> None:
    """Issue 16 item 7: the percentage is over the gateways' last 60 minutes, so a pod whose
    since_start counters reset on restart changes neither the share nor its sign.

    Five hours at 50 % plaintext, then an hour at 10 %: the status says 10 % (the stated
    window), not the lifetime 30 %, and still 10 % after one pod restarts and serves on.
    """
    clock = Clock()
    a, b = LossReport(clock=clock), LossReport(clock=clock)
    serve([a, b], clock, 300, accept=1, would=1)
    serve([a, b], clock, 60, accept=9, would=1)
    before = observed_of([a, b])
    assert before["windowMinutes"] == 60
    assert before["matched"] == 2 * 60 * 10
    assert before["wouldRefusePercent"] == 10.0

    b = LossReport(clock=clock)  # the pod restarted: its since_start is zero again
    assert observed_of([a, b])["wouldRefusePercent"] == 10.0
    serve([a, b], clock, 30, accept=9, would=1)
    after = observed_of([a, b])
    assert after["wouldRefusePercent"] == 10.0
    assert after["plaintextPercent"] == 10.0
    assert all(after[k] >= 0 for k in ("matched", "plaintext", "refused", "wouldRefuse"))


def test_a_rollout_drops_at_most_the_killed_pods_share() -> None:
    """Right after a pod is replaced the counts are the survivors' window plus the new pod's
    (nothing yet): the killed pod's share is lost, nothing else, and the share stays put."""
    clock = Clock()
    a, b = LossReport(clock=clock), LossReport(clock=clock)
    serve([a, b], clock, 90, accept=3, would=1)
    alone = observed_of([a])
    rolled = observed_of([a, LossReport(clock=clock)])
    assert rolled["gateways"] == 2
    assert rolled["matched"] == alone["matched"] == 60 * 4
    assert rolled["wouldRefusePercent"] == observed_of([a, b])["wouldRefusePercent"] == 25.0


def test_the_observed_message_states_the_window() -> None:
    """status.observed.message says which window the numbers cover, and any unread gateway."""
    clock = Clock()
    pods = [LossReport(clock=clock), LossReport(clock=clock)]
    serve(pods, clock, 1, accept=1, would=1)
    docs = [p.snapshot() for p in pods]
    effect = effects_from_reports(docs, ["mail/p"], NOW)["mail/p"]
    assert observed_status(effect)["message"] == (
        "last 60 minutes, summed over the 2 gateway(s) that answered"
    )
    partial = effects_from_reports(docs, ["mail/p"], NOW, "1 gateway report(s) unreadable: x")
    assert observed_status(partial["mail/p"])["message"] == (
        "last 60 minutes, summed over the 2 gateway(s) that answered;"
        " 1 gateway report(s) unreadable: x"
    )
    none = effects_from_reports([], ["mail/p"], NOW, "no gateway found to read /report from")
    assert observed_status(none["mail/p"]) == {
        "gateways": 0,
        "matched": 0,
        "plaintext": 0,
        "refused": 0,
        "wouldRefuse": 0,
        "updatedAt": NOW,
        "message": "no gateway found to read /report from",
    }


def test_an_unchanged_effect_rewrites_nothing_on_a_report_tick() -> None:
    """Same counts an hour later: the status is identical, so no PATCH (issue 18 item 9)."""
    effect = Effect(2, matched=200, plaintext=30, refused=0, would_refuse=30, updated_at=NOW)
    first, _ = status_for(AUDIT, effect=effect)
    later = Effect(2, matched=200, plaintext=30, refused=0, would_refuse=30, updated_at=LATER)
    again, _ = status_for(AUDIT, effect=later, previous=first, now=LATER)
    assert again == first
    moved = Effect(2, matched=201, plaintext=30, refused=0, would_refuse=30, updated_at=LATER)
    changed, _ = status_for(AUDIT, effect=moved, previous=first, now=LATER)
    assert changed["observed"]["updatedAt"] == LATER


def test_another_policys_edit_does_not_rewrite_this_status() -> None:
    """configHash stays the hash this generation was rendered into; a new document hash
    (someone else's edit) alone changes nothing here (issue 18 item 9)."""
    first, _ = status_for(AUDIT)
    p = PolicyInput("mail", "p", "uid-p", 3, parse_policy("p", AUDIT))
    out = policy_status(
        generation=3,
        rule_id="mail/p",
        admission=render_policies([p]).admission("mail/p"),
        spec=p.parsed.spec,
        config_hash="sha256:another-document",
        plan=None,
        cert_state=None,
        effect=None,
        previous=first,
        now=LATER,
    )
    assert out.status == first
    edited = policy_status(
        generation=4,
        rule_id="mail/p",
        admission=render_policies([p]).admission("mail/p"),
        spec=p.parsed.spec,
        config_hash="sha256:another-document",
        plan=None,
        cert_state=None,
        effect=None,
        previous=first,
        now=LATER,
    )
    assert edited.status["configHash"] == "sha256:another-document"


def test_normal_events_only_on_the_transition() -> None:
    """Ready and CertificateIssued are posted once, not on every reconcile."""
    first, events = status_for(REQUIRE_INT, cert=READY)
    assert ("Normal", "Ready") in events
    _, again = status_for(REQUIRE_INT, cert=READY, previous=first, now=LATER)
    assert again == []
