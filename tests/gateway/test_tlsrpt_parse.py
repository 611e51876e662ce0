"""TLS-RPT report parsing (RFC 8460 §4.4) and bounded gunzip: every input yields a value."""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxgate_gateway.mtasts.tlsrpt import (
    ErrorKind,
    Report,
    ReportError,
    gunzip_bounded,
    parse_report,
)

RFC_EXAMPLE = (Path(__file__).parent / "data" / "rfc8460-example-report.json").read_bytes()
LIMIT = 1 << 20


def example() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RFC_EXAMPLE)
    return doc


def as_json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def parse(body: bytes, gzipped: bool = False, limit: int = LIMIT) -> Report | ReportError:
    return parse_report(body, gzipped=gzipped, max_decompressed=limit)


def test_rfc_8460_example_report_parses() -> None:
    """The RFC's own example report (typed in) is valid and every count is read."""
    report = parse(RFC_EXAMPLE)
    assert isinstance(report, Report), report
    assert report.organization_name == "Company-X"
    assert report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert report.start.isoformat() == "2016-04-01T00:00:00+00:00"
    (policy,) = report.policies
    assert (policy.policy_type, policy.policy_domain) == ("sts", "company-y.example")
    assert policy.mx_hosts == ("*.mail.company-y.example",)
    assert (policy.successful_sessions, policy.failed_sessions) == (5326, 303)
    assert [(f.result_type, f.failed_session_count) for f in policy.failures] == [
        ("certificate-expired", 100),
        ("starttls-not-supported", 200),
        ("validation-failure", 3),
    ]


def test_gzipped_example_equals_plain_example() -> None:
    """``application/tlsrpt+gzip`` bodies parse to the same report as the JSON."""
    assert parse(gzip.compress(RFC_EXAMPLE), gzipped=True) == parse(RFC_EXAMPLE)


def test_concatenated_gzip_members_are_one_body() -> None:
    """A multi-member gzip stream (RFC 1952 §2.2) decompresses to the concatenation."""
    half = len(RFC_EXAMPLE) // 2
    body = gzip.compress(RFC_EXAMPLE[:half]) + gzip.compress(RFC_EXAMPLE[half:])
    assert parse(body, gzipped=True) == parse(RFC_EXAMPLE)


def test_mx_host_as_list_is_accepted() -> None:
    """``mx-host`` as an array of patterns (as large senders send it) is read too."""
    doc = example()
    doc["policies"][0]["policy"]["mx-host"] = ["mx1.a.test", "*.a.test"]
    report = parse(as_json(doc))
    assert isinstance(report, Report)
    assert report.policies[0].mx_hosts == ("mx1.a.test", "*.a.test")


def test_optional_fields_may_be_absent() -> None:
    """A no-policy-found result without policy-string, mx-host or failure-details is valid."""
    doc = example()
    doc["policies"] = [
        {
            "policy": {"policy-type": "no-policy-found", "policy-domain": "a.test"},
            "summary": {"total-successful-session-count": 1, "total-failure-session-count": 0},
        }
    ]
    report = parse(as_json(doc))
    assert isinstance(report, Report)
    assert report.policies[0].failures == ()


def test_gzip_bomb_is_refused_after_the_cap() -> None:
    """64 MiB of zeros in a ~64 KiB gzip is refused without inflating past the cap."""
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    assert len(bomb) < 128 << 10
    result = gunzip_bounded(bomb, LIMIT)
    assert isinstance(result, ReportError)
    assert result.kind is ErrorKind.TOO_LARGE


def test_decompressed_size_exactly_at_the_cap_passes() -> None:
    """The cap is inclusive: a body inflating to exactly ``limit`` bytes is kept."""
    assert gunzip_bounded(gzip.compress(b"x" * 4096), 4096) == b"x" * 4096
    assert isinstance(gunzip_bounded(gzip.compress(b"x" * 4097), 4096), ReportError)


def test_plain_json_over_the_cap_is_refused() -> None:
    """An uncompressed report larger than the decompressed cap is refused as too large."""
    result = parse(RFC_EXAMPLE, limit=len(RFC_EXAMPLE) - 1)
    assert isinstance(result, ReportError)
    assert result.kind is ErrorKind.TOO_LARGE


GZ = gzip.compress(RFC_EXAMPLE)
RAW_DEFLATE = zlib.compress(RFC_EXAMPLE)


