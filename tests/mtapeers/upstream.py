"""Runs the recording upstream (``recorder.py``) as a child process: start, kill, restart."""

from __future__ import annotations

import asyncio
import email
import email.policy
import signal
import sys
from email.message import EmailMessage
from pathlib import Path

from eventually import eventually_async

RECORDER = Path(__file__).with_name("recorder.py")


class RecordingUpstream:
    """One recording upstream on 127.0.0.1; ``port`` stays the same across restarts."""

    def __init__(self, directory: Path, delay: float = 0.0) -> None:
        self.directory = directory
        self.delay = delay
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        # A just-killed listener's port may need a moment: a child that could not bind
        # prints nothing and exits, and is started again.
        await eventually_async(self._spawn, 5, "the recording upstream to start", interval=0.1)

    async def _spawn(self) -> bool:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(RECORDER),
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--delay",
            str(self.delay),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 15)
        if line.strip():
            self.port = int(line)
            return True
        await self._proc.wait()
        return False

    async def kill(self) -> None:
        """SIGKILL: no goodbye to connected clients, like a crashed pod."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGKILL)
            await self._proc.wait()
        self._proc = None

    async def restart(self, delay: float | None = None) -> None:
        await self.kill()
        if delay is not None:
            self.delay = delay
        await self.start()

    def in_flight(self) -> tuple[int, int]:
        """(final dots received, of them still being handled): stored or cut off when 0."""
        begun = len(list(self.directory.glob(".*.begun")))
        return begun, begun - len(list(self.directory.glob(".*.ended")))

    def messages(self) -> list[EmailMessage]:
        out = []
        for path in sorted(self.directory.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def message_ids(self) -> list[str]:
        """The X-Test-Id of every stored message (duplicates kept: they are the point)."""
        return [str(m["X-Test-Id"]) for m in self.messages() if m["X-Test-Id"]]
