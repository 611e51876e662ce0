"""Real processes for fault tests: the ``mxgate gateway`` CLI and HAProxy, on loopback.

Each runner starts one child, waits until it is usable, and stops it by its own PID.
Ports come from the kernel (bind to port 0, release, hand to the child).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

MXGATE = Path(sys.executable).with_name("mxgate")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """``mxgate gateway --config FILE [--policy FILE]`` as a child process."""

    def __init__(self, config: Path, policy: Path | None = None, http_port: int = 0) -> None:
        self.config = config
        self.policy = policy
        self.http_port = http_port
        self.proc: asyncio.subprocess.Process | None = None
        self.log = config.with_suffix(".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self, ready_within: float = 20.0, *, ready: bool = True) -> None:
        """Spawn the gateway; wait until /readyz is 200 (``ready``) or /livez answers."""
        args = [str(MXGATE), "gateway", "--config", str(self.config)]
        if self.policy is not None:
            args += ["--policy", str(self.policy)]
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *args, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        await self.wait_ready(ready_within, path="/readyz" if ready else "/livez")

    async def wait_ready(self, within: float, path: str = "/readyz") -> None:
        assert self.proc is not None
        stop_at = time.monotonic() + within
        while time.monotonic() < stop_at:
            if self.proc.returncode is not None:
                raise RuntimeError(f"gateway exited {self.proc.returncode}: {self.tail()}")
            try:
                status, _ = await self._get(path)
                if status == 200:
                    return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"gateway {path} not 200 in {within}s: {self.tail()}")

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        return await self._get("/readyz")

    async def _get(self, path: str) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
            http.get(self.url + path) as resp,
        ):
            return resp.status, json.loads(await resp.text() or "{}")

    async def metrics(self) -> str:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
            http.get(self.url + "/metrics") as resp,
        ):
            return await resp.text()

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, within: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), within)

    async def stop(self) -> None:
        """Clean-up: SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


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
            for _ in range(100):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError("haproxy did not listen")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
