"""The loss report: arithmetic, rolling window, exact two-gateway merge and the table."""

from __future__ import annotations

import json
import re
from ipaddress import ip_address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxgate_gateway.config.model import Listener, Mode, Policy
from mxgate_gateway.policy import Action, Decision, SessionFacts, Stage, decide_mail, decide_rcpt
from mxgate_gateway.report import (
    LossReport,
    ReportFormatError,
    client_network,
    merge,
    parse_document,
    render_table,
)


class FakeClock:
    """A fake clock: tests move time by hand instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


Msg = tuple[str | None, str | None, str, bool | None, int]  # tls, sender, ip, upstream, rcpts

MESSAGES: list[Msg] = [
    ("TLSv1.3", "big.test", "127.0.0.1", True, 1),
    ("TLSv1.3", "big.test", "127.0.0.2", True, 2),
    ("TLSv1.2", "mid.test", "127.0.1.1", True, 1),
    (None, "spam.test", "127.9.9.1", False, 3),
    (None, "spam.test", "127.9.9.2", False, 1),
    (None, "legacy.test", "127.8.0.1", True, 1),
    (None, None, "2001:db8:1:2::5", None, 1),
]


def feed(report: LossReport, messages: list[Msg]) -> None:
    for tls, sender, ip, upstream, rcpts in messages:
        report.record_session(tls)
        report.record_message(
            tls_version=tls,
            sender_domain=sender,
            client_ip=ip,
            upstream_accepted=upstream,
            recipients=rcpts,
        )


def test_report_arithmetic() -> None:
    """Every number in the report follows from what was recorded."""
    r = LossReport(FakeClock())
    feed(r, MESSAGES)
    s = r.snapshot().to_json()["since_start"]
    assert s["sessions"] == {"TLSv1.3": 2, "TLSv1.2": 1, "none": 4}
    assert s["messages"] == {"TLSv1.3": 2, "TLSv1.2": 1, "none": 4}
    assert s["recipients"] == {"TLSv1.3": 3, "TLSv1.2": 1, "none": 6}
    assert s["upstream"]["none"] == {"accepted": 1, "rejected": 2, "unknown": 1}
    assert s["if_starttls_required"] == {
        "refused_messages": 4,
        "of_messages": 7,
        "percent": 57.1,
        "sender_domains": 3,  # spam.test, legacy.test and the null sender <>
        "client_networks": 3,  # 127.9.9.0/24, 127.8.0.0/24, 2001:db8:1::/48
        "exact": True,
        "sender_domains_exact": True,
        "client_networks_exact": True,
        "upstream": {"accepted": 1, "rejected": 2, "unknown": 1},
    }
    assert s["top_plaintext_sender_domains"] == [
        {"name": "spam.test", "messages": 2, "error": 0},
        {"name": "<>", "messages": 1, "error": 0},
        {"name": "legacy.test", "messages": 1, "error": 0},
    ]
    assert [e["name"] for e in s["top_plaintext_client_networks"]] == [
        "127.9.9.0/24",
        "127.8.0.0/24",
        "2001:db8:1::/48",
    ]
    json.dumps(r.snapshot().to_json())  # the /report body is JSON-able


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("127.1.2.3", "127.1.2.0/24"),
        ("192.0.2.255", "192.0.2.0/24"),
        ("2001:db8:aa:bb::1", "2001:db8:aa::/48"),
        ("::ffff:198.51.100.7", "198.51.100.0/24"),
    ],
)
def test_client_networks_are_grouped(ip: str, network: str) -> None:
    """Clients are grouped by /24 (IPv4, also when IPv4-mapped) and /48 (IPv6)."""
    assert client_network(ip) == network


def test_decisions_are_counted_per_rule_and_carried_rcpt_repeats_are_not() -> None:
    """An audit MAIL and its carried RCPTs count once; a recipient rule counts per RCPT."""
    pol = Policy.model_validate(
        {
            "mode": "audit",
            "rules": [
                {"id": "fin", "mode": "require", "scope": {"recipient_domains": ["fin.test"]}}
            ],
        }
    )
    f = SessionFacts(ip_address("127.0.0.1"), None, Listener.PUBLIC_MX)
    r = LossReport(FakeClock())
    r.record_decision(decide_mail(pol, f, "s.test"))
    for rcpt in ("a.test", "b.test", "fin.test", "fin.test"):
        r.record_decision(decide_rcpt(pol, f, "s.test", rcpt))
    rules = r.snapshot().to_json()["since_start"]["rules"]
    assert rules == [
        {"rule": "(default)", "mode": "audit", "accept": 0, "refuse": 0, "would_refuse": 1},
        {"rule": "fin", "mode": "require", "accept": 0, "refuse": 2, "would_refuse": 0},
    ]


def test_a_rule_switched_from_audit_to_require_keeps_both_rows() -> None:
    """Counts are kept per (rule, mode), so a switch mid-period never mixes them."""
    r = LossReport(FakeClock())
    r.record_decision(Decision(Action.WOULD_REFUSE, "bank", Mode.AUDIT, None))
    r.record_decision(Decision(Action.REFUSE, "bank", Mode.REQUIRE, (530, "5.7.0 x"), Stage.RCPT))
    modes = [(row["rule"], row["mode"]) for row in r.snapshot().to_json()["since_start"]["rules"]]
    assert modes == [("bank", "audit"), ("bank", "require")]


def test_rolling_window_forgets_old_minutes_but_since_start_does_not() -> None:
    """The window covers the last 60 minutes; older minutes drop out of it only."""
    clock = FakeClock()
    r = LossReport(clock)
    feed(r, MESSAGES[:3])  # minute 0: three TLS messages
    clock.now += 30 * 60
    feed(r, MESSAGES[3:])  # minute 30: four plaintext messages
    snap = r.snapshot().to_json()
    assert sum(snap["window"]["messages"].values()) == 7
    clock.now += 31 * 60  # minute 61: minute 0 has left the window, minute 30 has not
    snap = r.snapshot().to_json()
    assert snap["window"]["messages"] == {"TLSv1.3": 0, "TLSv1.2": 0, "none": 4}
    assert sum(snap["since_start"]["messages"].values()) == 7
    clock.now += 30 * 60  # minute 91: nothing left in the window
    assert sum(r.snapshot().to_json()["window"]["messages"].values()) == 0


def test_window_memory_is_bounded_by_its_minutes() -> None:
    """However long it runs, at most `window_minutes` per-minute tallies are kept."""
    clock = FakeClock()
    r = LossReport(clock, window_minutes=5)
    for _ in range(50):
        feed(r, MESSAGES[:1])
        clock.now += 60
    assert len(r._minutes) <= 5
    assert sum(r.snapshot().to_json()["since_start"]["messages"].values()) == 50


msg = st.tuples(
    st.sampled_from(["TLSv1.3", "TLSv1.2", None]),
    st.sampled_from([None, "a.test", "b.test", "c.test"]),
    st.sampled_from(["127.0.0.1", "127.0.1.1", "127.5.0.9", "::1"]),
    st.sampled_from([True, False, None]),
    st.integers(1, 3),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(msg, max_size=30), st.lists(msg, max_size=30))
def test_two_gateways_merge_exactly(a: list[Msg], b: list[Msg]) -> None:
    """Merging two gateways' reports equals the report of one gateway that saw all the traffic."""
    ga, gb, one = LossReport(FakeClock()), LossReport(FakeClock()), LossReport(FakeClock())
    feed(ga, a)
    feed(gb, b)
    feed(one, a + b)
    merged = merge([ga.snapshot(), parse_document(json.loads(json.dumps(gb.snapshot().to_json())))])
    expected = one.snapshot()
    assert merged.gateways == 2
    assert merged.since_start == expected.since_start
    assert merged.window == expected.window


