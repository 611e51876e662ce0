"""Reading gateways' /report over real HTTP: good bodies are kept, failures are noted."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from mxgate_gateway.report.loss import LossReport
from mxgate_operator.reports import fetch_reports


@pytest.fixture
async def gateway_http() -> AsyncIterator[str]:
    """A real aiohttp server on 127.0.0.1:0 with /report, a 500 and a non-object body."""
    loss = LossReport(clock=lambda: 0.0)

    async def report(_: web.Request) -> web.Response:
        return web.json_response(loss.snapshot().to_json())

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500)

    async def a_list(_: web.Request) -> web.Response:
        return web.json_response([1, 2])

    async def not_a_report(_: web.Request) -> web.Response:
        return web.json_response({**loss.snapshot().to_json(), "format": "other/1"})

    app = web.Application()
    app.router.add_get("/report", report)
    app.router.add_get("/broken", broken)
    app.router.add_get("/list", a_list)
    app.router.add_get("/other", not_a_report)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_reports_are_read_and_failures_noted(gateway_http: str) -> None:
    """One good gateway is read; a 500, a non-object, a non-report and a closed port are noted."""
    urls = [
        f"{gateway_http}/report",
        f"{gateway_http}/broken",
        f"{gateway_http}/list",
        f"{gateway_http}/other",
        f"http://127.0.0.1:{closed_port()}/report",
    ]
    got = await fetch_reports(urls, per_request_timeout=5)
    assert len(got.documents) == 1
    assert got.documents[0] == LossReport(clock=lambda: 0.0).snapshot()  # parsed, typed
    assert len(got.failures) == 4
    assert any("/other: ReportFormatError" in f for f in got.failures)
    assert got.message.startswith("4 gateway report(s) unreadable")


async def test_no_gateways_says_so() -> None:
    """With no gateway to ask, the observation says so instead of reporting zeros silently."""
    got = await fetch_reports([], per_request_timeout=5)
    assert got.documents == ()
    assert got.message == "no gateway found to read /report from"
