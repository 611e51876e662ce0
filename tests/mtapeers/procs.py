"""Run real client programs (swaks, openssl) without blocking the test's event loop,
and stop the private servers the peers start (Postfix, Exim, OpenSMTPD)."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path


def stop_server(proc: subprocess.Popen[bytes] | None, root: Path) -> None:
    """SIGTERM a private server we started (KILL after 10 s), then remove its tree."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
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
