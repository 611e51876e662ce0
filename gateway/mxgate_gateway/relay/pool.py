"""Idle upstream SMTP sessions kept for the next transaction (one pool per gateway).

A session that finished a transaction cleanly (the upstream accepted the final
dot) is ready for the next MAIL FROM; keeping it saves a connect, an EHLO (and
a TLS handshake) and a QUIT per message. Bounded in count per upstream and in
idle age: a session idle longer than ``max_age`` is closed even if no traffic
comes (a timer), so a quiet gateway holds no upstream descriptors. It must not
send commands except QUIT on close, nor decide routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable

import aiosmtplib

MAX_IDLE_PER_UPSTREAM = 64
MAX_IDLE_AGE = 5.0  # seconds: reuse under steady traffic, nothing held when it stops


class UpstreamPool:
    """LIFO stacks of idle sessions per key (upstream config + our HELO name)."""

    def __init__(
        self,
        max_idle: int = MAX_IDLE_PER_UPSTREAM,
        max_age: float = MAX_IDLE_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_idle = max_idle
        self.max_age = max_age
        self.clock = clock
        self._idle: dict[Hashable, list[tuple[aiosmtplib.SMTP, float]]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.TimerHandle | None = None
        self.closed = False

    def take(self, key: Hashable) -> aiosmtplib.SMTP | None:
        """The most recently returned live session for ``key``, or None."""
        stack = self._idle.get(key)
        now = self.clock()
        while stack:
            smtp, since = stack.pop()
            if now - since <= self.max_age and smtp.is_connected:
                return smtp
            self._quit_later(smtp)
        return None

    def give(self, key: Hashable, smtp: aiosmtplib.SMTP) -> bool:
        """Keep ``smtp`` for reuse; False (caller closes it) if full or closed."""
        stack = self._idle.setdefault(key, [])
        if self.closed or len(stack) >= self.max_idle or not smtp.is_connected:
            return False
        stack.append((smtp, self.clock()))
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(self.max_age, self._expire)
        return True

    def _expire(self) -> None:
        """QUIT the sessions idle for ``max_age`` or more; look again while any are left."""
        self._reaper = None
        now = self.clock()
        for stack in self._idle.values():
            while stack and now - stack[0][1] >= self.max_age:  # oldest at the bottom
                self._quit_later(stack.pop(0)[0])
        if any(self._idle.values()) and not self.closed:
            self._reaper = asyncio.get_running_loop().call_later(self.max_age, self._expire)

    def _quit_later(self, smtp: aiosmtplib.SMTP) -> None:
        task = asyncio.get_running_loop().create_task(_quit(smtp))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """QUIT every idle session (bounded); no session is pooled afterwards."""
        self.closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle = [smtp for stack in self._idle.values() for smtp, _ in stack]
        self._idle.clear()
        await asyncio.gather(*(_quit(smtp) for smtp in idle), *self._closing)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        if smtp.is_connected:
            await smtp.quit(timeout=5.0)
    except Exception:  # noqa: BLE001, S110 - closing anyway
        pass
    finally:
        with contextlib.suppress(Exception):
            smtp.close()
