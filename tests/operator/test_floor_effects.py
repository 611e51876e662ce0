"""A ClusterTLSPolicy's observed effect: its counters summed over every namespace's gateways,
in a TLSPolicy's exact shape, written only when the counts change (pure: render/)."""

from __future__ import annotations

import json
from ipaddress import ip_address
from typing import Any

import pytest

from mxgate_gateway.config.model import Config, Listener, PolicyDocument
from mxgate_gateway.policy import SessionFacts, decide_mail, decide_rcpt
from mxgate_gateway.report.document import ReportDocument
from mxgate_gateway.report.loss import LossReport
from mxgate_operator.render.floor_status import (
    NO_NAMESPACE,
    NOT_READ,
    NamespaceReads,
    floor_effects,
    floor_status,
)
from mxgate_operator.render.floors import ClusterPolicyInput, render_floors
from mxgate_operator.render.gateway_config import PolicyInput, floor_room, render_policies
from mxgate_operator.render.status import Effect, observed_status
from mxgate_operator.spec import parse_policy
from mxgate_operator.spec_cluster import parse_cluster_policy

NOW = "2026-12-01T07:00:00Z"
LATER = "2026-12-01T08:00:00Z"
D = "accepted.test"
FLOOR_ID = "cluster.mxgate.io/admin"
BASE = Config.model_validate(
    {"hostname": "mx.test", "domains": [D], "upstreams": [{"address": "127.0.0.1:25"}]}
)
FLOOR = ClusterPolicyInput(
    "admin",
    "uid-admin",
    1,
    parse_cluster_policy("admin", {"mode": "require", "scope": {"recipientDomains": [D]}}),
)
PLAIN = SessionFacts(ip_address("203.0.113.9"), None, Listener.PUBLIC_MX)
TLS13 = SessionFacts(ip_address("203.0.113.9"), "TLSv1.3", Listener.PUBLIC_MX)


def gateway(namespace: str, plaintext: int, tls: int = 0) -> ReportDocument:
    """The /report of a gateway serving ``namespace``'s rendered document (the floor plus an
    audit TLSPolicy for D, which the floor outranks) after that much mail to D."""
    author = parse_policy("author", {"mode": "audit", "scope": {"recipientDomains": [D]}})
    floors = render_floors([FLOOR], floor_room())
    rendered = render_policies([PolicyInput(namespace, "author", "u", 1, author)], floors=floors)
    doc = PolicyDocument.model_validate(json.loads(rendered.text))
    policy = BASE.with_policy_document(doc).policy
    loss = LossReport(clock=lambda: 0.0)
    for facts, n in ((PLAIN, plaintext), (TLS13, tls)):
        for _ in range(n):
            loss.record_decision(decide_mail(policy, facts, "sender.example"))
            loss.record_decision(decide_rcpt(policy, facts, "sender.example", D))
    return loss.snapshot()


def test_a_floors_counts_are_summed_over_every_namespaces_gateways() -> None:
    """The floor is in each namespace's document and each gateway counts its refusals under
    the floor's id: the floor's effect is the sum over all three gateways of two namespaces
    (TLS mail the floor raised is matched, not plaintext); the author's own rule is not."""
    reads = {
        "a": NamespaceReads((("http://10.0.0.1/report", gateway("a", 2, tls=1)),)),
        "b": NamespaceReads(
            (
                ("http://10.0.1.1/report", gateway("b", 3)),
                ("http://10.0.1.2/report", gateway("b", 0, tls=4)),
            )
        ),
    }
    effect = floor_effects(reads, [FLOOR_ID], NOW)[FLOOR_ID]
    assert effect == Effect(3, 10, 5, 5, 0, NOW, "", 60)
    assert observed_status(effect) == {
        "gateways": 3,
        "matched": 10,
        "plaintext": 5,
        "refused": 5,
        "wouldRefuse": 0,
        "windowMinutes": 60,
        "plaintextPercent": 50.0,
        "wouldRefusePercent": 50.0,
        "updatedAt": NOW,
        "message": "last 60 minutes, summed over the 3 gateway(s) that answered",
    }


