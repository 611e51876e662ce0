"""The `mxgate-report/1` document: one typed owner, lossless JSON, errors with field paths."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxgate_gateway.report import LossReport, ReportFormatError, merge, parse_document
from mxgate_gateway.report.document import EstimateInfo, ReportDocument

msg = st.tuples(
    st.sampled_from(["TLSv1.3", "TLSv1.2", "TLSv1", None]),
    st.sampled_from([None, "a.test", "b.test"]),
    st.sampled_from(["127.0.0.1", "127.0.1.1", "::1"]),
    st.sampled_from([True, False, None]),
    st.integers(0, 3),
)


def live(messages: list[tuple[str | None, str | None, str, bool | None, int]]) -> ReportDocument:
    report = LossReport(lambda: 0.0)
    for tls, sender, ip, upstream, rcpts in messages:
        report.record_session(tls)
        report.record_message(
            tls_version=tls,
            sender_domain=sender,
            client_ip=ip,
            upstream_accepted=upstream,
            recipients=rcpts,
        )
    return report.snapshot()


@settings(max_examples=40, deadline=None)
@given(st.lists(msg, max_size=40))
def test_json_round_trip_is_lossless(messages: list[Any]) -> None:
    """What the gateway serves parses back into the very document it was rendered from."""
    doc = live(messages)
    assert parse_document(json.loads(json.dumps(doc.to_json()))) == doc


def test_an_estimate_section_round_trips_and_survives_a_merge_as_a_report() -> None:
    """An estimate is a valid report: it parses back, and merging it yields a plain report."""
    doc = live([(None, "a.test", "127.0.0.1", True, 1)])
    est = ReportDocument(
        gateways=1,
        window_minutes=doc.window_minutes,
        since_start=doc.since_start,
        window=live([]).window,
        estimate=EstimateInfo("postfix", files=2, lines=10, unparsed_lines=1, notes=("n",)),
    )
    body = json.loads(json.dumps(est.to_json()))
    assert body["estimate"]["unparsed_lines"] == 1
    assert parse_document(body) == est
    assert merge([est]).estimate is None


@pytest.mark.parametrize(
    ("mangle", "path"),
    [
        (lambda b: {**b, "format": "other/1"}, "mxgate-report/1"),
        (lambda b: {**b, "gateways": 0}, "gateways"),
        (lambda b: {**b, "window": None}, "window"),
        (lambda b: b["since_start"]["messages"].update(none=-1) or b, "since_start.messages.none"),
        (lambda b: b["window"]["rules"].append({"rule": "r"}) or b, "window.rules[0].mode"),
        (lambda b: {**b, "estimate": {"source": 1}}, "estimate.source"),
        (lambda b: {**b, "tlsrpt": {"reports": []}}, "tlsrpt.reports"),
    ],
)
def test_errors_name_the_field(mangle: Any, path: str) -> None:
    """A body that is not a report says which field is wrong."""
    body = live([(None, "a.test", "127.0.0.1", True, 1)]).to_json()
    with pytest.raises(ReportFormatError, match=path.replace("[", r"\[").replace("]", r"\]")):
        parse_document(mangle(body))
