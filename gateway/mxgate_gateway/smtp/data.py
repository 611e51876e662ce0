"""Reading the DATA section: only <CRLF>.<CRLF> ends it; bare CR/LF never pass.

Streams the client's section read by read (``DataStream``, ``stream_data``):
enforces the message size, the 1000-octet line limit (RFC 5321 §4.5.3.1.6) and
the bare-line-ending rule (SMTP smuggling) incrementally, in a few C-level
passes per read, and hands complete dot-stuffed CRLF lines to a sink. A read
that breaks a rule is judged line by line, exactly as the rules say. It never
holds the whole message. It must not reply, relay or log.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mxgate_gateway.config.model import BareLineEndings

MAX_LINE = 1000  # octets including CRLF, after removing dot stuffing
_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_DOT_LINE = b".\r\n"
_END = b"\r\n.\r\n"


class DataStatus(StrEnum):
    OK = "ok"
    LINE_TOO_LONG = "line_too_long"
    TOO_BIG = "too_big"
    BARE_LINE_ENDING = "bare_line_ending"


@dataclass(frozen=True)
class DataResult:
    """The message bytes (without the final dot) or why they were refused."""

    status: DataStatus
    content: bytes = b""


def has_bare_line_ending(line: bytes) -> bool:
    """True if a CRLF-terminated line contains a CR or LF that is not that CRLF."""
    body = line[:-2]
    return b"\r" in body or b"\n" in body


def normalize_line(line: bytes) -> bytes:
    """Turn every bare CR or LF in a CRLF-terminated line into CRLF."""
    return _BARE.sub(b"\r\n", line[:-2]) + b"\r\n"


def judge_lines(section: bytes, max_size: int, bare: BareLineEndings) -> DataResult:
    """The rules applied line by line to a section of CRLF-terminated lines (no final dot).

    The first rule broken decides the status; this is the reference the fast path in
    ``judge`` must agree with.
    """
    chunks: list[bytes] = []
    size = 0
    status = DataStatus.OK
    for piece in section.split(b"\r\n")[:-1]:
        line = piece[1:] + b"\r\n" if piece.startswith(b".") else piece + b"\r\n"
        if len(line) > MAX_LINE:
            status = DataStatus.LINE_TOO_LONG
        elif has_bare_line_ending(line):
            if bare is BareLineEndings.REJECT:
                status = DataStatus.BARE_LINE_ENDING
            else:
                line = normalize_line(line)
        size += len(line)
        if status is DataStatus.OK and size > max_size:
            status = DataStatus.TOO_BIG
        if status is not DataStatus.OK:
            return DataResult(status)
        chunks.append(line)
    return DataResult(status, b"".join(chunks))


def judge(section: bytes, max_size: int, bare: BareLineEndings) -> DataResult:
    """Unstuff and check a whole section in a few passes; defer to ``judge_lines`` on doubt."""
    crlf = section.count(b"\r\n")
    if section.count(b"\r") == crlf and section.count(b"\n") == crlf:  # no bare CR or LF
        content = section[1:] if section.startswith(b".") else section
        content = content.replace(b"\r\n.", b"\r\n")
        if len(content) <= max_size and _longest_line(content) <= MAX_LINE - 2:
            return DataResult(DataStatus.OK, content)
    return judge_lines(section, max_size, bare)


def _longest_line(content: bytes) -> int:
    if len(content) <= MAX_LINE - 2:
        return len(content)
    return max(map(len, content.split(b"\r\n")))


class DataSink(Protocol):
    """Where a streamed DATA section goes (the upstream transaction): dot-stuffed,
    CRLF-only bytes, in order, never the final dot."""

    async def write(self, data: bytes) -> None: ...


class DataStream:
    """The edge rules applied incrementally to a DATA section, one read at a time.

    ``feed`` takes the client's bytes in order (without the final ``.<CRLF>``) and
    returns what may go to the upstream: complete lines only, dot-stuffed and
    CRLF-only (bare CR/LF normalised when so configured); nothing once a rule is
    broken. It keeps at most one incomplete line (<= ``MAX_LINE`` + 2 octets), so
    its memory and the work per call are bounded by the size of one read. The
    first rule broken, line by line, decides ``status`` exactly as ``judge_lines``.
    """

    def __init__(self, max_size: int, bare: BareLineEndings) -> None:
        self.max_size = max_size
        self.bare = bare
        self.status = DataStatus.OK
        self.size = 0  # octets of the message so far (unstuffed, normalised)
        self._carry = b""

    def feed(self, raw: bytes) -> bytes:
        if self.status is not DataStatus.OK:
            return b""
        data = self._carry + raw if self._carry else raw
        cut = data.rfind(b"\r\n") + 2  # 1 when there is no CRLF: nothing complete
        if cut < 2:
            cut = 0
        segment, self._carry = data[:cut], data[cut:]
        out = self._segment(segment) if segment else b""
        if self.status is DataStatus.OK and len(self._carry) > MAX_LINE + 1:
            # The line in progress is already longer than any allowed line.
            self.status, self._carry, out = DataStatus.LINE_TOO_LONG, b"", b""
        return out if self.status is DataStatus.OK else b""

    def _segment(self, seg: bytes) -> bytes:
        """Complete CRLF-terminated lines starting at a line start."""
        crlf = seg.count(b"\r\n")
        clean = seg.count(b"\r") == crlf and seg.count(b"\n") == crlf
        longest = len(seg) if len(seg) <= MAX_LINE else max(map(len, seg.split(b"\r\n")))
        if longest + 2 <= MAX_LINE and (clean or self.bare is BareLineEndings.NORMALIZE):
            unstuffed = seg[1:] if seg.startswith(b".") else seg
            unstuffed = unstuffed.replace(b"\r\n.", b"\r\n")
            if clean:
                out = seg  # the client's stuffing is valid as is for CRLF-only text
            else:
                unstuffed = _BARE.sub(b"\r\n", unstuffed)
                out = stuff(unstuffed)
            self.size += len(unstuffed)
            if self.size > self.max_size:
                self.status = DataStatus.TOO_BIG
            return out
        return self._lines(seg)

    def _lines(self, seg: bytes) -> bytes:
        """The rules line by line, for a segment with a long line or a bare CR/LF (reject)."""
        result = judge_lines(seg, self.max_size - self.size, self.bare)
        if result.status is not DataStatus.OK:
            self.status = result.status
            return b""
        self.size += len(result.content)
        return stuff(result.content)


def stuff(content: bytes) -> bytes:
    """Dot-stuff CRLF-only message content for the wire (RFC 5321 §4.5.2)."""
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def unstuff(wire: bytes) -> bytes:
    """The inverse of ``stuff`` for CRLF-only dot-stuffed text."""
    content = wire[1:] if wire.startswith(b".") else wire
    return content.replace(b"\r\n.", b"\r\n")


async def stream_data(reader: asyncio.StreamReader, stream: DataStream, sink: DataSink) -> None:
    """Consume DATA up to and including <CRLF>.<CRLF>, passing it through ``stream``
    to ``sink`` read by read; always read to the end.

    The whole section is read even after a violation, so the next bytes on the
    stream are a command again (RFC 5321 §4.2.5: reply after the dot). Nothing is
    kept beyond one read and one incomplete line.
    """
    tail = b"\r\n"  # the CRLF of the DATA command precedes the first line
    while True:
        try:
            chunk = await reader.readuntil(_DOT_LINE)
            done = (tail + chunk[-5:]).endswith(_END)
        except asyncio.LimitOverrunError as exc:
            chunk = await reader.readexactly(exc.consumed)
            done = False
        tail = (tail + chunk[-2:])[-2:]
        out = stream.feed(chunk[:-3] if done else chunk)
        if out:
            await sink.write(out)
        if done:
            return


class _Collect:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.parts.append(data)


async def read_data(
    reader: asyncio.StreamReader, max_size: int, bare: BareLineEndings
) -> DataResult:
    """The whole section as one value (``stream_data`` into memory): for tests and tools;
    the gateway streams instead."""
    stream, sink = DataStream(max_size, bare), _Collect()
    await stream_data(reader, stream, sink)
    if stream.status is not DataStatus.OK:
        return DataResult(stream.status)
    return DataResult(DataStatus.OK, unstuff(b"".join(sink.parts)))
