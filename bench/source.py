"""Plaintext load from Postfix's ``smtp-source`` (C: the cheapest client on the box).

Runs one bounded smtp-source invocation and reports how many DATA commands
completed with 250. It must not start servers or read /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import FROM, RCPT, LoadResult

_COUNTER = re.compile(rb"(\d+)")


def smtp_source_path() -> str:
    found = shutil.which("smtp-source") or (
        "/usr/sbin/smtp-source" if Path("/usr/sbin/smtp-source").exists() else None
    )
    if not found:
        raise RuntimeError(
            "smtp-source not found: install Postfix (scripts/install-system-deps.sh)"
        )
    return found


@dataclass(frozen=True)
class SourceLoad:
    """``messages`` of ``size`` payload bytes over ``sessions`` parallel sessions."""

    messages: int
    sessions: int
    size: int = 4096
    reuse: bool = True  # -d: keep each session for the next message


def argv(load: SourceLoad, host: str, port: int) -> list[str]:
    args = [smtp_source_path(), "-c", "-s", str(load.sessions), "-m", str(load.messages)]
    args += ["-l", str(load.size), "-f", FROM, "-t", RCPT, "-M", "load.bench.test"]
    if load.reuse:
        args.append("-d")
    return [*args, f"{host}:{port}"]


def completed(stdout: bytes) -> int:
    """The last value of smtp-source's running DATA counter (``-c``)."""
    numbers = _COUNTER.findall(stdout)  # "1\r2\r3\r...N\r\n"
    return int(numbers[-1]) if numbers else 0


async def run_source(host: str, port: int, load: SourceLoad, limit: float) -> LoadResult:
    """Run smtp-source; it exits non-zero on the first reply that is not the expected one."""
    proc = await asyncio.create_subprocess_exec(
        *argv(load, host, port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    result = LoadResult()
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        result.fail(f"smtp-source not finished within {limit:.0f} s")
    done = completed(out)
    if proc.returncode == 0 and not result.failed:
        result.ok = load.messages
    else:
        # smtp-source's counter ticks per completed DATA; the one that failed did not count.
        result.ok = done
        result.fail(f"smtp-source exit {proc.returncode}: {err.decode(errors='replace')[:200]}")
        result.failed = load.messages - done
    return result
