"""The upstream every target relays to: Postfix's ``smtp-sink`` on loopback.

smtp-sink is C, discards mail and prints running counters (``-c``); this module
starts it and reads how many messages it received. It must not judge a run:
comparing the count with the clients' 250s is the runner's job.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

from bench.procs import Child, free_port, wait_smtp_banner

_MESG = re.compile(rb"mesg=(\d+)")


def smtp_sink_path() -> str:
    found = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if not found:
        raise RuntimeError("smtp-sink not found: install Postfix (scripts/install-system-deps.sh)")
    return found


def parse_count(output: bytes) -> int:
    """The last ``mesg=N`` counter smtp-sink printed (0 if none yet)."""
    counts = _MESG.findall(output)
    return int(counts[-1]) if counts else 0


class Sink:
    """One smtp-sink process: a counted upstream (or, unread, a black hole)."""

    def __init__(self, child: Child, port: int) -> None:
        self.child = child
        self.port = port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, workdir: Path, name: str = "sink", max_conns: int = 4096) -> Sink:
        port = free_port()
        argv = [smtp_sink_path(), "-c", "-m", str(max_conns), "-t", "60"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        argv += [f"127.0.0.1:{port}", "1024"]
        child = await Child.start(name, argv, workdir / f"{name}.log")
        await wait_smtp_banner("127.0.0.1", port, 10, child)
        return cls(child, port)

    def count(self) -> int:
        """Messages received so far (smtp-sink counts each final dot)."""
        try:
            return parse_count(self.child.log.read_bytes())
        except OSError:
            return 0

    async def settled_count(self, expected: int, wait: float = 2.0) -> int:
        """The count once it reaches ``expected`` or stops moving (bounded by ``wait`` s)."""
        deadline = asyncio.get_running_loop().time() + wait
        last = -1
        while True:
            now = self.count()
            if now >= expected or asyncio.get_running_loop().time() >= deadline:
                return now
            if now == last:
                await asyncio.sleep(0.1)
            last = now
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.child.stop()
