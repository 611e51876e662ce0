"""The ``mxgate-report/1`` document: one typed owner for the ``/report`` JSON.

Typed, frozen models of the document (periods, counterfactual, rule rows, top
lists, the optional ``tlsrpt`` and ``estimate`` sections), strict parsing with a
field path in every error, and rendering back to JSON. The gateway serves it,
``mxgate report`` merges it, ``mxgate estimate`` writes it and the operator reads
it. Pure and standard-library only (the operator imports it): no counting, no
merging, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, TypeGuard, cast

from mxgate_gateway.errors import MxgateError

__all__ = [
    "FORMAT",
    "VERDICTS",
    "Counterfactual",
    "EstimateInfo",
    "Period",
    "ReportDocument",
    "ReportFormatError",
    "RuleRow",
    "TLSRPTSection",
    "TopEntry",
    "Verdicts",
    "parse_document",
]

FORMAT = "mxgate-report/1"
VERDICTS = ("accepted", "rejected", "unknown")
ACTIONS = ("accept", "refuse", "would_refuse")


class ReportFormatError(MxgateError, ValueError):
    """A /report body that is not a loss report this version can read."""


# -- the TLS-RPT section (issue 8): shaped by mtasts.summary, carried as JSON ------------


class TLSRPTReports(TypedDict):
    accepted: int
    duplicate: int
    rejected: dict[str, int]


class TLSRPTSessions(TypedDict):
    successful: int
    failed: int


class TLSRPTOrganization(TypedDict):
    organization: str
    reports: int
    successful: int
    failed: int


class TLSRPTSection(TypedDict):
    """``tlsrpt``: reports taken in, sessions they describe, failures, organisations."""

    reports: TLSRPTReports
    sessions: TLSRPTSessions
    by_policy_type: dict[str, TLSRPTSessions]
    failures_by_result_type: dict[str, int]
    organizations: list[TLSRPTOrganization]
    organizations_not_listed: TLSRPTOrganization


# -- the models --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdicts:
    """How the next hop judged messages: 250 (accepted), 5xx (rejected), neither (unknown)."""

    accepted: int = 0
    rejected: int = 0
    unknown: int = 0

    def to_json(self) -> dict[str, int]:
        return {"accepted": self.accepted, "rejected": self.rejected, "unknown": self.unknown}


@dataclass(frozen=True)
class RuleRow:
    """One policy rule in one mode: how many decisions accepted, refused, would refuse."""

    rule: str
    mode: str
    accept: int = 0
    refuse: int = 0
    would_refuse: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "mode": self.mode,
            "accept": self.accept,
            "refuse": self.refuse,
            "would_refuse": self.would_refuse,
        }


@dataclass(frozen=True)
class TopEntry:
    """A top-list row: ``messages`` is an upper bound, at most ``error`` too high."""

    name: str
    messages: int
    error: int = 0

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "messages": self.messages, "error": self.error}


@dataclass(frozen=True)
class Counterfactual:
    """``if_starttls_required``: the plaintext messages a global require would refuse."""

    refused_messages: int = 0
    of_messages: int = 0
    percent: float = 0.0
    sender_domains: int = 0
    client_networks: int = 0
    sender_domains_exact: bool = True
    client_networks_exact: bool = True
    upstream: Verdicts = field(default_factory=Verdicts)

    @property
    def exact(self) -> bool:
        return self.sender_domains_exact and self.client_networks_exact

    def to_json(self) -> dict[str, object]:
        return {
            "refused_messages": self.refused_messages,
            "of_messages": self.of_messages,
            "percent": self.percent,
            "sender_domains": self.sender_domains,
            "client_networks": self.client_networks,
            "exact": self.exact,
            "sender_domains_exact": self.sender_domains_exact,
            "client_networks_exact": self.client_networks_exact,
            "upstream": self.upstream.to_json(),
        }


@dataclass(frozen=True)
class Period:
    """One period's numbers (since start, or the window) and its mergeable sketch state.

    ``sketches`` is the opaque state of the sender and network sketches
    (``report.tally`` reads it); everything else is plain numbers.
    """

    sessions: Mapping[str, int] = field(default_factory=dict)
    messages: Mapping[str, int] = field(default_factory=dict)
    recipients: Mapping[str, int] = field(default_factory=dict)
    upstream: Mapping[str, Verdicts] = field(default_factory=dict)
    rules: tuple[RuleRow, ...] = ()
    if_starttls_required: Counterfactual = field(default_factory=Counterfactual)
    top_plaintext_sender_domains: tuple[TopEntry, ...] = ()
    top_plaintext_client_networks: tuple[TopEntry, ...] = ()
    sketches: Mapping[str, object] = field(default_factory=dict)

    def rule(self, rule_id: str) -> tuple[RuleRow, ...]:
        """The rows of one rule (one per mode it had)."""
        return tuple(r for r in self.rules if r.rule == rule_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": dict(self.sessions),
            "messages": dict(self.messages),
            "recipients": dict(self.recipients),
            "upstream": {tls: v.to_json() for tls, v in self.upstream.items()},
            "rules": [r.to_json() for r in self.rules],
            "if_starttls_required": self.if_starttls_required.to_json(),
            "top_plaintext_sender_domains": [
                e.to_json() for e in self.top_plaintext_sender_domains
            ],
            "top_plaintext_client_networks": [
                e.to_json() for e in self.top_plaintext_client_networks
            ],
            "sketches": dict(self.sketches),
        }


@dataclass(frozen=True)
class EstimateInfo:
    """``estimate``: present only in a document ``mxgate estimate`` computed from MTA logs.

    ``window`` is then an empty period: a log is history, not the last hour.
    ``unattributed`` counts facts the log showed but could not tie to a session
    or message (truncated or interleaved logs), keyed by what they were.
    """

    source: str
    files: int = 0
    lines: int = 0
    unparsed_lines: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    unattributed: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    policy: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "files": self.files,
            "lines": self.lines,
            "unparsed_lines": self.unparsed_lines,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "unattributed": dict(self.unattributed),
            "notes": list(self.notes),
            "policy": self.policy,
        }


@dataclass(frozen=True)
class ReportDocument:
    """The whole ``GET /report`` body (one gateway's, a merge, or an estimate)."""

    gateways: int
    window_minutes: int
    since_start: Period
    window: Period
    tlsrpt: TLSRPTSection | None = None
    estimate: EstimateInfo | None = None

    def with_tlsrpt(self, section: TLSRPTSection | None) -> ReportDocument:
        return replace(self, tlsrpt=section)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "gateways": self.gateways,
            "window_minutes": self.window_minutes,
            "since_start": self.since_start.to_json(),
            "window": self.window.to_json(),
        }
        if self.tlsrpt is not None:
            out["tlsrpt"] = self.tlsrpt
        if self.estimate is not None:
            out["estimate"] = self.estimate.to_json()
        return out


