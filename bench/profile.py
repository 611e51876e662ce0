"""Where a Python target's CPU goes: py-spy samples during a workload, summarised.

``--profile`` attaches ``py-spy record`` (raw collapsed stacks) to the mxgate
process for the measured part of a run, then ``summarize`` turns the stacks into
self/inclusive tables by function and by package. It must not start targets;
without py-spy installed profiling is skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

from bench.procs import Child

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_PACKAGES = (
    "mxgate_gateway",
    "aiosmtpd",
    "aiosmtplib",
    "structlog",
    "prometheus_client",
    "asyncio",
    "uvloop",
    "ssl",
    "email",
)


def pyspy_path() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


async def start(pid: int, out: Path) -> Child | None:
    """Start sampling ``pid`` into ``out`` (collapsed stacks); None without py-spy."""
    exe = pyspy_path()
    if exe is None:
        return None
    argv = [exe, "record", "-p", str(pid), "-o", str(out), "--format", "raw", "--rate", "250"]
    child = await Child.start("py-spy", [*argv, "--nonblocking"], out.with_suffix(".log"))
    await asyncio.sleep(0.5)  # attach before the load starts
    return child


async def stop(child: Child) -> None:
    """SIGINT makes py-spy write its output; then wait (bounded)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGINT)
    try:
        await asyncio.wait_for(child.proc.wait(), 15)
    except TimeoutError:
        await child.stop()


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for raw in stack.split(";"):
        m = _FRAME.match(raw.strip())
        if m:
            out.append((m["func"], m["file"]))
    return out


def _package(file: str) -> str:
    parts = re.split(r"[/\\]", file)
    for pkg in _PACKAGES:
        if pkg in parts or file.endswith(f"/{pkg}.py") or file == f"{pkg}.py":
            return pkg
    return "other"


def _short(func: str, file: str) -> str:
    tail = "/".join(file.replace("\\", "/").split("/")[-2:])
    return f"{func} ({tail})"


def summarize(collapsed: str, top: int = 15) -> str:
    """A Markdown summary of py-spy's collapsed stacks: self time by package and function."""
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        self_fn[_short(*leaf)] += count
        self_pkg[_package(leaf[1])] += count
        for name in {_short(*f) for f in frames}:
            incl_fn[name] += count
    if not total:
        return "no samples\n"

    def pct(n: int) -> str:
        return f"{100 * n / total:.1f}%"

    out = [f"{total} samples (CPU-active only)", "", "| package (self) | share |", "|---|--:|"]
    out += [f"| {p} | {pct(n)} |" for p, n in self_pkg.most_common()]
    out += ["", "| function (self) | share |", "|---|--:|"]
    out += [f"| {f} | {pct(n)} |" for f, n in self_fn.most_common(top)]
    out += ["", "| function (inclusive) | share |", "|---|--:|"]
    out += [f"| {f} | {pct(n)} |" for f, n in incl_fn.most_common(top)]
    return "\n".join(out) + "\n"
