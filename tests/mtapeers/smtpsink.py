"""Postfix's ``smtp-sink`` on loopback: a real, counted upstream that discards mail.

smtp-sink is C; with ``-c`` it prints running counters (sessions ended, QUITs, messages)
to its log. ``SmtpSink`` starts one in its own session, proves it serves by one real
session (greeting, QUIT) and counts from there; the test suite's pool tests and the
benchmark's counted upstream (``make bench``) are this one class. It must not judge a
run: comparing counts with what clients were told is the caller's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from eventually import eventually_async
from mtapeers.ports import free_port
from mtapeers.procs import Child

_COUNTERS = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")
_MESG = re.compile(rb"mesg=(\d+)")


def smtp_sink_path() -> str | None:
    """The smtp-sink binary (Debian's postfix package), or None if it is not installed."""
    found = shutil.which("smtp-sink")
    if found:
        return found
    return "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None


def parse_count(output: bytes) -> int:
    """The last ``mesg=N`` counter smtp-sink printed (0 if none yet)."""
    counts = _MESG.findall(output)
    return int(counts[-1]) if counts else 0


@dataclass(frozen=True)
class Counters:
    sessions_ended: int
    quit: int
    messages: int


def parse_counters(output: bytes) -> Counters:
    """The last counter line smtp-sink printed (all 0 if none yet)."""
    found = _COUNTERS.findall(output)
    return Counters(*(int(n) for n in found[-1])) if found else Counters(0, 0, 0)


class SmtpSink:
    """One smtp-sink process; ``counters`` are net of the readiness session."""

    def __init__(self, child: Child, port: int) -> None:
        self.child = child
        self.port = port
        self.log = child.log
        self.base = Counters(0, 0, 0)

    @property
    def pid(self) -> int:
        return self.child.pid

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    async def start(
        cls,
        workdir: Path,
        name: str = "sink",
        *,
        idle_timeout: int = 60,
        max_conns: int | None = None,
        backlog: int = 1024,
    ) -> SmtpSink:
        """Start it; return once one real session (greeting, QUIT) has been counted."""
        binary = smtp_sink_path()
        if binary is None:
            raise RuntimeError(
                "smtp-sink not found: install Postfix (scripts/install-system-deps.sh)"
            )
        port = free_port()
        argv = [binary, "-c", "-t", str(idle_timeout)]
        if max_conns is not None:
            argv += ["-m", str(max_conns)]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        argv += [f"127.0.0.1:{port}", str(backlog)]
        child = await Child.start(name, argv, workdir / f"{name}.log")
        sink = cls(child, port)
        try:
            await sink._probe()
        except BaseException:
            await sink.stop()
            raise
        return sink

    async def _probe(self) -> None:
        async def one_session() -> bool:
            if not self.child.alive():
                raise RuntimeError(f"smtp-sink exited {self.child.proc.returncode}: {self.tail()}")
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                greeting = await asyncio.wait_for(reader.readline(), 5)
                writer.write(b"QUIT\r\n")
                await writer.drain()
                await asyncio.wait_for(reader.readline(), 5)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            return greeting.startswith(b"220")

        await eventually_async(one_session, 10, "smtp-sink to greet", ignore=(OSError,))
        await eventually_async(
            lambda: self._raw().quit >= 1, 10, "smtp-sink to count the readiness session"
        )
        self.base = self._raw()

    def _raw(self) -> Counters:
        try:
            return parse_counters(self.log.read_bytes())
        except OSError:
            return Counters(0, 0, 0)

    def counters(self) -> Counters:
        now, base = self._raw(), self.base
        return Counters(
            now.sessions_ended - base.sessions_ended,
            now.quit - base.quit,
            now.messages - base.messages,
        )

    def count(self) -> int:
        """Messages received so far (smtp-sink counts each final dot)."""
        return self.counters().messages

    async def settled_count(self, expected: int, wait: float = 2.0) -> int:
        """The count once it reaches ``expected``, or after ``wait`` s (the caller compares)."""
        with contextlib.suppress(AssertionError):
            await eventually_async(lambda: self.count() >= expected, wait, "", interval=0.05)
        return self.count()

    def tail(self, lines: int = 15) -> str:
        return self.child.tail(lines)

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM it (its own process group), SIGKILL after ``grace`` seconds."""
        await self.child.stop(grace)