# -- parsing -----------------------------------------------------------------------------


class _BadFieldError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _obj(data: object, path: str) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise _BadFieldError(path, "expected an object")
    return cast("Mapping[str, object]", data)


def _count(data: object, path: str) -> int:
    if not _is_count(data):
        raise _BadFieldError(path, f"expected a count, got {data!r}"[:200])
    return data


def _counts(data: object, path: str) -> dict[str, int]:
    return {str(k): _count(v, f"{path}.{k}") for k, v in _obj(data, path).items()}


def _bool(data: object, path: str) -> bool:
    if not isinstance(data, bool):
        raise _BadFieldError(path, "expected true or false")
    return data


def _str(data: object, path: str) -> str:
    if not isinstance(data, str):
        raise _BadFieldError(path, "expected a string")
    return data


def _list(data: object, path: str) -> list[object]:
    if not isinstance(data, list):
        raise _BadFieldError(path, "expected a list")
    return data


def _verdicts(data: object, path: str) -> Verdicts:
    obj = _obj(data, path)
    return Verdicts(*(_count(obj.get(v, 0), f"{path}.{v}") for v in VERDICTS))


def _rule(data: object, path: str) -> RuleRow:
    obj = _obj(data, path)
    return RuleRow(
        _str(obj.get("rule"), f"{path}.rule"),
        _str(obj.get("mode"), f"{path}.mode"),
        *(_count(obj.get(a, 0), f"{path}.{a}") for a in ACTIONS),
    )


def _top(data: object, path: str) -> tuple[TopEntry, ...]:
    out = []
    for i, row in enumerate(_list(data, path)):
        obj = _obj(row, f"{path}[{i}]")
        out.append(
            TopEntry(
                _str(obj.get("name"), f"{path}[{i}].name"),
                _count(obj.get("messages"), f"{path}[{i}].messages"),
                _count(obj.get("error", 0), f"{path}[{i}].error"),
            )
        )
    return tuple(out)


def _counterfactual(data: object, path: str) -> Counterfactual:
    obj = _obj(data, path)
    percent = obj.get("percent", 0.0)
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise _BadFieldError(f"{path}.percent", "expected a number")
    exact = _bool(obj.get("exact", True), f"{path}.exact")
    return Counterfactual(
        refused_messages=_count(obj.get("refused_messages"), f"{path}.refused_messages"),
        of_messages=_count(obj.get("of_messages"), f"{path}.of_messages"),
        percent=float(percent),
        sender_domains=_count(obj.get("sender_domains"), f"{path}.sender_domains"),
        client_networks=_count(obj.get("client_networks"), f"{path}.client_networks"),
        sender_domains_exact=_bool(
            obj.get("sender_domains_exact", exact), f"{path}.sender_domains_exact"
        ),
        client_networks_exact=_bool(
            obj.get("client_networks_exact", exact), f"{path}.client_networks_exact"
        ),
        upstream=_verdicts(obj.get("upstream", {}), f"{path}.upstream"),
    )


