"""A raw SMTP client for edge-rule tests: send exact bytes, read whole replies.

Deliberately not a mail library: tests need to send what a library would refuse
to send (bare LF, NUL, pipelined junk) and see every reply line as sent.

Every wait is bounded and its ``TimeoutError`` names what it waited for, so a test
fails instead of hanging. Timeouts use ``asyncio.timeout``, never ``asyncio.wait_for``:
on Python 3.11 ``wait_for`` swallows a cancellation that arrives as its inner read
completes (CPython gh-86296), and a task that was told to stop would run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

CONNECT_TIMEOUT = 10.0
SEND_TIMEOUT = 60.0  # a peer may stop reading for its own timeouts while we write MiBs
CLOSE_TIMEOUT = 10.0


async def within(seconds: float, what: str, step: Awaitable[T]) -> T:
    """``await step``, or ``TimeoutError(what ...)`` after ``seconds``; cancellation passes."""
    try:
        async with asyncio.timeout(seconds):
            return await step
    except TimeoutError:
        raise TimeoutError(f"waited {seconds}s for {what}") from None


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def enhanced(self) -> str:
        return self.lines[-1][4:].split(" ", 1)[0]


class RawClient:
    """One connection; ``send`` writes bytes, ``reply`` reads one (multi-line) reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> RawClient:
        opening = asyncio.open_connection(host, port, limit=1 << 20)
        reader, writer = await within(CONNECT_TIMEOUT, f"connect to {host}:{port}", opening)
        return cls(reader, writer)

    async def send(self, data: bytes, timeout: float = SEND_TIMEOUT) -> None:
        self.writer.write(data)
        await within(timeout, f"the peer to read the {len(data)} bytes sent", self.writer.drain())

    async def reply(self, timeout: float = 10.0) -> Reply:
        lines: list[str] = []
        while True:
            raw = await within(timeout, f"a reply line (after {lines!r})", self.reader.readline())
            if not raw:
                raise ConnectionError(f"closed after {lines!r}")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return Reply(int(line[:3]), tuple(lines))

    async def cmd(self, line: str | bytes, timeout: float = 10.0) -> Reply:
        data = line if isinstance(line, bytes) else line.encode()
        await self.send(data + b"\r\n")
        return await self.reply(timeout)

    async def replies_until_close(self, timeout: float = 10.0) -> list[int]:
        """The codes of every reply until the server closes the connection."""
        codes = []
        while True:
            try:
                codes.append((await self.reply(timeout)).code)
            except ConnectionError:
                return codes

    async def greet(self, helo: str = "client.test") -> Reply:
        banner = await self.reply()
        assert banner.code == 220, banner
        return await self.cmd(f"EHLO {helo}")

    async def starttls(self, ctx: ssl.SSLContext | None = None) -> None:
        ready = await self.cmd("STARTTLS")
        assert ready.code == 220, ready
        if ctx is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        await self.writer.start_tls(ctx)

    async def closed(self, timeout: float = 10.0) -> bool:
        """True once the server has closed the connection (EOF)."""
        data = await within(timeout, "the server to close the connection (EOF)", self.reader.read())
        return data == b"" or self.reader.at_eof()

    async def reset(self) -> None:
        """Hang up hard: RST (SO_LINGER 0), unlike ``close``'s FIN (a half-close)."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """FIN (or TLS close_notify); if the peer has not taken what we sent within
        ``timeout``, hang up hard and say so."""
        self.writer.close()
        try:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await within(
                    timeout,
                    "the connection to close (the peer has not read all we sent)",
                    self.writer.wait_closed(),
                )
        except TimeoutError:
            self.writer.transport.abort()
            raise
