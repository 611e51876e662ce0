"""The system under test as a real process: the ``mxgate gateway`` CLI on loopback.

Starts one child, waits until it is usable, and stops it by its own PID. Ports come
from the kernel (``mtapeers.ports``). It must not judge the gateway: tests do.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from eventually import eventually_async

MXGATE = Path(sys.executable).with_name("mxgate")


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
        proc = self.proc
        assert proc is not None

        async def answers() -> bool:
            if proc.returncode is not None:
                raise RuntimeError(f"gateway exited {proc.returncode}: {self.tail()}")
            status, _ = await self._get(path)
            return status == 200

        await eventually_async(
            answers,
            within,
            lambda: f"gateway {path} to be 200: {self.tail()}",
            interval=0.1,
            ignore=(aiohttp.ClientError, OSError),
        )

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
