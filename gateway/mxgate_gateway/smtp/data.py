"""Reading the DATA section: only <CRLF>.<CRLF> ends it; bare CR/LF never pass.

Reads the client's stream in bulk up to the lone dot, removes dot stuffing
in one pass, and enforces the message size and the 1000-octet line limit
(RFC 5321 §4.5.3.1.6) and the bare-line-ending rule (SMTP smuggling). A
section that breaks a rule is judged line by line, exactly as the rules say.
It must not reply, relay or log; it returns a ``DataResult`` value.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from enum import StrEnum

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


async def read_data(
    reader: asyncio.StreamReader, max_size: int, bare: BareLineEndings
) -> DataResult:
    """Consume DATA up to and including <CRLF>.<CRLF>; always read to the end.

    The whole section is read even after a violation, so the next bytes on
    the stream are a command again (RFC 5321 §4.2.5: reply after the dot).
    At most 1.5 x ``max_size`` (+ one read) is kept: past that it cannot fit.
    """
    parts: list[bytes] = []
    kept = 0
    overflow = False
    tail = b"\r\n"  # the CRLF of the DATA command precedes the first line
    while True:
        try:
            chunk = await reader.readuntil(_DOT_LINE)
            done = (tail + chunk[-5:]).endswith(_END)
        except asyncio.LimitOverrunError as exc:
            chunk = await reader.readexactly(exc.consumed)
            done = False
        tail = (tail + chunk[-2:])[-2:]
        kept_last = not overflow
        if kept_last:
            parts.append(chunk)
            kept += len(chunk)
            overflow = 2 * kept > 3 * max_size + 3  # at most 1/4 of the octets are stuffing
        if done:
            break
    if kept_last:
        parts[-1] = parts[-1][:-3]  # the final ".\r\n"; its CRLF ends the last line
    section = b"".join(parts)
    if not overflow:
        return judge(section, max_size, bare)
    # Too big to keep whole: the first rule broken in the kept lines decides, else size
    # (judge_lines ignores a partial last line).
    verdict = judge_lines(section, max_size, bare)
    return DataResult(DataStatus.TOO_BIG if verdict.status is DataStatus.OK else verdict.status)