def test_merging_a_merge_adds_gateways() -> None:
    """A merged report can be merged again; gateway counts add."""
    r = LossReport(FakeClock())
    feed(r, MESSAGES)
    twice = merge([r.snapshot(), r.snapshot()])
    assert merge([twice, r.snapshot()]).gateways == 3
    assert merge([twice, r.snapshot()]).since_start.messages["none"] == 12


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: {**s, "format": "other/1"},
        lambda s: {**s, "gateways": 0},
        lambda s: {**s, "window_minutes": 5},
        lambda s: {**s, "since_start": {**s["since_start"], "messages": {"none": -1}}},
        lambda s: {**s, "since_start": {**s["since_start"], "rules": [{"rule": 1}]}},
        lambda s: {**s, "window": None},
    ],
)
def test_merge_refuses_what_is_not_a_report(mangle: Any) -> None:
    """A body that is not an mxgate report (or a different window) fails loudly."""
    r = LossReport(FakeClock())
    feed(r, MESSAGES)
    body = r.snapshot().to_json()
    with pytest.raises(ReportFormatError):
        merge([r.snapshot(), parse_document(mangle(body))])


def test_render_table_shows_the_answer() -> None:
    """The table states the counterfactual sentence, the upstream fate and the top senders."""
    r = LossReport(FakeClock())
    feed(r, MESSAGES)
    r.record_decision(Decision(Action.WOULD_REFUSE, "(default)", Mode.AUDIT, None))
    text = render_table(merge([r.snapshot()]))
    assert (
        "since start: 4 of 7 messages (57.1%) from 3 distinct sender domains"
        " and 3 client networks would have been refused." in text
    )
    assert "1 accepted, 2 rejected (66.7% of judged), 1 without a verdict" in text
    assert re.search(r"\n  spam\.test +2 +exact\n", text)
    assert "(default)  audit" in text
    assert render_table(r.snapshot()) == render_table(r.snapshot())


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 50))
def test_report_memory_does_not_grow_with_senders(senders: int, capacity: int) -> None:
    """However many distinct plaintext senders and networks, each sketch stays within its bound."""
    clock = FakeClock()
    r = LossReport(clock, top_capacity=capacity)
    for i in range(senders):
        r.record_message(
            tls_version=None,
            sender_domain=f"s{i}.test",
            client_ip=f"10.{i // 256 % 256}.{i % 256}.1",
            upstream_accepted=True,
            recipients=1,
        )
        clock.now += 1
    for tally in [r._total, *(t for _, t in r._minutes)]:
        for sketch in (tally.senders, tally.networks):
            assert len(sketch.top) <= capacity
            assert sketch.distinct.footprint() <= max(128, 4096)
    top = r.snapshot().to_json()["since_start"]["top_plaintext_sender_domains"]
    assert len(top) <= min(10, capacity)