@pytest.mark.parametrize(
    ("body", "gzipped", "kind"),
    [
        pytest.param(GZ[: len(GZ) // 2], True, ErrorKind.BAD_GZIP, id="truncated-gzip"),
        pytest.param(GZ[:-4], True, ErrorKind.BAD_GZIP, id="gzip-missing-trailer"),
        pytest.param(GZ[:10], True, ErrorKind.BAD_GZIP, id="gzip-header-only"),
        pytest.param(b"", True, ErrorKind.BAD_GZIP, id="empty-gzip"),
        pytest.param(RFC_EXAMPLE, True, ErrorKind.BAD_GZIP, id="json-sent-as-gzip"),
        pytest.param(RAW_DEFLATE, True, ErrorKind.BAD_GZIP, id="zlib-not-gzip"),
        pytest.param(GZ[:-8] + b"\0" * 8, True, ErrorKind.BAD_GZIP, id="gzip-bad-crc"),
        pytest.param(GZ + b"garbage", True, ErrorKind.BAD_GZIP, id="gzip-trailing-garbage"),
        pytest.param(b"\xff\xfe{}", False, ErrorKind.NOT_UTF8, id="not-utf8"),
        pytest.param(b"{", False, ErrorKind.NOT_JSON, id="truncated-json"),
        pytest.param(b"", False, ErrorKind.NOT_JSON, id="empty-json"),
        pytest.param(b'{"a": NaN}', False, ErrorKind.NOT_JSON, id="nan"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, False, ErrorKind.NOT_JSON, id="deep"),
        pytest.param(b'{"n": ' + b"9" * 5000 + b"}", False, ErrorKind.NOT_JSON, id="huge-int"),
        pytest.param(b"[]", False, ErrorKind.WRONG_TYPE, id="top-level-array"),
        pytest.param(b'"report"', False, ErrorKind.WRONG_TYPE, id="top-level-string"),
        pytest.param(b"{}", False, ErrorKind.MISSING_FIELD, id="empty-object"),
    ],
)
def test_hostile_bodies_yield_an_error_value(body: bytes, gzipped: bool, kind: ErrorKind) -> None:
    """Broken gzip, broken JSON and non-objects are refused with the right kind."""
    result = parse(body, gzipped=gzipped)
    assert isinstance(result, ReportError), result
    assert result.kind is kind


def _drop(*path: str | int) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return edit


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return edit


P0 = ("policies", 0)
F0 = (*P0, "failure-details", 0)


@pytest.mark.parametrize(
    ("edit", "kind", "field"),
    [
        (_drop("organization-name"), ErrorKind.MISSING_FIELD, "organization-name"),
        (_drop("date-range"), ErrorKind.MISSING_FIELD, "date-range"),
        (_drop("date-range", "end-datetime"), ErrorKind.MISSING_FIELD, "date-range.end-datetime"),
        (_drop("contact-info"), ErrorKind.MISSING_FIELD, "contact-info"),
        (_drop("report-id"), ErrorKind.MISSING_FIELD, "report-id"),
        (_drop("policies"), ErrorKind.MISSING_FIELD, "policies"),
        (_drop(*P0, "policy"), ErrorKind.MISSING_FIELD, "policies[0].policy"),
        (
            _drop(*P0, "policy", "policy-type"),
            ErrorKind.MISSING_FIELD,
            "policies[0].policy.policy-type",
        ),
        (
            _drop(*P0, "policy", "policy-domain"),
            ErrorKind.MISSING_FIELD,
            "policies[0].policy.policy-domain",
        ),
        (_drop(*P0, "summary"), ErrorKind.MISSING_FIELD, "policies[0].summary"),
        (
            _drop(*P0, "summary", "total-failure-session-count"),
            ErrorKind.MISSING_FIELD,
            "policies[0].summary.total-failure-session-count",
        ),
        (
            _drop(*F0, "result-type"),
            ErrorKind.MISSING_FIELD,
            "policies[0].failure-details[0].result-type",
        ),
        (
            _drop(*F0, "failed-session-count"),
            ErrorKind.MISSING_FIELD,
            "policies[0].failure-details[0].failed-session-count",
        ),
        (_set(42, "organization-name"), ErrorKind.WRONG_TYPE, "organization-name"),
        (_set(None, "report-id"), ErrorKind.WRONG_TYPE, "report-id"),
        (_set({}, "policies"), ErrorKind.WRONG_TYPE, "policies"),
        (_set("x", *P0), ErrorKind.WRONG_TYPE, "policies[0]"),
        (_set([], *P0, "summary"), ErrorKind.WRONG_TYPE, "policies[0].summary"),
        (
            _set("5326", *P0, "summary", "total-successful-session-count"),
            ErrorKind.WRONG_TYPE,
            "policies[0].summary.total-successful-session-count",
        ),
        (
            _set(5.5, *P0, "summary", "total-successful-session-count"),
            ErrorKind.WRONG_TYPE,
            "policies[0].summary.total-successful-session-count",
        ),
        (
            _set(True, *F0, "failed-session-count"),
            ErrorKind.WRONG_TYPE,
            "policies[0].failure-details[0].failed-session-count",
        ),
        (
            _set(-1, *F0, "failed-session-count"),
            ErrorKind.INVALID_VALUE,
            "policies[0].failure-details[0].failed-session-count",
        ),
        (
            _set(10**13, *P0, "summary", "total-failure-session-count"),
            ErrorKind.INVALID_VALUE,
            "policies[0].summary.total-failure-session-count",
        ),
        (_set("x", *P0, "failure-details"), ErrorKind.WRONG_TYPE, "policies[0].failure-details"),
        (
            _set([1], *P0, "policy", "policy-string"),
            ErrorKind.WRONG_TYPE,
            "policies[0].policy.policy-string[0]",
        ),
        (
            _set(7, *F0, "sending-mta-ip"),
            ErrorKind.WRONG_TYPE,
            "policies[0].failure-details[0].sending-mta-ip",
        ),
        (_set("x" * 5000, "contact-info"), ErrorKind.INVALID_VALUE, "contact-info"),
        (
            _set("yesterday", "date-range", "start-datetime"),
            ErrorKind.INVALID_VALUE,
            "date-range.start-datetime",
        ),
        (
            _set("2016-04-01T00:00:00", "date-range", "start-datetime"),
            ErrorKind.INVALID_VALUE,
            "date-range.start-datetime",
        ),
        (
            _set("2016-03-01T00:00:00Z", "date-range", "end-datetime"),
            ErrorKind.INVALID_VALUE,
            "date-range",
        ),
    ],
)
def test_schema_violations_name_the_field(
    edit: Callable[[dict[str, Any]], None], kind: ErrorKind, field: str
) -> None:
    """Each missing field, wrong type or bad value is reported with its field path."""
    doc = copy.deepcopy(example())
    edit(doc)
    result = parse(as_json(doc))
    assert isinstance(result, ReportError), result
    assert (result.kind, result.path) == (kind, field)


def test_unknown_types_and_extra_fields_are_accepted() -> None:
    """Unregistered policy/result types and extension fields are kept (RFC 8460 §6)."""
    doc = example()
    doc["policies"][0]["policy"]["policy-type"] = "future-type"
    doc["policies"][0]["failure-details"][0]["result-type"] = "quantum-failure"
    doc["extension"] = {"anything": [1, 2]}
    report = parse(as_json(doc))
    assert isinstance(report, Report)
    assert report.policies[0].policy_type == "future-type"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512), gzipped=st.booleans())
