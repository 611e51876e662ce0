"""Log timestamps → sortable ``YYYY-MM-DDTHH:MM:SS`` text, and the ``--since/--until`` window.

Syslog stamps (``Dec  1 03:17:35``) carry no year: the caller supplies one.
Times are compared as the log wrote them (the MTA's local time); an RFC 3339
offset is dropped, not converted. Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
