"""Process plumbing for the benchmark: start/stop children, read CPU and memory from /proc.

Measures a target's whole process tree (the process and its descendants) so a
multi-process target is charged for all of its work. It must not interpret
results or speak SMTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from mtapeers.procs import Child

__all__ = ["Child", "Usage", "cpu_seconds", "free_port", "quiesce", "rss_kib"]

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by ``pid``'s process tree."""
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLK_TCK


def _status_kib(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    """Resident set size of the process tree now, in KiB."""
    return sum(_status_kib(p, "VmRSS") for p in tree(pid))


def peak_rss_kib(pid: int) -> int:
    """Sum of each live tree member's RSS high-water mark (VmHWM), in KiB."""
    return sum(_status_kib(p, "VmHWM") for p in tree(pid))


@dataclass(frozen=True)
class Usage:
    """A snapshot of a process tree's resource use."""

    cpu_s: float
    rss_kib: int
    peak_kib: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        return cls(cpu_seconds(pid), rss_kib(pid), peak_rss_kib(pid))


async def quiesce(pid: int, limit: float = 10.0, busy: float = 0.05) -> None:
    """Wait (at most ``limit`` s) until the tree uses under ``busy`` of a core over 0.25 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        c0 = cpu_seconds(pid)
        await asyncio.sleep(0.25)
        if cpu_seconds(pid) - c0 <= busy * 0.25:
            return


async def wait_smtp_banner(host: str, port: int, timeout: float, child: Child) -> None:
    """Wait until ``host:port`` answers with a 220 greeting, or raise with the child's log."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = "no attempt"
    while asyncio.get_running_loop().time() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.tail()}")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            try:
                line = await asyncio.wait_for(reader.readline(), 5)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            if line.startswith(b"220"):
                return
            last = repr(line[:80])
        except (OSError, TimeoutError) as exc:
            last = repr(exc)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{child.name} not ready on {host}:{port} ({last}):\n{child.tail()}")
