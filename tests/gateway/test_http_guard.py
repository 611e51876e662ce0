"""Issue 12.5, in-process: every HTTP listener bounds connections, header and body time.

Real aiohttp listeners on port 0 and raw sockets playing the slow client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from eventually import eventually_async
from mtapeers.gwconfig import gateway_config
from mxgate_gateway.app import Gateway

LIMITS = {
    "drain_timeout": 0,
    "http_header_timeout": 1.0,
    "http_request_timeout": 1.0,
    "http_max_connections": 5,
}


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    cfg = gateway_config(
        1,
        None,
        listen={"smtp": "127.0.0.1:0", "http": "127.0.0.1:0", "public": "127.0.0.1:0"},
        mta_sts={"tlsrpt": {"enabled": True}},
        limits=LIMITS,
    )
    async with Gateway(cfg) as gateway:
        yield gateway


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bool, bytes]:
    data = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(4096):
                data += chunk
    except TimeoutError:
        return False, data
    except ConnectionError:
        pass
    return True, data


@pytest.mark.parametrize("listener", ["admin", "public"])
async def test_half_sent_headers_are_cut_at_the_header_deadline(gw: Gateway, listener: str) -> None:
    port = gw.http_port if listener == "admin" else gw.public_port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
    start = time.monotonic()
    closed, _ = await closed_within(reader, 5)
    assert closed
    assert 0.8 < time.monotonic() - start < 3
    writer.close()


async def test_a_partial_second_request_on_keep_alive_is_cut_too(gw: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
    writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    closed, _ = await closed_within(reader, 5)
    assert closed
    writer.close()


async def test_a_body_that_never_arrives_gets_408_and_the_connection_closed(gw: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.public_port)
    writer.write(
        b"POST /tlsrpt HTTP/1.1\r\nHost: x\r\nContent-Type: application/tlsrpt+json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    closed, data = await closed_within(reader, 5)
    assert closed
    assert data.startswith(b"HTTP/1.1 408"), data[:100]
    writer.close()


async def test_connections_beyond_the_bound_are_refused_and_then_served_again(
    gw: Gateway,
) -> None:
    held = [await asyncio.open_connection("127.0.0.1", gw.http_port) for _ in range(5)]
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
    closed, data = await closed_within(reader, 0.5)
    assert (closed, data) == (True, b"")  # the sixth is closed at once, unanswered
    writer.close()
    for _, w in held:
        w.close()

    async def served() -> bool:  # once the gateway has noticed the closes
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
        try:
            writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return (await reader.readline()).startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    await eventually_async(served, 5, "/livez to be served again")


async def test_a_background_loop_failing_with_emfile_is_restarted_not_fatal() -> None:
    """Issue 12.5: the config watcher's first poll failing with EMFILE must not end the
    process: the loop is logged and restarted, and the gateway keeps serving."""
    import errno  # noqa: PLC0415

    calls: list[float] = []

    async def flaky(_: Gateway) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        await asyncio.sleep(3600)

    cfg = gateway_config(1, None, limits={"drain_timeout": 0})
    gateway = Gateway(cfg)
    gateway.background.append(flaky)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.serve(stop))
    await eventually_async(lambda: len(calls) >= 2 or task.done(), 5, "the loop to run again")
    assert not task.done(), task
    assert len(calls) == 2
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.smtp_port)
    assert (await reader.readline()).startswith(b"220 ")
    writer.close()
    stop.set()
    with pytest.raises(BaseExceptionGroup):
        await task
