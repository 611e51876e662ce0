"""Bounded counters summarising accepted TLS-RPT reports, for ``/report`` and merging.

Turns ``Report`` values into counts: sessions by policy type, failures by result type,
and reporting organisations in a bounded table (the senders that tried TLS and failed).
Every dimension is bounded whatever the input. Must not do I/O, log, or touch metrics.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mxgate_gateway.mtasts.tlsrpt import Report

if TYPE_CHECKING:
    from mxgate_gateway.report.document import TLSRPTOrganization, TLSRPTSection

__all__ = [
    "OTHER",
    "POLICY_TYPES",
    "RESULT_TYPES",
    "TLSRPTSummary",
    "merge_summaries",
    "organization_key",
    "policy_type_label",
    "result_type_label",
]

OTHER = "other"
POLICY_TYPES = ("sts", "tlsa", "no-policy-found")  # RFC 8460 §4.4
RESULT_TYPES = (  # RFC 8460 §4.3
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
)
TOP_ORGANIZATIONS = 10
_UNSAFE = re.compile(r"[^\w .@&()+,'-]+")


def policy_type_label(raw: str) -> str:
    """The bounded label for a ``policy-type``: a registered value or ``other``."""
    value = raw.strip().lower()
    return value if value in POLICY_TYPES else OTHER


def result_type_label(raw: str) -> str:
    """The bounded label for a ``result-type``: a registered value or ``other``."""
    value = raw.strip().lower()
    return value if value in RESULT_TYPES else OTHER


def organization_key(raw: str) -> str:
    """A display-safe organisation name: no control or markup characters, at most 64."""
    cleaned = " ".join(_UNSAFE.sub(" ", raw).split())[:64].strip()
    return cleaned or "(unnamed)"


@dataclass(slots=True)
class _Org:
    reports: int = 0
    successful: int = 0
    failed: int = 0


class TLSRPTSummary:
    """Running totals over accepted reports; bounded in every dimension.

    Organisations beyond ``max_organizations`` distinct names are counted together as
    ``untracked``; ``seen`` remembers the last ``max_report_ids`` report ids.
    """

    def __init__(self, max_organizations: int = 1000, max_report_ids: int = 4096) -> None:
        self.max_organizations = max_organizations
        self.accepted = 0
        self.duplicates = 0
        self.rejected: dict[str, int] = {}
        self.by_policy_type = {t: [0, 0] for t in (*POLICY_TYPES, OTHER)}
        self.failures = dict.fromkeys((*RESULT_TYPES, OTHER), 0)
        self.organizations: dict[str, _Org] = {}
        self.untracked = _Org()
        self._ids: deque[bytes] = deque(maxlen=max_report_ids)
        self._id_set: set[bytes] = set()

    def seen(self, report: Report) -> bool:
        """True if this (organisation, report-id) was already counted; else remember it."""
        # A 32-byte digest, not the strings: memory stays ~100 bytes per id, whatever is sent.
        raw = f"{report.organization_name}\0{report.report_id}".encode("utf-8", "replace")
        key = hashlib.sha256(raw).digest()
        if key in self._id_set:
            return True
        if len(self._ids) == self._ids.maxlen:
            self._id_set.discard(self._ids[0])
        self._ids.append(key)
        self._id_set.add(key)
        return False

    def add(self, report: Report) -> None:
        """Count one accepted report."""
        self.accepted += 1
        name = organization_key(report.organization_name)
        org = self.organizations.get(name)
        if org is None:
            if len(self.organizations) < self.max_organizations:
                org = self.organizations[name] = _Org()
            else:
                org = self.untracked
        org.reports += 1
        for policy in report.policies:
            counts = self.by_policy_type[policy_type_label(policy.policy_type)]
            counts[0] += policy.successful_sessions
            counts[1] += policy.failed_sessions
            org.successful += policy.successful_sessions
            org.failed += policy.failed_sessions
            for detail in policy.failures:
                self.failures[result_type_label(detail.result_type)] += detail.failed_session_count

    def reject(self, reason: str) -> None:
        """Count one refused report; ``reason`` is a bounded label (an ``ErrorKind`` value)."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def as_dict(self, top: int = TOP_ORGANIZATIONS) -> TLSRPTSection:
        """The ``tlsrpt`` section of ``/report`` (JSON-ready)."""
        ranked = sorted(
            self.organizations.items(), key=lambda kv: (-kv[1].failed, -kv[1].reports, kv[0])
        )
        return {
            "reports": {
                "accepted": self.accepted,
                "duplicate": self.duplicates,
                "rejected": dict(sorted(self.rejected.items())),
            },
            "sessions": {
                "successful": sum(c[0] for c in self.by_policy_type.values()),
                "failed": sum(c[1] for c in self.by_policy_type.values()),
            },
            "by_policy_type": {
                t: {"successful": c[0], "failed": c[1]} for t, c in self.by_policy_type.items()
            },
            "failures_by_result_type": dict(self.failures),
            "organizations": [_org_row(name, org) for name, org in ranked[:top]],
            "organizations_not_listed": _org_row("(not listed)", _fold(ranked[top:], self)),
        }


def _org_row(name: str, org: _Org) -> TLSRPTOrganization:
    return {
        "organization": name,
        "reports": org.reports,
        "successful": org.successful,
        "failed": org.failed,
    }


def _fold(rest: list[tuple[str, _Org]], summary: TLSRPTSummary) -> _Org:
    total = _Org(summary.untracked.reports, summary.untracked.successful, summary.untracked.failed)
    for _, org in rest:
        total.reports += org.reports
        total.successful += org.successful
        total.failed += org.failed
    return total


def merge_summaries(
    a: Mapping[str, Any], b: Mapping[str, Any], top: int = TOP_ORGANIZATIONS
) -> dict[str, Any]:
    """Merge two ``tlsrpt`` sections (from two gateways) into one; pure.

    Counts add exactly. The organisation list is re-ranked from both lists; an
    organisation below one gateway's cut stays in ``organizations_not_listed``.
    """
    merged = _add(a, b, skip={"organizations"})
    orgs: dict[str, _Org] = {}
    for row in [*a.get("organizations", []), *b.get("organizations", [])]:
        org = orgs.setdefault(str(row["organization"]), _Org())
        org.reports += int(row["reports"])
        org.successful += int(row["successful"])
        org.failed += int(row["failed"])
    ranked = sorted(orgs.items(), key=lambda kv: (-kv[1].failed, -kv[1].reports, kv[0]))
    rest = merged["organizations_not_listed"]
    for _, org in ranked[top:]:
        rest["reports"] += org.reports
        rest["successful"] += org.successful
        rest["failed"] += org.failed
    merged["organizations"] = [_org_row(name, org) for name, org in ranked[:top]]
    return merged


def _add(a: Mapping[str, Any], b: Mapping[str, Any], skip: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(set(a) | set(b)):
        if key in skip:
            continue
        x, y = a.get(key), b.get(key)
        if isinstance(x, Mapping) or isinstance(y, Mapping):
            out[key] = _add(x or {}, y or {}, set())
        elif isinstance(x, str) or isinstance(y, str):
            out[key] = x if x is not None else y
        else:
            out[key] = int(x or 0) + int(y or 0)
    return out
