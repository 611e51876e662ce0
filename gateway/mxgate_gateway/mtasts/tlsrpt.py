"""Parse and validate RFC 8460 TLS-RPT reports: bounded gunzip, JSON, §4.4 schema.

Every input, however hostile, yields a value: a ``Report`` or a ``ReportError`` naming
the problem and its field path. Decompression streams with a hard output cap, so a
gzip bomb is refused after at most ``limit + 1`` bytes. No I/O, logging or metrics.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn

__all__ = [
    "ErrorKind",
    "FailureDetail",
    "PolicyResult",
    "Report",
    "ReportError",
    "gunzip_bounded",
    "parse_report",
    "report_sessions",
]

MAX_COUNT = 10**9  # sessions in one report: more than any sender makes in a day (issue 12.11)
MAX_STRING = 4096


class ErrorKind(StrEnum):
    """Why a report was refused; a bounded metric label."""

    TOO_LARGE = "too_large"
    BAD_GZIP = "bad_gzip"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    OVER_QUOTA = "over_quota"  # valid, but its source sent too much this interval (http)


@dataclass(frozen=True, slots=True)
class ReportError:
    """A refused report: what is wrong (``kind``), where (``path``) and a short message."""

    kind: ErrorKind
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class FailureDetail:
    """One ``failure-details`` entry (RFC 8460 §4.4), the fields we count on."""

    result_type: str
    failed_session_count: int
    receiving_mx_hostname: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """One ``policies[]`` entry: the policy applied and its session counts."""

    policy_type: str
    policy_domain: str
    mx_hosts: tuple[str, ...]
    successful_sessions: int
    failed_sessions: int
    failures: tuple[FailureDetail, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """A valid TLS-RPT report (RFC 8460 §4.4)."""

    organization_name: str
    contact_info: str
    report_id: str
    start: datetime
    end: datetime
    policies: tuple[PolicyResult, ...]


_FEED = 256  # input bytes per decompress() call: bounds what one member's leftover re-copies


def gunzip_bounded(data: bytes, limit: int) -> bytes | ReportError:
    """Decompress gzip ``data`` (one or more members) producing at most ``limit`` bytes.

    Input goes to zlib in windows of ``_FEED`` bytes, so a member's end re-copies at most
    one window (``unused_data``), never the rest of the body: the work is linear in
    ``len(data)`` however many tiny members it holds (issue 12.8).
    """
    if not data:
        return ReportError(ErrorKind.BAD_GZIP, "(body)", "empty body")
    out = bytearray()
    view = memoryview(data)
    pos = 0  # next input byte not yet handed to zlib
    carry = b""  # input handed to the member that ended, not consumed by it
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    started = False  # the current member has been fed at least one byte
    try:
        while True:
            if carry:
                pending, carry = carry, b""
            elif pos < len(data):
                pending, pos = bytes(view[pos : pos + _FEED]), pos + _FEED
            else:
                break
            if (
                not started
                and not pending.strip(b"\x00")
                and not view[pos:].tobytes().strip(b"\x00")
            ):
                break  # only NUL padding is left after the last member
            started = True
            while pending and not d.eof:
                chunk = d.decompress(pending, limit - len(out) + 1)
                out += chunk
                if len(out) > limit:
                    return ReportError(
                        ErrorKind.TOO_LARGE, "(body)", f"decompresses to more than {limit} bytes"
                    )
                pending = d.unconsumed_tail
            if d.eof:
                carry = d.unused_data
                d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                started = False
    except zlib.error as exc:
        return ReportError(ErrorKind.BAD_GZIP, "(body)", f"not valid gzip: {exc}")
    if started:
        return ReportError(ErrorKind.BAD_GZIP, "(body)", "gzip stream is truncated")
    return bytes(out)


def parse_report(body: bytes, *, gzipped: bool, max_decompressed: int) -> Report | ReportError:
    """Parse a report body as POSTed (``application/tlsrpt+gzip`` or ``+json``)."""
    if gzipped:
        raw = gunzip_bounded(body, max_decompressed)
        if isinstance(raw, ReportError):
            return raw
    elif len(body) > max_decompressed:
        return ReportError(ErrorKind.TOO_LARGE, "(body)", f"larger than {max_decompressed} bytes")
    else:
        raw = body
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ReportError(ErrorKind.NOT_UTF8, "(body)", "report is not UTF-8")
    try:
        doc = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        return ReportError(ErrorKind.NOT_JSON, "(body)", f"not JSON: {str(exc)[:120]}")
    try:
        return _report(doc)
    except _Invalid as exc:
        return exc.error


# --- schema walk (RFC 8460 §4.4) ---------------------------------------------


class _Invalid(Exception):  # noqa: N818 - internal control flow, never escapes this module
    def __init__(self, error: ReportError) -> None:
        self.error = error


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed in a report")


def _fail(kind: ErrorKind, path: str, message: str) -> NoReturn:
    raise _Invalid(ReportError(kind, path, message))


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(ErrorKind.WRONG_TYPE, path, f"must be an object, not {_type_name(value)}")
    return value


def _arr(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(ErrorKind.WRONG_TYPE, path, f"must be an array, not {_type_name(value)}")
    return value


def _req(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        _fail(ErrorKind.MISSING_FIELD, f"{path}.{key}" if path else key, "is required")
    return obj[key]


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        _fail(ErrorKind.WRONG_TYPE, path, f"must be a string, not {_type_name(value)}")
    if len(value) > MAX_STRING:
        _fail(ErrorKind.INVALID_VALUE, path, f"longer than {MAX_STRING} characters")
    return value


def _opt_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    return None if obj.get(key) is None else _str(obj[key], f"{path}.{key}")


def _count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(ErrorKind.WRONG_TYPE, path, f"must be an integer, not {_type_name(value)}")
    if not 0 <= value <= MAX_COUNT:
        _fail(ErrorKind.INVALID_VALUE, path, f"must be between 0 and {MAX_COUNT}")
    return value


def _datetime(value: Any, path: str) -> datetime:
    text = _str(value, path)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        _fail(ErrorKind.INVALID_VALUE, path, "is not an RFC 3339 date-time")
    if when.tzinfo is None:
        _fail(ErrorKind.INVALID_VALUE, path, "needs a time zone ('Z' or an offset)")
    return when


def _report(doc: Any) -> Report:
    top = _obj(doc, "(top level)")
    dates = _obj(_req(top, "date-range", ""), "date-range")
    start = _datetime(_req(dates, "start-datetime", "date-range"), "date-range.start-datetime")
    end = _datetime(_req(dates, "end-datetime", "date-range"), "date-range.end-datetime")
    if end < start:
        _fail(ErrorKind.INVALID_VALUE, "date-range", "end-datetime is before start-datetime")
    policies = _arr(_req(top, "policies", ""), "policies")
    report = Report(
        organization_name=_str(_req(top, "organization-name", ""), "organization-name"),
        contact_info=_str(_req(top, "contact-info", ""), "contact-info"),
        report_id=_str(_req(top, "report-id", ""), "report-id"),
        start=start,
        end=end,
        policies=tuple(_policy(p, f"policies[{i}]") for i, p in enumerate(policies)),
    )
    if report_sessions(report) > MAX_COUNT:
        _fail(ErrorKind.INVALID_VALUE, "policies", f"more than {MAX_COUNT} sessions in one report")
    return report


def report_sessions(report: Report) -> int:
    """All sessions a report claims (successful + failed, every policy)."""
    return sum(p.successful_sessions + p.failed_sessions for p in report.policies)


def _policy(value: Any, path: str) -> PolicyResult:
    entry = _obj(value, path)
    pol = _obj(_req(entry, "policy", path), f"{path}.policy")
    ppath = f"{path}.policy"
    if pol.get("policy-string") is not None:
        for i, line in enumerate(_arr(pol["policy-string"], f"{ppath}.policy-string")):
            _str(line, f"{ppath}.policy-string[{i}]")
    mx = pol.get("mx-host")
    if mx is None:
        mx_hosts: tuple[str, ...] = ()
    elif isinstance(mx, list):
        mx_hosts = tuple(_str(h, f"{ppath}.mx-host[{i}]") for i, h in enumerate(mx))
    else:
        mx_hosts = (_str(mx, f"{ppath}.mx-host"),)
    summary = _obj(_req(entry, "summary", path), f"{path}.summary")
    spath = f"{path}.summary"
    details = entry.get("failure-details")
    detail_list = [] if details is None else _arr(details, f"{path}.failure-details")
    return PolicyResult(
        policy_type=_str(_req(pol, "policy-type", ppath), f"{ppath}.policy-type"),
        policy_domain=_str(_req(pol, "policy-domain", ppath), f"{ppath}.policy-domain"),
        mx_hosts=mx_hosts,
        successful_sessions=_count(
            _req(summary, "total-successful-session-count", spath),
            f"{spath}.total-successful-session-count",
        ),
        failed_sessions=_count(
            _req(summary, "total-failure-session-count", spath),
            f"{spath}.total-failure-session-count",
        ),
        failures=tuple(
            _failure(d, f"{path}.failure-details[{i}]") for i, d in enumerate(detail_list)
        ),
    )


def _failure(value: Any, path: str) -> FailureDetail:
    detail = _obj(value, path)
    for key in ("sending-mta-ip", "receiving-ip", "receiving-mx-helo", "additional-information"):
        _opt_str(detail, key, path)
    _opt_str(detail, "failure-reason-code", path)
    return FailureDetail(
        result_type=_str(_req(detail, "result-type", path), f"{path}.result-type"),
        failed_session_count=_count(
            _req(detail, "failed-session-count", path), f"{path}.failed-session-count"
        ),
        receiving_mx_hostname=_opt_str(detail, "receiving-mx-hostname", path),
    )
