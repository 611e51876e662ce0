"""Bounded TLS-RPT counters for ``/report``: what they count, their bounds, and merging."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mxgate_gateway.mtasts.metrics import MAX_ORGANIZATION_LABELS, TLSRPTRecorder
from mxgate_gateway.mtasts.summary import (
    TLSRPTSummary,
    merge_summaries,
    organization_key,
    policy_type_label,
    result_type_label,
)
from mxgate_gateway.mtasts.tlsrpt import ErrorKind, Report, parse_report

RFC_EXAMPLE = (Path(__file__).parent / "data" / "rfc8460-example-report.json").read_bytes()


def example(org: str = "Company-X", report_id: str = "r1") -> Report:
    report = parse_report(RFC_EXAMPLE, gzipped=False, max_decompressed=1 << 20)
    assert isinstance(report, Report)
    return dataclasses.replace(report, organization_name=org, report_id=report_id)


def test_rfc_example_counts() -> None:
    """The RFC example adds 5326 successful and 303 failed sts sessions and its failures."""
    summary = TLSRPTSummary()
    summary.add(example())
    out = summary.as_dict()
    assert out["sessions"] == {"successful": 5326, "failed": 303}
    assert out["by_policy_type"]["sts"] == {"successful": 5326, "failed": 303}
    assert out["failures_by_result_type"]["certificate-expired"] == 100
    assert out["failures_by_result_type"]["starttls-not-supported"] == 200
    assert out["failures_by_result_type"]["validation-failure"] == 3
    assert out["organizations"] == [
        {"organization": "Company-X", "reports": 1, "successful": 5326, "failed": 303}
    ]
    json.dumps(out)


@pytest.mark.parametrize(
    ("raw", "label"),
    [("sts", "sts"), ("TLSA", "tlsa"), ("no-policy-found", "no-policy-found"), ("x", "other")],
)
def test_policy_type_labels_are_bounded(raw: str, label: str) -> None:
    """Policy types outside RFC 8460's registry fold into ``other``."""
    assert policy_type_label(raw) == label


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("certificate-expired", "certificate-expired"),
        ("sts-webpki-invalid", "sts-webpki-invalid"),
        ("dane-required", "dane-required"),
        ("made-up", "other"),
        ("", "other"),
    ],
)
def test_result_type_labels_are_bounded(raw: str, label: str) -> None:
    """Result types outside RFC 8460 §4.3 fold into ``other``."""
    assert result_type_label(raw) == label


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Google Inc.", "Google Inc."),
        ("  Micro\nsoft\x00 Corp ", "Micro soft Corp"),
        ("<script>", "script"),
        ("", "(unnamed)"),
        ("x" * 500, "x" * 64),
    ],
)
def test_organization_names_are_display_safe(raw: str, key: str) -> None:
    """Organisation names lose control and markup characters and are cut to 64."""
    assert organization_key(raw) == key


def test_organizations_beyond_the_bound_are_counted_together() -> None:
    """Past ``max_organizations`` names, reports still count, in ``organizations_not_listed``."""
    summary = TLSRPTSummary(max_organizations=3)
    for i in range(10):
        summary.add(example(org=f"org{i}", report_id=str(i)))
    assert len(summary.organizations) == 3
    out = summary.as_dict(top=2)
    assert len(out["organizations"]) == 2
    assert out["organizations_not_listed"]["reports"] == 8
    assert out["sessions"]["failed"] == 10 * 303


def test_top_list_ranks_by_failed_sessions() -> None:
    """The organisation list puts senders with the most failed sessions first."""
    summary = TLSRPTSummary()
    summary.add(example(org="few"))
    many = example(org="many", report_id="r2")
    many = dataclasses.replace(
        many, policies=tuple(dataclasses.replace(p, failed_sessions=9999) for p in many.policies)
    )
    summary.add(many)
    assert [o["organization"] for o in summary.as_dict()["organizations"]] == ["many", "few"]


def test_duplicate_report_ids_are_remembered_boundedly() -> None:
    """The same (organisation, report-id) is seen once; the memory forgets the oldest."""
    summary = TLSRPTSummary(max_report_ids=2)
    assert not summary.seen(example(report_id="a"))
    assert summary.seen(example(report_id="a"))
    assert not summary.seen(example(org="other-org", report_id="a"))
    assert not summary.seen(example(report_id="b"))
    assert not summary.seen(example(report_id="a"))


def test_merge_adds_counts_exactly_and_reranks_organizations() -> None:
    """Merging two gateways' sections adds every count and keeps the top list bounded."""
    a, b = TLSRPTSummary(), TLSRPTSummary()
    a.add(example(org="x"))
    a.reject("bad_gzip")
    b.add(example(org="x", report_id="2"))
    b.add(example(org="y", report_id="3"))
    b.reject("bad_gzip")
    b.reject("not_json")
    merged = merge_summaries(a.as_dict(), b.as_dict(), top=1)
    assert merged["reports"] == {
        "accepted": 3,
        "duplicate": 0,
        "rejected": {"bad_gzip": 2, "not_json": 1},
    }
    assert merged["sessions"] == {"successful": 3 * 5326, "failed": 3 * 303}
    assert merged["organizations"] == [
        {"organization": "x", "reports": 2, "successful": 2 * 5326, "failed": 2 * 303}
    ]
    assert merged["organizations_not_listed"]["reports"] == 1
    assert merged["organizations_not_listed"]["organization"] == "(not listed)"
    assert merge_summaries(merged, TLSRPTSummary().as_dict(), top=1) == merged


def test_recorder_feeds_bounded_metrics() -> None:
    """Prometheus counters follow the reports, and organisation labels stay bounded."""
    registry = CollectorRegistry()
    rec = TLSRPTRecorder(registry)
    for i in range(MAX_ORGANIZATION_LABELS + 5):
        assert rec.accepted(example(org=f"org{i}", report_id=str(i)))
    assert not rec.accepted(example(org="org0", report_id="0"))
    rec.refused(ErrorKind.BAD_GZIP)
    n = MAX_ORGANIZATION_LABELS + 5

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("mxgate_tlsrpt_reports_total", outcome="accepted") == n
    assert value("mxgate_tlsrpt_reports_total", outcome="duplicate") == 1
    assert value("mxgate_tlsrpt_rejected_reports_total", reason="bad_gzip") == 1
    assert value("mxgate_tlsrpt_sessions_total", policy_type="sts", result="failed") == n * 303
    assert (
        value(
            "mxgate_tlsrpt_failed_sessions_total",
            policy_type="sts",
            result_type="starttls-not-supported",
        )
        == n * 200
    )
    orgs = {
        s.labels["organization"]
        for m in registry.collect()
        if m.name == "mxgate_tlsrpt_organization_sessions"
        for s in m.samples
    }
    assert len(orgs) == MAX_ORGANIZATION_LABELS + 1
    assert "other" in orgs
    assert (
        value("mxgate_tlsrpt_organization_sessions_total", organization="other", result="failed")
        == 5 * 303
    )
