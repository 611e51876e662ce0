"""Render the ``tlsrpt`` section of a ``/report`` body as plain-text lines, and merge many.

Pure: typed sections (``report.document.TLSRPTSection``) in, lines out, deterministic.
It must not fetch or recompute counts: every number shown is read from the section
``TLSRPTSummary.as_dict`` or a merge produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, cast

from mxgate_gateway.mtasts.summary import merge_summaries

if TYPE_CHECKING:
    from mxgate_gateway.report.document import TLSRPTSection

__all__ = ["merge_sections", "render_lines"]


def merge_sections(sections: Iterable[TLSRPTSection | None]) -> TLSRPTSection | None:
    """Merge the ``tlsrpt`` sections of several reports; None if none had one.

    Raises ValueError when a section is not shaped like ``TLSRPTSummary.as_dict()``.
    """
    merged: TLSRPTSection | None = None
    for section in sections:
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise ValueError("tlsrpt: expected an object")
        try:
            merged = cast("TLSRPTSection", merge_summaries(merged or {}, section))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"tlsrpt: malformed section ({exc!r})") from None
    return merged


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _rows(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        first, *rest = row
        line = f"  {first!s:<{widths[0]}}"
        line += "".join(f"  {c!s:>{w}}" for c, w in zip(rest, widths[1:], strict=True))
        out.append(line.rstrip())
    return out


def render_lines(section: TLSRPTSection) -> list[str]:
    """The TLS-RPT part of ``mxgate report``: senders that tried TLS to us and failed."""
    reports = section["reports"]
    sessions = section["sessions"]
    ok, failed = int(sessions["successful"]), int(sessions["failed"])
    rejected = sum(int(n) for n in reports["rejected"].values())
    lines = [
        "TLS-RPT (RFC 8460): senders that tried TLS to us and failed",
        f"  reports accepted {reports['accepted']}, duplicates {reports['duplicate']},"
        f" refused {rejected}",
        f"  sessions: {ok + failed} reported, {failed} failed ({_pct(failed, ok + failed)})",
    ]
    failures = [(str(k), int(v)) for k, v in section["failures_by_result_type"].items() if v]
    if failures:
        failures.sort(key=lambda kv: (-kv[1], kv[0]))
        lines += _rows(["failure result type", "sessions"], failures)
    orgs = section["organizations"]
    if orgs:
        rows = [[o["organization"], o["reports"], o["successful"], o["failed"]] for o in orgs]
        lines += _rows(["reporting organisation", "reports", "successful", "failed"], rows)
    return lines
