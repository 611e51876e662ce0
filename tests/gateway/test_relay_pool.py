"""Upstream sessions are reused across messages; a session the upstream dropped is not (~4 s).

Real peers: Postfix's ``smtp-sink`` is the upstream (``mtapeers.smtpsink``: its ``-c``
counters say how many messages it received and how many sessions ended), the gateway runs
in-process, and the RawClient sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest

from eventually import eventually_async
from mtapeers.gwconfig import gateway_config
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mtapeers.smtpsink import Counters, SmtpSink, smtp_sink_path
from mxgate_gateway.app import Gateway
from mxgate_gateway.relay.pool import UpstreamPool

pytestmark = pytest.mark.postfix


async def start_sink(tmp_path: Path, idle_timeout: int) -> AsyncIterator[SmtpSink]:
    if smtp_sink_path() is None:
        pytest.skip("smtp-sink (Postfix) is not installed")
    sink = await SmtpSink.start(tmp_path, idle_timeout=idle_timeout, backlog=64)
    try:
        yield sink
    finally:
        await sink.stop()


@pytest.fixture(autouse=True)
def pooling_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pooling is the default; set it explicitly, since these tests are about it."""
    monkeypatch.setenv("MXGATE_UPSTREAM_POOL", "1")


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[SmtpSink]:
    async for running in start_sink(tmp_path, idle_timeout=60):
        yield running


@pytest.fixture
async def impatient_sink(tmp_path: Path) -> AsyncIterator[SmtpSink]:
    """An upstream that drops a session idle for more than one second."""
    async for running in start_sink(tmp_path, idle_timeout=1):
        yield running


async def send(port: int, subject: str) -> int:
    client = await RawClient.connect(port)
    try:
        await client.greet()
        assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
        assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
        assert (await client.cmd("DATA")).code == 354
        await client.send(f"Subject: {subject}\r\n\r\nbody\r\n.\r\n".encode())
        return (await client.reply()).code
    finally:
        await client.close()


async def settled(sink: SmtpSink, key: str, value: int) -> Counters:
    await eventually_async(
        lambda: getattr(sink.counters(), key) >= value,
        5,
        lambda: f"smtp-sink {key} >= {value} (now {sink.counters()})",
    )
    return sink.counters()


async def test_consecutive_messages_share_one_upstream_session(sink: SmtpSink) -> None:
    """Three messages, one after another: three at the upstream, no upstream session ended."""
    async with Gateway(gateway_config(sink.port, None)) as gw:
        assert [await send(gw.smtp_port, f"m{i}") for i in range(3)] == [250, 250, 250]
        during = await settled(sink, "messages", 3)
    after = await settled(sink, "quit", 1)
    assert (during.messages, during.sessions_ended) == (3, 0)
    assert (after.sessions_ended, after.quit) == (1, 1)  # closed with QUIT on shutdown


async def test_a_session_the_upstream_dropped_while_idle_is_not_reused(
    impatient_sink: SmtpSink,
) -> None:
    """The upstream times the idle session out; the next message still gets through."""
    async with Gateway(gateway_config(impatient_sink.port, None)) as gw:
        assert await send(gw.smtp_port, "first") == 250
        dropped = await settled(impatient_sink, "sessions_ended", 1)
        assert dropped.sessions_ended == 1
        await asyncio.sleep(0.1)
        assert await send(gw.smtp_port, "second") == 250
        counters = await settled(impatient_sink, "messages", 2)
    assert counters.messages == 2


async def test_idle_sessions_are_closed_after_max_age_without_new_traffic(
    postfix_upstream: Postfix,
) -> None:
    """A quiet gateway holds no upstream connections: the pool closes an idle session once
    it is ``max_age`` old, even if nobody asks the pool for one again."""
    pool = UpstreamPool(max_age=0.3)
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=postfix_upstream.port, start_tls=False)
    await smtp.connect()
    assert pool.give("key", smtp)
    await asyncio.sleep(0.1)
    assert smtp.is_connected  # young enough to reuse
    await eventually_async(lambda: not smtp.is_connected, 2, "the pool to close the session")
    assert pool.take("key") is None
    await pool.close()