def test_arbitrary_bytes_never_raise(body: bytes, gzipped: bool) -> None:
    """Any byte string, as gzip or JSON, yields a Report or a ReportError, never an exception."""
    assert isinstance(parse(body, gzipped=gzipped), Report | ReportError)


@settings(max_examples=200, deadline=None)
@given(
    path=st.lists(
        st.sampled_from(["policies", 0, "policy", "summary", "failure-details", "date-range"]),
        min_size=1,
        max_size=4,
    ),
    value=JSON_VALUES,
)
def test_any_value_anywhere_never_raises(path: list[str | int], value: Any) -> None:
    """Replacing any part of the RFC example with any JSON value yields a value, never raises."""
    doc: Any = example()
    node = doc
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    try:
        node[path[-1]] = value
    except (IndexError, TypeError):
        return
    result = parse(as_json(doc))
    assert isinstance(result, Report | ReportError)
    if isinstance(result, ReportError):
        assert result.path
        assert result.message


class _CountingDecompressor:
    """A real zlib decompressor that adds up the input bytes it is handed (the work)."""

    def __init__(self, fed: list[int], **kwargs: Any) -> None:
        self._d = zlib.decompressobj(**kwargs)
        self._fed = fed

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        self._fed[0] += len(data)
        return self._d.decompress(data, max_length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._d, name)


@pytest.mark.parametrize("members", [2_000, 20_000])
def test_many_tiny_gzip_members_cost_linear_work(
    members: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12.8: each of N tiny members must not re-feed the rest of the body (N² work).

    The input handed to zlib stays within a constant multiple of the body size,
    whatever the member count; the output is still the concatenation.
    """
    import types  # noqa: PLC0415

    from mxgate_gateway.mtasts import tlsrpt  # noqa: PLC0415

    fed = [0]
    fake_zlib = types.SimpleNamespace(
        decompressobj=lambda **kw: _CountingDecompressor(fed, **kw),
        error=zlib.error,
        MAX_WBITS=zlib.MAX_WBITS,
    )
    monkeypatch.setattr(tlsrpt, "zlib", fake_zlib)
    body = gzip.compress(b"", mtime=0) * (members - 1) + gzip.compress(b"{}", mtime=0)
    assert gunzip_bounded(body, LIMIT) == b"{}"
    assert fed[0] <= 16 * len(body), f"{fed[0]} bytes fed for a {len(body)}-byte body"


def test_nul_padding_after_the_last_member_is_ignored() -> None:
    """Trailing NUL padding (longer than one input window) after the last member is not an error."""
    assert gunzip_bounded(gzip.compress(b"{}") + b"\0" * 1000, LIMIT) == b"{}"
    assert isinstance(gunzip_bounded(gzip.compress(b"{}")[:-3], LIMIT), ReportError)