def test_a_gateway_read_for_several_namespaces_counts_once() -> None:
    """Fixed report URLs: every namespace reads the same gateway; it is summed once."""
    one = gateway("a", 2)
    same = (("http://127.0.0.1:8025/report", one),)
    reads = {"a": NamespaceReads(same), "b": NamespaceReads(same)}
    effect = floor_effects(reads, [FLOOR_ID], NOW)[FLOOR_ID]
    assert (effect.gateways, effect.matched, effect.refused) == (1, 2, 2)


@pytest.mark.parametrize(
    ("reads", "message"),
    [
        (
            {"a": NamespaceReads(message="no gateway found to read /report from")},
            "no gateway found to read /report from (namespace a)",
        ),
        (
            {
                "a": NamespaceReads(message="1 gateway report(s) unreadable: u: E"),
                "b": NamespaceReads(message="1 gateway report(s) unreadable: u: E"),
                "c": None,
            },
            "1 gateway report(s) unreadable: u: E (namespaces a, b); "
            + NOT_READ
            + " (namespace c)",
        ),
        ({}, NO_NAMESPACE),
    ],
)
def test_no_report_read_is_stated_as_for_a_tlspolicy(
    reads: dict[str, NamespaceReads | None], message: str
) -> None:
    """A namespace whose gateways could not be read carries the very note its TLSPolicies
    get, naming the namespace; a namespace whose pass read nothing and an operator with
    no namespace are stated too. Zero counts, no window, no percentages."""
    effect = floor_effects(reads, [FLOOR_ID], NOW)[FLOOR_ID]
    assert observed_status(effect) == {
        "gateways": 0,
        "matched": 0,
        "plaintext": 0,
        "refused": 0,
        "wouldRefuse": 0,
        "updatedAt": NOW,
        "message": message,
    }


def test_a_partial_read_states_both_the_window_and_the_gap() -> None:
    reads = {
        "a": NamespaceReads((("u1", gateway("a", 1)),)),
        "b": NamespaceReads(message="1 gateway report(s) unreadable: u2: E"),
    }
    effect = floor_effects(reads, [FLOOR_ID], NOW)[FLOOR_ID]
    assert observed_status(effect)["message"] == (
        "last 60 minutes, summed over the 1 gateway(s) that answered;"
        " 1 gateway report(s) unreadable: u2: E (namespace b)"
    )


def status(effect: Effect | None, previous: dict[str, Any], now: str = NOW) -> dict[str, Any]:
    (admission,) = render_floors([FLOOR], floor_room()).admissions
    out = floor_status(policy=FLOOR, admission=admission, previous=previous, now=now, effect=effect)
    return out.status


def test_the_floors_status_carries_the_counts_and_is_rewritten_only_when_they_change() -> None:
    """status.observed as a TLSPolicy's; an hour later with the same counts the status is
    identical (no PATCH, issue 18 item 9); without a report pass it is kept; new counts
    replace it."""
    reads = {"a": NamespaceReads((("u", gateway("a", 2)),))}
    first = status(floor_effects(reads, [FLOOR_ID], NOW)[FLOOR_ID], {})
    assert first["observed"] == observed_status(floor_effects(reads, [FLOOR_ID], NOW)[FLOOR_ID])
    assert first["observed"]["wouldRefusePercent"] == 100.0
    assert status(floor_effects(reads, [FLOOR_ID], LATER)[FLOOR_ID], first, LATER) == first
    assert status(None, first, LATER) == first
    more = {"a": NamespaceReads((("u", gateway("a", 3)),))}
    moved = status(floor_effects(more, [FLOOR_ID], LATER)[FLOOR_ID], first, LATER)
    assert (moved["observed"]["refused"], moved["observed"]["updatedAt"]) == (3, LATER)


def test_without_a_report_pass_a_new_floor_has_no_observed_field() -> None:
    assert "observed" not in status(None, {})