def parse_period(data: object, path: str = "period") -> Period:
    """A period from JSON; raise ReportFormatError naming the first bad field."""
    try:
        obj = _obj(data, path)
        upstream = _obj(obj.get("upstream"), f"{path}.upstream")
        return Period(
            sessions=_counts(obj.get("sessions"), f"{path}.sessions"),
            messages=_counts(obj.get("messages"), f"{path}.messages"),
            recipients=_counts(obj.get("recipients"), f"{path}.recipients"),
            upstream={str(k): _verdicts(v, f"{path}.upstream.{k}") for k, v in upstream.items()},
            rules=tuple(
                _rule(r, f"{path}.rules[{i}]")
                for i, r in enumerate(_list(obj.get("rules"), f"{path}.rules"))
            ),
            if_starttls_required=_counterfactual(
                obj.get("if_starttls_required"), f"{path}.if_starttls_required"
            ),
            top_plaintext_sender_domains=_top(
                obj.get("top_plaintext_sender_domains", []), f"{path}.top_plaintext_sender_domains"
            ),
            top_plaintext_client_networks=_top(
                obj.get("top_plaintext_client_networks", []),
                f"{path}.top_plaintext_client_networks",
            ),
            sketches=dict(_obj(obj.get("sketches"), f"{path}.sketches")),
        )
    except _BadFieldError as exc:
        raise ReportFormatError(f"not a loss report period: {exc}") from None


def _tlsrpt(data: object) -> TLSRPTSection:
    """Check the section's shape (every count a count) and keep it as typed JSON."""
    path = "tlsrpt"
    obj = _obj(data, path)
    reports = _obj(obj.get("reports"), f"{path}.reports")
    _count(reports.get("accepted"), f"{path}.reports.accepted")
    _count(reports.get("duplicate"), f"{path}.reports.duplicate")
    _counts(reports.get("rejected"), f"{path}.reports.rejected")
    _counts(obj.get("sessions"), f"{path}.sessions")
    for key, value in _obj(obj.get("by_policy_type"), f"{path}.by_policy_type").items():
        _counts(value, f"{path}.by_policy_type.{key}")
    _counts(obj.get("failures_by_result_type"), f"{path}.failures_by_result_type")
    rows = [*_list(obj.get("organizations"), f"{path}.organizations")]
    rows.append(obj.get("organizations_not_listed"))
    for i, row in enumerate(rows):
        org = _obj(row, f"{path}.organizations[{i}]")
        _str(org.get("organization"), f"{path}.organizations[{i}].organization")
        for key in ("reports", "successful", "failed"):
            _count(org.get(key), f"{path}.organizations[{i}].{key}")
    return cast("TLSRPTSection", dict(obj))


def _estimate(data: object) -> EstimateInfo:
    path = "estimate"
    obj = _obj(data, path)

    def opt_str(key: str) -> str | None:
        value = obj.get(key)
        return None if value is None else _str(value, f"{path}.{key}")

    return EstimateInfo(
        source=_str(obj.get("source"), f"{path}.source"),
        files=_count(obj.get("files", 0), f"{path}.files"),
        lines=_count(obj.get("lines", 0), f"{path}.lines"),
        unparsed_lines=_count(obj.get("unparsed_lines", 0), f"{path}.unparsed_lines"),
        first_seen=opt_str("first_seen"),
        last_seen=opt_str("last_seen"),
        unattributed=_counts(obj.get("unattributed", {}), f"{path}.unattributed"),
        notes=tuple(
            _str(n, f"{path}.notes[{i}]")
            for i, n in enumerate(_list(obj.get("notes", []), f"{path}.notes"))
        ),
        policy=opt_str("policy"),
    )


def parse_document(data: object) -> ReportDocument:
    """A ``/report`` body (parsed JSON) → ReportDocument; ReportFormatError if it is not one."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ReportFormatError(f"not a {FORMAT} body")
    gateways = data.get("gateways")
    if not _is_count(gateways) or gateways < 1:
        raise ReportFormatError("gateways: expected a positive count")
    minutes = data.get("window_minutes")
    if not _is_count(minutes) or minutes < 1:
        raise ReportFormatError("window_minutes: expected a positive count")
    try:
        tlsrpt = _tlsrpt(data["tlsrpt"]) if data.get("tlsrpt") is not None else None
        estimate = _estimate(data["estimate"]) if data.get("estimate") is not None else None
    except _BadFieldError as exc:
        raise ReportFormatError(str(exc)) from None
    return ReportDocument(
        gateways=gateways,
        window_minutes=minutes,
        since_start=parse_period(data.get("since_start"), "since_start"),
        window=parse_period(data.get("window"), "window"),
        tlsrpt=tlsrpt,
        estimate=estimate,
    )
