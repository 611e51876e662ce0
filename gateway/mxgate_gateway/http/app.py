"""The gateway's HTTP side on aiohttp: the admin app, the public app, and the server.

Admin (``listen.http``): /livez, /readyz, /metrics, /report, cluster-internal. Public
(``listen.public``): an app the MTA-STS routes are added to, answering everything else
with a bare 404. It must not compute anything itself: health, metrics and the report
are passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from mxgate_gateway.config.model import Limits
from mxgate_gateway.http.guard import HTTPGuard, RateLimitedLog
from mxgate_gateway.http.health import Health
from mxgate_gateway.metrics import GatewayMetrics
from mxgate_gateway.netbind import listen_socket
from mxgate_gateway.report.document import ReportDocument

ReportSnapshot = Callable[[], ReportDocument]
"""Returns the current ``/report`` document (``report.document``)."""


def build_app(
    health: Health, metrics: GatewayMetrics, report: ReportSnapshot | None
) -> web.Application:
    """The aiohttp application with the four routes."""

    async def livez(_: web.Request) -> web.Response:
        status = 200 if health.live else 503
        return web.json_response({"live": health.live}, status=status)

    async def readyz(_: web.Request) -> web.Response:
        body = health.readiness()
        return web.json_response(body, status=200 if body["ready"] else 503)

    async def metrics_view(_: web.Request) -> web.Response:
        resp = web.Response(body=metrics.exposition())
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    async def report_view(_: web.Request) -> web.Response:
        if report is None:
            return web.json_response({"error": "loss report not available"}, status=501)
        return web.json_response(report().to_json())

    app = web.Application()
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/report", report_view)
    return app


def build_public_app() -> web.Application:
    """The public application: empty here; ``mtasts.http.add_routes`` fills it."""
    return web.Application()


class HTTPServer:
    """Runs an app on ``address`` behind an ``HTTPGuard``; ``port`` is the bound port."""

    def __init__(
        self,
        address: str,
        app: web.Application,
        *,
        name: str = "admin",
        limits: Callable[[], Limits] = Limits,
        refused_log: RateLimitedLog | None = None,
    ) -> None:
        self.address = address
        self.guard = HTTPGuard(
            name, limits, refused_log or RateLimitedLog("http_connections_refused")
        )
        app.middlewares.append(self.guard.middleware)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            max_line_size=8190,  # request line and each header: bytes
            max_field_size=8190,
            max_headers=64,
        )
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> HTTPServer:
        sock = listen_socket(self.address)  # "[::]:port" serves IPv4 too
        await self._runner.setup()
        inner = self._runner.server
        assert inner is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.guard.protocol_factory(inner), sock=sock)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(Exception):
            await self._runner.cleanup()  # closes the connections aiohttp still holds

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port
