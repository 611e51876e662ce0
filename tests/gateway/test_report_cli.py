"""`mxgate report` as a process: fetches /report over HTTP from several gateways and merges."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from mxgate_gateway.report import LossReport
from mxgate_gateway.report.cli import report_url


@asynccontextmanager
async def report_server(body: Callable[[], Any]) -> AsyncIterator[str]:
    """A stand-in for a gateway's HTTP side: a real aiohttp server serving only GET /report."""

    async def handle(_: web.Request) -> web.Response:
        data = body()
        return web.json_response(data.to_json() if hasattr(data, "to_json") else data)

    app = web.Application()
    app.router.add_get("/report", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def mxgate_report(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mxgate_gateway.report.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def gateway_report(plaintext_from: str, n: int) -> LossReport:
    r = LossReport()
    for _ in range(n):
        r.record_session(None)
        r.record_message(
            tls_version=None,
            sender_domain=plaintext_from,
            client_ip="127.3.0.1",
            upstream_accepted=True,
            recipients=1,
        )
    r.record_session("TLSv1.3")
    r.record_message(
        tls_version="TLSv1.3",
        sender_domain="ok.test",
        client_ip="127.0.0.1",
        upstream_accepted=True,
        recipients=1,
    )
    return r


async def test_report_merges_several_gateways() -> None:
    """Two gateways' reports print as one: gateway count and message counts add."""
    a, b = gateway_report("a.test", 3), gateway_report("b.test", 2)
    async with report_server(a.snapshot) as url_a, report_server(b.snapshot) as url_b:
        code, out, err = await mxgate_report("--url", url_a, "--url", url_b + "/report", "--json")
        assert code == 0, err
        merged = json.loads(out)
        assert merged["gateways"] == 2
        cf = merged["since_start"]["if_starttls_required"]
        assert (cf["refused_messages"], cf["of_messages"], cf["sender_domains"]) == (5, 7, 2)
        code, table, err = await mxgate_report("--url", url_a, "--url", url_b)
    assert code == 0, err
    assert "mxgate loss report: 2 gateways" in table
    assert "5 of 7 messages (71.4%) from 2 distinct sender domains" in table


async def test_an_unreachable_gateway_fails_loudly() -> None:
    """If one gateway cannot be fetched, nothing is printed as if complete; exit 1 names it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    async with report_server(gateway_report("a.test", 1).snapshot) as live:
        code, out, err = await mxgate_report("--url", live, "--url", dead, "--timeout", "5")
    assert code == 1
    assert out == ""
    assert dead in err


async def test_a_body_that_is_not_a_report_is_refused() -> None:
    """A JSON body of another shape exits 2 with the reason."""
    async with report_server(lambda: {"hello": "world"}) as url:
        code, out, err = await mxgate_report("--url", url)
    assert (code, out) == (2, "")
    assert "not a mxgate-report/1 body" in err


def test_report_url() -> None:
    """A base address gets /report appended; a full /report address is kept."""
    assert report_url("http://h:8025") == "http://h:8025/report"
    assert report_url("http://h:8025/") == "http://h:8025/report"
    assert report_url("http://h:8025/report") == "http://h:8025/report"
