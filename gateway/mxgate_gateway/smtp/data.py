"""Reading the DATA section: only <CRLF>.<CRLF> ends it; bare CR/LF never pass.

Reads lines from the client's stream until the lone dot, removes dot
stuffing, and enforces the message size and the 1000-octet line limit
(RFC 5321 §4.5.3.1.6) and the bare-line-ending rule (SMTP smuggling). It
must not reply, relay or log; it returns a ``DataResult`` value.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from enum import StrEnum

from mxgate_gateway.config.model import BareLineEndings

MAX_LINE = 1000  # octets including CRLF, after removing dot stuffing
_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


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


async def read_data(
    reader: asyncio.StreamReader, max_size: int, bare: BareLineEndings
) -> DataResult:
    """Consume DATA up to and including <CRLF>.<CRLF>; always read to the end.

    The whole section is read even after a violation, so the next bytes on
    the stream are a command again (RFC 5321 §4.2.5: reply after the dot).
    """
    chunks: list[bytes] = []
    size = 0
    status = DataStatus.OK
    partial = False  # inside a line that overran the reader's limit
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
            partial = True
            if status is DataStatus.OK:
                status = DataStatus.LINE_TOO_LONG
            chunks.clear()
            continue
        if partial:
            partial = False  # this is the tail of an overlong line, not a dot line
            continue
        if line == b".\r\n":
            break
        if status is not DataStatus.OK:
            continue
        if line.startswith(b"."):
            line = line[1:]
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
        if status is DataStatus.OK:
            chunks.append(line)
        else:
            chunks.clear()
    if status is not DataStatus.OK:
        return DataResult(status)
    return DataResult(status, b"".join(chunks))
