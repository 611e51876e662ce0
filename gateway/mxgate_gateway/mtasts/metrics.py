"""Prometheus metrics for MTA-STS serving and TLS-RPT intake (prefix ``mxgate_tlsrpt_``).

Registers on the ``CollectorRegistry`` it is given (never the global one). Every label
is bounded: outcomes and error kinds are enums, policy and result types fold unknown
values into ``other``, and organisations get a label only for the first few seen.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from mxgate_gateway.mtasts.summary import (
    OTHER,
    POLICY_TYPES,
    RESULT_TYPES,
    TLSRPTSummary,
    organization_key,
    policy_type_label,
    result_type_label,
)
from mxgate_gateway.mtasts.tlsrpt import ErrorKind, Report

__all__ = ["MAX_ORGANIZATION_LABELS", "OUTCOMES", "TLSRPTRecorder"]

# How a POST /tlsrpt ended; ErrorKind values are the "rejected" reasons.
OUTCOMES = ("accepted", "duplicate", "rejected", "unsupported_media_type", "disabled")
MAX_ORGANIZATION_LABELS = 20


class TLSRPTRecorder:
    """Counts what ``POST /tlsrpt`` and ``GET /.well-known/mta-sts.txt`` did.

    Feeds both the prometheus counters and the ``TLSRPTSummary`` shown in ``/report``.
    """

    def __init__(self, registry: CollectorRegistry, summary: TLSRPTSummary | None = None) -> None:
        self.summary = summary if summary is not None else TLSRPTSummary()
        r = registry
        self.reports = Counter(
            "mxgate_tlsrpt_reports_total",
            "TLS-RPT reports POSTed to /tlsrpt, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.rejected = Counter(
            "mxgate_tlsrpt_rejected_reports_total",
            "TLS-RPT reports refused (400/413), by reason.",
            ["reason"],
            registry=r,
        )
        self.sessions = Counter(
            "mxgate_tlsrpt_sessions_total",
            "Sessions senders reported, by policy type and result (successful/failed).",
            ["policy_type", "result"],
            registry=r,
        )
        self.failures = Counter(
            "mxgate_tlsrpt_failed_sessions_total",
            "Failed sessions from failure-details, by policy type and RFC 8460 result type.",
            ["policy_type", "result_type"],
            registry=r,
        )
        self.organizations = Counter(
            "mxgate_tlsrpt_organization_sessions_total",
            "Sessions reported per reporting organisation (first"
            f" {MAX_ORGANIZATION_LABELS} names, the rest as 'other'), by result.",
            ["organization", "result"],
            registry=r,
        )
        self.policy_fetches = Counter(
            "mxgate_mtasts_policy_requests_total",
            "GET /.well-known/mta-sts.txt requests, by outcome (served/unknown_host).",
            ["outcome"],
            registry=r,
        )
        self._org_labels: set[str] = set()
        for outcome in OUTCOMES:
            self.reports.labels(outcome)
        for kind in ErrorKind:
            self.rejected.labels(kind.value)
        for ptype in (*POLICY_TYPES, OTHER):
            for result in ("successful", "failed"):
                self.sessions.labels(ptype, result)
        for rtype in RESULT_TYPES:
            self.failures.labels("sts", rtype)

    def accepted(self, report: Report) -> bool:
        """Count an accepted report; False (and nothing counted) if it is a duplicate."""
        if self.summary.seen(report):
            self.summary.duplicates += 1
            self.reports.labels("duplicate").inc()
            return False
        self.summary.add(report)
        self.reports.labels("accepted").inc()
        org = self._org_label(report.organization_name)
        for policy in report.policies:
            ptype = policy_type_label(policy.policy_type)
            self.sessions.labels(ptype, "successful").inc(policy.successful_sessions)
            self.sessions.labels(ptype, "failed").inc(policy.failed_sessions)
            self.organizations.labels(org, "successful").inc(policy.successful_sessions)
            self.organizations.labels(org, "failed").inc(policy.failed_sessions)
            for detail in policy.failures:
                rtype = result_type_label(detail.result_type)
                self.failures.labels(ptype, rtype).inc(detail.failed_session_count)
        return True

    def refused(self, reason: ErrorKind) -> None:
        """Count a report refused as malformed or too large."""
        self.summary.reject(reason.value)
        self.reports.labels("rejected").inc()
        self.rejected.labels(reason.value).inc()

    def other_outcome(self, outcome: str) -> None:
        """Count ``unsupported_media_type`` or ``disabled`` (bounded to ``OUTCOMES``)."""
        self.reports.labels(outcome if outcome in OUTCOMES else "rejected").inc()
        if outcome == "unsupported_media_type":
            self.summary.reject(outcome)

    def policy_request(self, served: bool) -> None:
        """Count one policy GET."""
        self.policy_fetches.labels("served" if served else "unknown_host").inc()

    def _org_label(self, raw: str) -> str:
        name = organization_key(raw)
        if name in self._org_labels:
            return name
        if len(self._org_labels) < MAX_ORGANIZATION_LABELS:
            self._org_labels.add(name)
            return name
        return OTHER
