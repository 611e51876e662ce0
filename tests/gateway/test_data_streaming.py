"""DATA is streamed to the upstream as it arrives; a refused message leaves no copy (issue 13.3).

The gateway sends our Received header and the client's lines to the upstream while
the client is still sending. A message that breaks an edge rule at its very end is
abandoned before its final dot, so the upstream (a real Postfix) keeps nothing; an
upstream that stalls or dies mid-stream makes the client's reply a 4xx.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventually import eventually_async
from mtapeers.fakes import FakeUpstream
from mtapeers.gwconfig import gateway_config
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway
from mxgate_gateway.config.model import BareLineEndings
from mxgate_gateway.smtp.data import DataStatus, DataStream

MiB = 1024 * 1024
LINE = b"x" * 76 + b"\r\n"
LOST_AFTER_DATA = re.compile(r"lost connection after DATA \((\d+) bytes\)")


def bulk(size: int) -> bytes:
    """``size`` octets of valid 78-octet CRLF lines."""
    return LINE * (size // len(LINE))


async def open_data(port: int, rcpt: str = "alice@accepted.test") -> RawClient:
    client = await RawClient.connect(port)
    await client.greet()
    assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
    assert (await client.cmd(f"RCPT TO:<{rcpt}>")).code == 250
    assert (await client.cmd("DATA")).code == 354
    return client


def lost_mid_data(log: str) -> list[int]:
    """Byte counts of Postfix's 'lost connection after DATA (N bytes)' lines."""
    return [int(n) for n in LOST_AFTER_DATA.findall(log)]


@pytest.mark.postfix
@pytest.mark.slow
async def test_bare_lf_at_the_end_of_a_20mib_message_leaves_no_copy_upstream(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """20 MiB streamed to Postfix, then a bare LF in the last line: 550 to the client, the
    upstream transaction is dropped before its final dot (Postfix logs the lost DATA with
    megabytes already received) and Postfix holds no copy. The session goes on."""
    mark = f"mxgate-stream-{uuid.uuid4().hex}"
    limits = {"max_message_size": 32 * MiB, "drain_timeout": 0}
    before = len(lost_mid_data(postfix_upstream.log()))
    offset = postfix_upstream.log_offset()
    async with Gateway(gateway_config(postfix_upstream.port, tls_files, limits=limits)) as gw:
        client = await open_data(gw.smtp_port)
        await client.send(f"Subject: {mark}\r\n\r\n".encode() + bulk(20 * MiB))
        reply = await client.cmd(b"last line with a bare\nLF\r\n.", timeout=60)
        assert (reply.code, reply.enhanced) == (550, "5.6.0")
        assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250  # session goes on
        await client.close()
    lost = await eventually_async(
        lambda: lost_mid_data(postfix_upstream.log())[before:],
        5,
        "Postfix to log a DATA that was cut before its final dot",
        interval=0.1,
    )
    assert max(lost) > 10 * MiB  # streamed while the client sent, not buffered
    await eventually_async(  # cleanup discarded the 20 MiB it had begun to queue
        lambda: postfix_upstream.finished_since(offset), 5, "Postfix to finish the transaction"
    )
    assert not postfix_upstream.holds(mark.encode())


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream(mode="")
    yield upstream
    await upstream.stop()


async def gateway_to(fake: FakeUpstream, tls_files: dict[str, Path]) -> Gateway:
    await fake.start()
    upstream = {"address": f"127.0.0.1:{fake.port}", "timeout": 1, "tls": "none"}
    limits = {"max_message_size": 32 * MiB, "drain_timeout": 0}
    return Gateway(gateway_config(fake.port, tls_files, upstreams=[upstream], limits=limits))


async def test_the_upstream_gets_the_message_while_the_client_still_sends_it(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """Before the client's final dot the (fake) upstream already read most of what was
    sent; a bare CR at the end then abandons it: no final dot ever reaches the upstream."""
    fake.mode = "stall_data"
    async with await gateway_to(fake, tls_files) as gw:
        client = await open_data(gw.smtp_port)
        await client.send(b"Subject: streamed\r\n\r\n" + bulk(2 * MiB))
        await eventually_async(lambda: fake.data_bytes > MiB, 5, "1 MiB streamed to the upstream")
        reply = await client.cmd(b"bare\rCR\r\n.", timeout=30)
        assert reply.code == 550
        await client.close()
        await asyncio.wait_for(fake.hung_up.wait(), 5)
    assert fake.received == []  # the section never ended with a dot at the upstream


async def test_an_upstream_that_stops_reading_mid_message_gives_451(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """The upstream says 354, then reads nothing: once its buffers are full the gateway
    waits at most the upstream timeout, drops it (no dot sent), reads the client's
    message to its end and answers 4xx, never 250."""
    fake.mode = "stop_reading"
    async with await gateway_to(fake, tls_files) as gw:
        client = await open_data(gw.smtp_port)
        await client.send(b"Subject: stalled\r\n\r\n" + bulk(24 * MiB))
        reply = await client.cmd(b".", timeout=60)
        assert reply.code == 451
        assert reply.enhanced.startswith("4.")
        assert (await client.cmd("RSET")).code == 250  # the session is still usable
        await client.close()
    assert fake.received == []


@pytest.mark.parametrize(
    ("reads", "bare", "wire", "size"),
    [
        ([b"a\r\n..b\r\n"], BareLineEndings.REJECT, b"a\r\n..b\r\n", 7),  # stuffing kept
        ([b"a\n.b\r\n"], BareLineEndings.NORMALIZE, b"a\r\n..b\r\n", 7),  # new line start: stuffed
        ([b".", b"x\r", b"\nnext\r\n"], BareLineEndings.REJECT, b".x\r\nnext\r\n", 9),
    ],
)
def test_the_stream_hands_on_complete_dot_stuffed_crlf_lines(
    reads: list[bytes], bare: BareLineEndings, wire: bytes, size: int
) -> None:
    """Whatever the read boundaries, the upstream gets whole lines, stuffed for the wire."""
    stream = DataStream(1000, bare)
    assert b"".join(stream.feed(r) for r in reads) == wire
    assert (stream.status, stream.size) == (DataStatus.OK, size)


def test_a_line_without_end_is_refused_without_being_kept() -> None:
    """Megabytes with no CRLF: too long as soon as it cannot fit; nothing is held."""
    stream = DataStream(32 * MiB, BareLineEndings.REJECT)
    for _ in range(64):
        assert stream.feed(b"y" * 65536) == b""
    assert stream.status is DataStatus.LINE_TOO_LONG
    assert len(stream._carry) == 0


def test_size_is_judged_as_the_octets_arrive() -> None:
    stream = DataStream(1000, BareLineEndings.REJECT)
    assert stream.feed(LINE * 12) == LINE * 12
    assert stream.feed(LINE) == b""
    assert stream.status is DataStatus.TOO_BIG
