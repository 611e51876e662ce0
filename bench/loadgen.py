"""A bounded asyncio SMTP load generator: plaintext or STARTTLS, per-message latency.

Sends a fixed number of messages over a fixed number of concurrent sessions
(reused, or one new session per message) and records each message's latency
from the start of its transaction (its connection, in one-per-session mode) to
the 250 after the final dot. It must not start servers or read /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from dataclasses import dataclass, field

FROM = "sender@load.bench.test"
RCPT = "rcpt@accepted.test"


@dataclass(frozen=True)
class Load:
    """What to send: ``messages`` in total over ``sessions`` concurrent workers."""

    messages: int
    sessions: int
    size: int = 4096
    per_session: int = 0  # 0: reuse a session until the budget is spent; 1: new session each
    starttls: bool = False
    timeout: float = 30.0  # per protocol step


@dataclass
class LoadResult:
    ok: int = 0  # 250s received for the final dot
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(why)


def make_body(size: int) -> bytes:
    """A message of about ``size`` body bytes in 78-character CRLF lines (no dot-stuffing)."""
    header = (
        f"From: <{FROM}>\r\nTo: <{RCPT}>\r\nSubject: bench\r\n"
        "Message-ID: <bench@load.bench.test>\r\n\r\n"
    ).encode()
    line = b"X" * 76 + b"\r\n"
    lines, rest = divmod(size, len(line))
    return header + line * lines + b"Y" * max(rest - 2, 0) + b"\r\n"


def client_tls() -> ssl.SSLContext:
    """A client context for self-signed bench certificates (no verification: loopback)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class ReplyError(Exception):
    """The server answered something other than what the step needs."""


class Session:
    """One SMTP client session over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, t: float):
        self.reader, self.writer, self.timeout = reader, writer, t
        self.pipelining = False

    @classmethod
    async def open(cls, host: str, port: int, load: Load, tls: ssl.SSLContext | None) -> Session:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), load.timeout)
        s = cls(r, w, load.timeout)
        await s.expect(220)
        ehlo = await s.command(b"EHLO load.bench.test\r\n", 250)
        if load.starttls:
            if tls is None or b"STARTTLS" not in ehlo:
                raise ReplyError("STARTTLS not offered")
            await s.command(b"STARTTLS\r\n", 220)
            await asyncio.wait_for(w.start_tls(tls), load.timeout)
            ehlo = await s.command(b"EHLO load.bench.test\r\n", 250)
        s.pipelining = b"PIPELINING" in ehlo
        return s

    async def reply(self) -> tuple[int, bytes]:
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), self.timeout)
            if len(line) < 4:
                raise ReplyError(f"short reply {line!r}")
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), b"".join(lines)

    async def expect(self, code: int) -> bytes:
        got, text = await self.reply()
        if got != code:
            raise ReplyError(text[:120].decode(errors="replace").strip())
        return text

    async def command(self, line: bytes, code: int) -> bytes:
        self.writer.write(line)
        return await self.expect(code)

    async def send(self, body: bytes) -> None:
        """One transaction; returns after the 250 for the final dot, else raises."""
        env = [f"MAIL FROM:<{FROM}>\r\n".encode(), f"RCPT TO:<{RCPT}>\r\n".encode(), b"DATA\r\n"]
        if self.pipelining:  # RFC 2920: DATA ends the pipelined group
            self.writer.write(b"".join(env))
            for code in (250, 250, 354):
                await self.expect(code)
        else:
            for line, code in zip(env, (250, 250, 354), strict=True):
                await self.command(line, code)
        self.writer.write(body)
        self.writer.write(b".\r\n")
        await self.expect(250)

    async def close(self, quit_first: bool = True) -> None:
        if quit_first:
            with contextlib.suppress(Exception):
                await self.command(b"QUIT\r\n", 221)
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


async def run_load(host: str, port: int, load: Load, limit: float) -> LoadResult:
    """Send ``load`` to ``host:port``; stop after ``limit`` seconds whatever happens."""
    result = LoadResult()
    body = make_body(load.size)
    tls = client_tls() if load.starttls else None
    budget = load.messages

    async def worker() -> None:
        nonlocal budget
        session: Session | None = None
        sent_here = 0
        while budget > 0:
            budget -= 1
            t0 = time.perf_counter()
            try:
                if session is None:
                    session, sent_here = await Session.open(host, port, load, tls), 0
                    if load.per_session != 1:  # reused sessions: time the transaction only
                        t0 = time.perf_counter()
                await session.send(body)
            except (OSError, TimeoutError, ReplyError, ssl.SSLError, ValueError) as exc:
                result.fail(f"{type(exc).__name__}: {exc}")
                if session is not None:
                    await session.close(quit_first=False)
                session = None
                continue
            result.ok += 1
            result.latencies.append(time.perf_counter() - t0)
            sent_here += 1
            if load.per_session and sent_here >= load.per_session:
                await session.close()
                session = None
        if session is not None:
            await session.close()

    tasks = [asyncio.create_task(worker()) for _ in range(load.sessions)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), limit)
    except TimeoutError:
        result.fail(f"load not finished within {limit:.0f} s")
    return result


async def hold_idle(host: str, port: int, count: int, limit: float) -> list[Session]:
    """Open ``count`` sessions that greeted and said EHLO, then sit idle (caller closes)."""
    sem = asyncio.Semaphore(50)
    load = Load(messages=0, sessions=count, timeout=limit)

    async def one() -> Session:
        async with sem:
            return await Session.open(host, port, load, None)

    got = await asyncio.wait_for(
        asyncio.gather(*(one() for _ in range(count)), return_exceptions=True), limit
    )
    sessions = [s for s in got if isinstance(s, Session)]
    errors = [e for e in got if isinstance(e, BaseException)]
    if errors:
        await asyncio.gather(*(s.close(quit_first=False) for s in sessions))
        raise ReplyError(f"{len(errors)} of {count} idle connections failed: {errors[0]!r}")
    return sessions


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
