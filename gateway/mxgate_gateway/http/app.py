"""The gateway's HTTP side on aiohttp: the admin app, the public app, and the server.

Admin (``listen.http``): /livez, /readyz, /metrics, /report, cluster-internal. Public
(``listen.public``): an app the MTA-STS routes are added to, answering everything else
with a bare 404. It must not compute anything itself: health, metrics and the report
are passed in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

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
    """Runs ``build_app`` on ``address``; ``port`` is the bound port."""

    def __init__(self, address: str, app: web.Application) -> None:
        self.address = address
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._site: web.SockSite | None = None

    async def __aenter__(self) -> HTTPServer:
        sock = listen_socket(self.address)  # "[::]:port" serves IPv4 too
        await self._runner.setup()
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            await self._runner.cleanup()

    @property
    def port(self) -> int:
        assert self._site is not None
        addresses = self._runner.addresses
        port: int = addresses[0][1]
        return port
