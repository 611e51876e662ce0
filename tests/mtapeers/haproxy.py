"""Debian's HAProxy on loopback, sending the PROXY protocol (v1 and v2) to a target.

A real peer for the PROXY-protocol tests: it starts, waits until it listens, and is
stopped by its own PID. It must not judge what the gateway does with the header.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

from eventually import eventually_async
from mtapeers.ports import free_port

HAPROXY_CFG = """
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend v1
    bind 127.0.0.1:{v1}
    default_backend gw_v1
frontend v2
    bind 127.0.0.1:{v2}
    default_backend gw_v2
backend gw_v1
    server gw {target} send-proxy
backend gw_v2
    server gw {target} send-proxy-v2
"""


class HAProxy:
    """Debian's haproxy in the foreground: ``v1_port`` sends PROXY v1, ``v2_port`` v2."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.cfg = workdir / "haproxy.cfg"
        self.target = target
        self.v1_port = free_port()
        self.v2_port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.cfg.write_text(
            HAPROXY_CFG.format(v1=self.v1_port, v2=self.v2_port, target=self.target)
        )
        self.proc = await asyncio.create_subprocess_exec(
            binary,
            "-db",
            "-f",
            str(self.cfg),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for port in (self.v1_port, self.v2_port):
            await eventually_async(
                lambda port=port: _connects(port),
                5,
                f"haproxy to listen on {port}",
                ignore=(OSError,),
            )

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _connects(port: int) -> bool:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    return True
