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

from eventually import eventually_async
from mtapeers.fakes import FakeUpstream
from mtapeers.gwconfig import gateway_config
from mtapeers.observe import metric
from mtapeers.raw import RawClient, Reply
from mxgate_gateway.app import Gateway
from mxgate_gateway.metrics import AMBIGUOUS_REASONS

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
        "final_reply_timeout": 1,
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
        await eventually_async(  # the RCPT is now waiting at the upstream
            lambda: any(c.upper().startswith(b"RCPT") for c in fake.commands),
            5,
            "the RCPT to reach the upstream",
        )
        await client.reset()  # a hang-up (RST), not a half-close (FIN)
        await asyncio.wait_for(fake.hung_up.wait(), 5)


async def test_client_half_closing_during_a_slow_rcpt_is_answered_then_released(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """Half-close is not hang-up: the pending RCPT still gets its (4xx, bounded by the
    upstream timeout) reply, then the gateway closes and hangs up on the upstream."""
    fake.mode = "stall_rcpt"
    await fake.start()
    upstream = {"address": f"127.0.0.1:{fake.port}", "timeout": 1, "tls": "none"}
    async with Gateway(gateway_config(fake.port, tls_files, upstreams=[upstream])) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        await client.send(b"RCPT TO:<alice@accepted.test>\r\n")
        client.writer.write_eof()
        assert (await client.reply()).code // 100 == 4
        assert await client.closed()
        await asyncio.wait_for(fake.hung_up.wait(), 5)
        await client.close()


async def relay_one(
    fake: FakeUpstream, tls_files: dict[str, Path], **upstream: object
) -> tuple[Reply, dict[str, float]]:
    """One message through a gateway to ``fake``: the final reply and ambiguous counts."""
    await fake.start()
    options = {"address": f"127.0.0.1:{fake.port}", "tls": "none", "timeout": 1, **upstream}
    async with Gateway(gateway_config(fake.port, tls_files, upstreams=[options])) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
        assert (await client.cmd("DATA")).code == 354
        final = await client.cmd(BODY + b".", timeout=30)
        await client.close()
        ambiguous = {
            reason: metric(gw, "mxgate_ambiguous_outcomes_total", reason=reason)
            for reason in AMBIGUOUS_REASONS
        }
    return final, {k: v for k, v in ambiguous.items() if v}


async def test_upstream_answering_2xx_to_data_gives_4xx_and_stores_nothing(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """The only road to 250 is 354 then 250: a 250 to DATA itself is a broken upstream."""
    fake.mode = "data_2xx"
    final, ambiguous = await relay_one(fake, tls_files)
    assert (final.code // 100, final.enhanced[:2]) == (4, "4.")
    assert fake.received == []
    assert fake.stored == 0
    assert ambiguous == {}  # the dot never left: not ambiguous


async def test_upstream_refusing_data_with_5xx_is_passed_through(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """A 5xx the upstream gave for this message is the one way to a 5xx after DATA."""
    fake.mode = "data_554"
    final, ambiguous = await relay_one(fake, tls_files)
    assert final.code == 554
    assert ambiguous == {}


async def test_a_slow_final_reply_is_waited_for_beyond_the_command_timeout(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """The upstream takes longer than ``timeout`` to answer the dot: still one 250, one copy."""
    fake.mode, fake.delay = "slow_dot", 2.5
    final, ambiguous = await relay_one(fake, tls_files, timeout=1, final_reply_timeout=20)
    assert final.code == 250
    assert fake.stored == 1
    assert ambiguous == {}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("stall_data", "timeout"), ("dot_451", "upstream_4xx"), ("garbage_dot", "protocol")],
)
async def test_every_4xx_after_the_relayed_dot_is_counted_as_ambiguous(
    fake: FakeUpstream, tls_files: dict[str, Path], mode: str, reason: str
) -> None:
    """A 4xx after the upstream saw the whole message may duplicate it: counted, by reason."""
    fake.mode = mode
    final, ambiguous = await relay_one(fake, tls_files, final_reply_timeout=1)
    assert final.code // 100 == 4
    assert fake.received
    assert fake.received[0].endswith(b".\r\n")
    assert ambiguous == {reason: 1.0}


async def test_a_kelvin_sign_domain_is_relayed_in_the_spelling_that_matched(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """RCPT TO:<u@banK.test> with U+212A matches bank.test by its A-label and reaches the
    upstream as u@bank.test: never a domain spelled differently from what matched."""
    fake.smtputf8 = True
    await fake.start()
    upstream = {"address": f"127.0.0.1:{fake.port}", "tls": "none", "timeout": 1}
    config = gateway_config(fake.port, tls_files, upstreams=[upstream], domains=["bank.test"])
    async with Gateway(config) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        assert (await client.cmd("MAIL FROM:<s@example.org> SMTPUTF8")).code == 250
        assert (await client.cmd("RCPT TO:<u@ban\u212a.test>")).code == 250
        assert (await client.cmd("RCPT TO:<v@\u200d.bank.test>")).code == 550  # does not map
        await client.cmd("QUIT")
        await client.close()
    rcpts = [c for c in fake.commands if c.upper().startswith(b"RCPT")]
    assert rcpts == [b"RCPT TO:<u@bank.test>\r\n"]


async def test_the_clients_command_timer_does_not_run_while_we_wait_upstream(
    fake: FakeUpstream, tls_files: dict[str, Path]
) -> None:
    """An upstream RCPT slower than our command_timeout: the client still gets the
    upstream outcome (451 after the upstream timeout), not our 421 idle timeout."""
    fake.mode = "stall_rcpt"
    await fake.start()
    upstream = {"address": f"127.0.0.1:{fake.port}", "timeout": 2, "tls": "none"}
    limits = {"command_timeout": 0.5, "drain_timeout": 0}
    config = gateway_config(fake.port, tls_files, upstreams=[upstream], limits=limits)
    async with Gateway(config) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        reply = await client.cmd("RCPT TO:<alice@accepted.test>")
        assert (reply.code, reply.enhanced) == (451, "4.4.2")
        assert (await client.cmd("QUIT")).code == 221
        await client.close()
