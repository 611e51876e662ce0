"""Bounds for every HTTP listener: connection count, header deadline, request deadline.

A protocol wrapper counts connections per listener and refuses (closes at once) those
beyond the bound, which is also kept under a share of the process's descriptor limit so
HTTP can never starve SMTP of descriptors. Each connection must deliver a request's
headers within ``http_header_timeout`` of opening (or of the previous response), and a
request must be read and answered within ``http_request_timeout``: a slowloris holds a
slot for seconds, not forever. Refusals are logged once per interval with a count. It
must not know any route or what a response means.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mxgate_gateway.config.model import Limits
from mxgate_gateway.logs import get_logger

log = get_logger("mxgate.http")

DESCRIPTOR_SHARE = 4  # each HTTP listener may hold at most 1/4 of RLIMIT_NOFILE
MIN_CONNECTIONS = 8
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def descriptor_cap(share: int = DESCRIPTOR_SHARE) -> int:
    """The most connections one listener may hold under the current descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    return max(MIN_CONNECTIONS, soft // share)


class RateLimitedLog:
    """Log ``event`` at most once per ``interval`` seconds, with how many were folded in."""

    def __init__(
        self, event: str, interval: float = 10.0, clock: Callable[[], float] = time.monotonic
    ):
        self.event = event
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self._folded = 0

    def hit(self, **fields: Any) -> bool:
        """Count one occurrence; True if it was logged."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            self._folded += 1
            return False
        log.warning(self.event, since_last_logged=self._folded, **fields)
        self._last, self._folded = now, 0
        return True


class HTTPGuard:
    """One listener's bounds; ``protocol_factory`` wraps aiohttp's, ``middleware`` times."""

    def __init__(self, name: str, limits: Callable[[], Limits], refused: RateLimitedLog) -> None:
        self.name = name
        self.limits = limits
        self.open = 0
        self._refused = refused
        self._conns: dict[asyncio.BaseTransport, _Guarded] = {}

    def cap(self) -> int:
        return min(self.limits().http_max_connections, descriptor_cap())

    def protocol_factory(
        self, inner: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guarded(self, inner())

    def admit(self, transport: asyncio.BaseTransport, conn: _Guarded) -> bool:
        cap = self.cap()
        if self.open >= cap:
            self._refused.hit(listener=self.name, open=self.open, limit=cap)
            return False
        self.open += 1
        self._conns[transport] = conn
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        if self._conns.pop(transport, None) is not None:
            self.open -= 1

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Headers arrived: stop the header deadline; bound the rest of the request."""
        conn = self._conns.get(request.transport) if request.transport is not None else None
        if conn is not None:
            conn.disarm()
        try:
            async with asyncio.timeout(self.limits().http_request_timeout):
                return await handler(request)
        except TimeoutError:
            resp = web.Response(status=408, text="request timeout\n")
            resp.force_close()
            return resp
        finally:
            if conn is not None:
                conn.arm()  # the next request's headers (keep-alive) get a fresh deadline


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol behind the guard: admitted or aborted, and under a deadline."""

    def __init__(self, guard: HTTPGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit(transport, self):
            transport.abort()  # type: ignore[attr-defined]
            return
        self._transport = transport
        self.arm()
        self._inner.connection_made(transport)

    def arm(self) -> None:
        self.disarm()
        if self._transport is not None and not self._transport.is_closing():
            delay = self._guard.limits().http_header_timeout
            self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.abort()  # type: ignore[attr-defined]  # RST: the slot is free now

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return  # refused: aiohttp never saw it
        self.disarm()
        self._guard.release(self._transport)
        self._inner.connection_lost(exc)
