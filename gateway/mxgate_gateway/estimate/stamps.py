"""Log timestamps → sortable ``YYYY-MM-DDTHH:MM:SS`` text, and the ``--since/--until`` window.

``LineGate`` is where both parsers' lines come in: counted, header matched, windowed.

Syslog stamps (``Dec  1 03:17:35``) carry no year: the caller supplies one.
Times are compared as the log wrote them (the MTA's local time); an RFC 3339
offset is dropped, not converted. Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mxgate_gateway.estimate.facts import ParseStats

MONTHS = {
    m: f"{i:02d}"
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def syslog_stamp(month: str, day: str, hms: str, year: int, last_month: int = 12) -> str | None:
    """``("Dec", "1", "03:17:35", 2026)`` → ``2026-12-01T03:17:35``; None if not a month.

    ``year`` is the year of the file's newest line, written in month ``last_month``:
    a later month belongs to the year before (a log that spans New Year).
    """
    mm = MONTHS.get(month)
    if mm is None:
        return None
    if int(mm) > last_month:
        year -= 1
    return f"{year}-{mm}-{int(day):02d}T{hms}"


def iso_stamp(text: str) -> str:
    """``2026-12-01T03:17:35.1+01:00`` or ``2026-12-01 03:17:35`` → ``2026-12-01T03:17:35``."""
    return text[:10] + "T" + text[11:19]


def parse_bound(text: str) -> str:
    """A ``--since``/``--until`` value (ISO date or date-time) as a comparable stamp."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or date-time: {text!r}") from None
    return value.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class Window:
    """Lines stamped in [since, until); either end open when None."""

    since: str | None = None
    until: str | None = None

    def holds(self, stamp: str | None) -> bool:
        if stamp is None:
            return True  # an unstamped line cannot be placed: keep it
        if self.since is not None and stamp < self.since:
            return False
        return not (self.until is not None and stamp >= self.until)

    @property
    def is_open(self) -> bool:
        return self.since is None and self.until is None


class LineGate:
    """Lets a parser's lines in: counted, header matched, and stamped inside the window.

    ``admit`` returns the header match of a line to parse, or None (not understood:
    counted in ``stats.unparsed``; or outside the window). Lines of one second share
    their stamp text, so ``stamp`` converts it once per second; a stamp outside the
    window keeps its lines out and is looked at again on the next line.
    """

    __slots__ = ("_last", "header", "stamp", "stats", "window")

    def __init__(
        self,
        header: re.Pattern[str],
        stamp: Callable[[re.Match[str]], str | None],
        window: Window,
        stats: ParseStats,
    ) -> None:
        self.header, self.stamp, self.window, self.stats = header, stamp, window, stats
        self._last: str | None = None  # the stamp text last let in

    def admit(self, line: str) -> re.Match[str] | None:
        self.stats.lines += 1
        m = self.header.match(line)
        if m is None:
            self.stats.unparsed += 1
            return None
        text = m["ts"]
        if text != self._last:
            stamp = self.stamp(m)
            if not self.window.is_open and not self.window.holds(stamp):
                self._last = None
                return None
            self._last = text
            self.stats.saw_time(stamp)
        return m
