"""Run real client programs (swaks, openssl) without blocking the test's event loop,
start and stop long-running children (``Child``: smtp-sink, the bench's targets), and stop
the private servers the peers start (Postfix, Exim, OpenSMTPD)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path


def terminate(proc: subprocess.Popen[bytes] | None, grace: float = 15) -> None:
    """SIGTERM a child we started and reap it; SIGKILL if it is still there after ``grace`` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def stop_server(proc: subprocess.Popen[bytes] | None, root: Path) -> None:
    """SIGTERM a private server we started (KILL after 10 s), then remove its tree."""
    terminate(proc, 10)
    shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


async def run(*argv: str, stdin: bytes = b"", timeout: float = 60) -> Done:
    """Run ``argv`` to completion; the gateway under test shares this event loop.

    Bounded: after ``timeout`` seconds (or if the caller is cancelled) the program is
    killed and ``TimeoutError`` names it. ``asyncio.timeout``, not ``wait_for``, so a
    cancellation is never swallowed (see mtapeers/raw.py).
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(stdin)
    except TimeoutError:
        raise TimeoutError(f"waited {timeout}s for {shlex.join(argv)} to exit") from None
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


class Child:
    """A long-running child (a sink, a target, a profiler) in its own session, logging to a
    file, stopped by its own process group."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(
        cls, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> Child:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        return cls(name, proc, log)

    def alive(self) -> bool:
        return self.proc.returncode is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the child's process group, then SIGKILL after ``grace`` seconds."""
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await self.proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
