"""The SMTP listener: binds the socket and creates one ``EdgeSMTP`` per connection.

An async context manager over ``loop.create_server``. Each new connection
gets the config snapshot and TLS context current at accept time. It must
not hold per-session state (the protocol does) or decide anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from types import TracebackType

from mxgate_gateway.config.store import ConfigStore
from mxgate_gateway.logs import get_logger
from mxgate_gateway.netbind import listen_socket
from mxgate_gateway.smtp.handler import EdgeHandler
from mxgate_gateway.smtp.server import EdgeSMTP

log = get_logger("mxgate.smtp")

TLSProvider = Callable[[], ssl.SSLContext | None]


class SMTPListener:
    """Serves SMTP on ``address`` until closed; ``port`` is the bound port."""

    def __init__(
        self,
        address: str,
        store: ConfigStore,
        handler: EdgeHandler,
        tls: TLSProvider,
    ) -> None:
        self.address = address
        self.store = store
        self.handler = handler
        self.tls = tls
        self._server: asyncio.Server | None = None

    def _make_protocol(self) -> EdgeSMTP:
        return EdgeSMTP(self.handler, self.store.current, self.tls())

    async def __aenter__(self) -> SMTPListener:
        loop = asyncio.get_running_loop()
        sock = listen_socket(self.address, backlog=512)  # "[::]:port" serves IPv4 too
        try:
            self._server = await loop.create_server(self._make_protocol, sock=sock)
        except BaseException:
            sock.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def bound(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def stop_accepting(self) -> None:
        """Close the listening socket; running sessions go on."""
        if self._server is not None:
            self._server.close()

    async def close(self, drain_timeout: float = 0.0) -> None:
        """Stop accepting, drain sessions (smtp/drain.py) up to ``drain_timeout``, then
        wait for released upstream connections to close: the shutdown order."""
        if self._server is None:
            return  # already closed (shutdown, then the exit stack)
        self.stop_accepting()
        report = await self.handler.tracker.drain(drain_timeout)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.handler.close_upstreams()
        log.info(
            "drain_finished",
            closed_idle=report.closed_idle,
            finished=report.finished,
            aborted=report.aborted,
            seconds=round(report.seconds, 3),
        )
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
