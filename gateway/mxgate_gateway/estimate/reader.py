"""Open log files (plain, gzip, or ``-`` for stdin), tell their format, order rotated ones.

Streams lines, never whole files; progress goes to stderr at most twice a
second. Rotated files may be named in any order: they are read oldest first, by
the first timestamp each holds. This module must not parse what a line means.
"""

from __future__ import annotations

import gzip
import io
import itertools
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

from mxgate_gateway.estimate import exim, postfix
from mxgate_gateway.estimate.stamps import iso_stamp, syslog_stamp

PEEK_LINES = 200
GZIP_MAGIC = b"\x1f\x8b"
_SYSLOG = re.compile(r"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d)")
_ROTATED = re.compile(r"\.(\d+)(?:\.gz)?$")
_ISO = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)")


class LogError(OSError):
    """A log file could not be opened or read."""


@dataclass
class LogFile:
    """One input: its name, size (for progress), syslog year, peeked head and format."""

    name: str
    size: int
    year: int
    last_month: int  # the month of ``year`` the newest line is from (12: unknown)
    head: list[str]
    format: str | None
    first_stamp: str | None
    _raw: BinaryIO
    _text: TextIO

    def lines(self) -> Iterator[str]:
        """Every line (the peeked head first), without its line ending."""
        for line in itertools.chain(self.head, self._text):
            yield line[:-1] if line.endswith("\n") else line

    def position(self) -> int:
        """Bytes consumed from the underlying file (compressed bytes for .gz)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self._text.close()


def detect(head: list[str]) -> str | None:
    """``postfix`` or ``exim`` by which header most of the first lines match; None if neither."""
    pf = sum(1 for line in head if postfix.HEADER.match(line))
    ex = sum(1 for line in head if exim.HEADER.match(line))
    if pf == ex == 0:
        return None
    return "postfix" if pf >= ex else "exim"


def _stamp(line: str, year: int, last_month: int) -> str | None:
    m = _ISO.match(line)
    if m:
        return iso_stamp(m.group(1))
    m = _SYSLOG.match(line)
    return syslog_stamp(m.group(1), m.group(2), m.group(3), year, last_month) if m else None


def open_log(name: str, stdin: BinaryIO | None = None, year: int | None = None) -> LogFile:
    """Open ``name`` (``-``: stdin), gunzipping by magic bytes, and peek at its head.

    ``year`` is for syslog stamps (which have none); default: the file's mtime year.
    """
    try:
        if name == "-":
            raw: BinaryIO = stdin or sys.stdin.buffer
            size, modified = 0, datetime.now(UTC)
        else:
            path = Path(name)
            stat = path.stat()
            size, modified = stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)
            raw = path.open("rb")
        buffered = (
            raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast("Any", raw))
        )
        magic = buffered.peek(2)[:2]
        stream: BinaryIO = buffered
        if magic == GZIP_MAGIC or name.endswith(".gz"):
            stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="\n")
        head = list(itertools.islice(text, PEEK_LINES))
    except (OSError, EOFError) as exc:
        raise LogError(f"{name}: {exc}") from None
    last_month = 12 if year else modified.month
    year = year or modified.year
    first = next((s for s in (_stamp(line, year, last_month) for line in head) if s), None)
    return LogFile(name, size, year, last_month, head, detect(head), first, raw, text)


def _rotation(name: str) -> int:
    """``maillog.2.gz`` → 2 (older than ``maillog.1``, older than ``maillog``: 0)."""
    m = _ROTATED.search(name)
    return int(m.group(1)) if m else 0


def chronological(logs: list[LogFile]) -> list[LogFile]:
    """Oldest first (rotated files named in any order): by first timestamp, then rotation number.

    Stamps have one-second resolution, so two files can start in the same second;
    then ``maillog.2`` comes before ``maillog.1`` before ``maillog``.
    """
    return sorted(
        logs, key=lambda f: (f.first_stamp is None, f.first_stamp or "", -_rotation(f.name))
    )


class Progress:
    """``estimate: 41% 3.2 GB, 21,000,000 lines, 410,000 lines/s`` on stderr, twice a second."""

    def __init__(self, total_bytes: int, out: TextIO | None, interval: float = 0.5) -> None:
        self.total = total_bytes
        self.out = out
        self.interval = interval
        self.started = self._last = time.monotonic()
        self.done_bytes = 0  # bytes of files already finished

    def tick(self, lines: int, current: LogFile) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        done = self.done_bytes + current.position()
        pct = f"{100.0 * done / self.total:.0f}% " if self.total else ""
        rate = lines / max(now - self.started, 1e-9)
        self.out.write(
            f"\restimate: {pct}{done / 1e6:,.0f} MB, {lines:,} lines, {rate:,.0f} lines/s"
        )
        self.out.flush()

    def file_done(self, current: LogFile) -> None:
        self.done_bytes += current.size

    def finish(self) -> None:
        if self.out is not None and self._last != self.started:
            self.out.write("\n")
            self.out.flush()
