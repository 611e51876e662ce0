"""No loss when the upstream misbehaves mid-transaction (scripted fake upstreams).

Postfix cannot be told to hang after the final dot or to cut the line mid-DATA,
so ``FakeUpstream`` does exactly that. It never answers 250 to any DATA, so a
client that was told 250 here would prove mail loss.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mtapeers.fakes import FakeUpstream
from mtapeers.gwconfig import gateway_config
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

BODY = b"Subject: no-loss\r\n\r\n" + b"line of text that makes the body long enough\r\n" * 10


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream(mode="")
    yield upstream
    await upstream.stop()


async def relay_through(
    mode: str, fake: FakeUpstream, tls_files: dict[str, Path]
) -> tuple[list[int], int | None]:
    fake.mode = mode
    await fake.start()
    upstream = {
        "address": f"127.0.0.1:{fake.port}",
        "timeout": 1,
        "connect_timeout": 1,
        "tls": "none",
    }
    async with Gateway(gateway_config(fake.port, tls_files, upstreams=[upstream])) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        rcpt = (await client.cmd("RCPT TO:<alice@accepted.test>")).code
        final = None
        if rcpt == 250:
            assert (await client.cmd("DATA")).code == 354
            reply = await client.cmd(BODY + b".")
            final = reply.code
            assert reply.enhanced.startswith("4.")
            counted = 'mxgate_messages_total{outcome="tempfailed",tls="none"} 1.0'
            assert counted in gw.metrics.exposition().decode()
        await client.close()
    return [rcpt], final


async def test_upstream_stalling_after_the_dot_gives_451(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """The upstream got the whole message but never answered: the client gets 4xx, not 250."""
    rcpts, final = await relay_through("stall_data", fake, tls_files)
    assert rcpts == [250]
    assert final == 451
    assert fake.received
    assert fake.received[0].endswith(b".\r\n")  # it really saw the final dot


async def test_upstream_dropping_mid_data_gives_451(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """The upstream cut the connection inside DATA: the client gets 4xx, not 250."""
    rcpts, final = await relay_through("drop_data", fake, tls_files)
    assert rcpts == [250]
    assert final == 451
    assert fake.received
    assert not fake.received[0].endswith(b".\r\n")  # dropped before the end


async def test_upstream_that_never_greets_gives_451_at_rcpt(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """A silent upstream is bounded by connect_timeout: RCPT gets 451 4.4.1."""
    rcpts, final = await relay_through("stall_greeting", fake, tls_files)
    assert rcpts == [451]
    assert final is None


async def test_opportunistic_upstream_tls_falls_back_to_plaintext(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """tls: opportunistic and a broken STARTTLS upstream: retried once in plaintext, delivered."""
    fake.mode = "broken_starttls"
    await fake.start()
    upstream = {"address": f"127.0.0.1:{fake.port}", "timeout": 5, "tls": "opportunistic"}
    async with Gateway(gateway_config(fake.port, tls_files, upstreams=[upstream])) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
        assert (await client.cmd("DATA")).code == 354
        assert (await client.cmd(BODY + b".")).code == 250
        await client.close()
    assert len(fake.received) == 1


async def test_smtputf8_mail_to_an_upstream_without_smtputf8_is_refused(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """An upstream that does not offer SMTPUTF8 never gets a UTF-8 transaction: 550 5.6.7."""
    fake.mode = "broken_starttls"
    await fake.start()
    upstream = {"address": f"127.0.0.1:{fake.port}", "timeout": 5, "tls": "none"}
    async with Gateway(gateway_config(fake.port, tls_files, upstreams=[upstream])) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8".encode())
        refused = await client.cmd("RCPT TO:<alice@accepted.test>")
        assert (refused.code, refused.enhanced) == (550, "5.6.7")
        await client.close()
    assert fake.received == []


async def test_client_leaving_during_a_slow_rcpt_releases_the_upstream(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """The client hangs up while the upstream sits on RCPT: the gateway hangs up too,
    long before the upstream timeout, instead of holding a half-open transaction."""
    fake.mode = "stall_rcpt"
    await fake.start()
    upstream = {"address": f"127.0.0.1:{fake.port}", "timeout": 60, "tls": "none"}
    async with Gateway(gateway_config(fake.port, tls_files, upstreams=[upstream])) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        await client.send(b"RCPT TO:<alice@accepted.test>\r\n")
        await asyncio.sleep(0.3)  # the RCPT is now waiting at the upstream
        await client.close()
        await asyncio.wait_for(fake.hung_up.wait(), 5)
