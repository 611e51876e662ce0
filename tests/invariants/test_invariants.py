"""The invariant suite: attacks on a running gateway, judged by invariants, not replies.

After each attack: (a) conservation, every 250 a client got is exactly one copy at the
upstream and every message without 250 has none; (b) resources back to baseline, the
connections gauge 0, open descriptors at baseline, RSS within a margin; (c) while it
ran, an honest bystander was greeted within 1 s. Real Postfix upstream, real openssl
clients; the misbehaving upstreams and clients are the named fakes of tests/mtapeers.
Bounded: each attack is a few dozen connections for a few seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invariants.harness import Baseline, Bystander, Ledger, all_of, send_message
from mtapeers.fakes import FakeUpstream
from mtapeers.gwconfig import gateway_config
from mtapeers.hostile import FAILURES, slowloris
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix

LIMITS = {
    "max_message_size": 1 << 20,
    "greeting_timeout": 2,
    "command_timeout": 2,
    "data_timeout": 5,
    "drain_timeout": 0,
    "max_connections_per_ip": 200,
}
ATTACK_BOUND = 60  # seconds for a whole attack, well inside pytest's 120 s: a stuck client is named


def config(upstream_port: int, tls_files: dict[str, Path], **upstream: object) -> object:
    tls = {"cert": str(tls_files["cert"]), "key": str(tls_files["key"]), "handshake_timeout": 0.5}
    options = {"address": f"127.0.0.1:{upstream_port}", "timeout": 2, **upstream}
    return gateway_config(upstream_port, tls_files, tls=tls, limits=LIMITS, upstreams=[options])


@pytest.fixture
async def gw(postfix_upstream: Postfix, tls_files: dict[str, Path]) -> AsyncIterator[Gateway]:
    async with Gateway(config(postfix_upstream.port, tls_files)) as gateway:  # type: ignore[arg-type]
        yield gateway


def postfix_copies(postfix: Postfix) -> object:
    return lambda mark: len(postfix.find(mark.encode(), "alice"))


async def test_failed_handshakes_of_every_kind(gw: Gateway, postfix_upstream: Postfix) -> None:
    """Every failed-handshake kind, two of each at once; mail still flows."""
    ledger = Ledger()
    baseline = await Baseline.take(gw)
    async with Bystander(gw.smtp_port).watching():
        attacks = {
            f"{kind} #{n}": fail(gw.smtp_port) for kind, fail in FAILURES.items() for n in (1, 2)
        }
        await all_of(
            ATTACK_BOUND, {**attacks, "honest message": send_message(gw.smtp_port, ledger)}
        )
    await send_message(gw.smtp_port, ledger)
    await ledger.check(postfix_copies(postfix_upstream))  # type: ignore[arg-type]
    await baseline.back_to(gw)


# (what is sent after DATA's 354, whether a 250 is due). EOF follows each.
DATA_STAGES = [
    (b"body\r\n", False),  # mid-DATA: incomplete, no copy
    (b"body\r\n.\r\n", True),  # after the dot
    (b"body\r\n.\r\nQUIT\r\n", True),  # Exim: dot, QUIT, SHUT_WR
    (b"body\r\n.\r\nNOOP\r\nRSET\r\n", True),
]
COMMAND_PREFIXES = [b"", b"EHLO c.test\r\n", b"EHLO c.test\r\nMAIL FROM:<s@example.org>\r\n"]


async def half_close_in_data(port: int, ledger: Ledger, tail: bytes) -> None:
    mark = ledger.new_mark()
    client = await RawClient.connect(port)
    code = None
    try:
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        await client.cmd("RCPT TO:<alice@accepted.test>")
        assert (await client.cmd("DATA")).code == 354
        await client.send(b"Subject: " + mark.encode() + b"\r\n\r\n" + tail)
        client.writer.write_eof()
        replies = await client.replies_until_close()
        code = replies[0] if replies else None
    finally:
        ledger.record(mark, code)
        await client.close()


async def half_close_in_commands(port: int, sent: bytes) -> None:
    client = await RawClient.connect(port)
    await client.reply()
    await client.send(sent)
    client.writer.write_eof()
    assert await client.closed()
    await client.close()


async def test_half_close_at_every_stage(gw: Gateway, postfix_upstream: Postfix) -> None:
    """EOF after each stage, several at once: complete messages delivered once, others not."""
    ledger = Ledger()
    baseline = await Baseline.take(gw)
    async with Bystander(gw.smtp_port).watching():
        in_data = {
            f"EOF after DATA + {tail!r} #{n}": half_close_in_data(gw.smtp_port, ledger, tail)
            for tail, _ in DATA_STAGES
            for n in range(3)
        }
        in_commands = {
            f"EOF after {sent!r} #{n}": half_close_in_commands(gw.smtp_port, sent)
            for sent in COMMAND_PREFIXES
            for n in range(3)
        }
        await all_of(ATTACK_BOUND, {**in_data, **in_commands})
    due = {tail: ok for tail, ok in DATA_STAGES}
    assert sorted(s.code == 250 for s in ledger.sent) == sorted(
        due[tail] for tail, _ in DATA_STAGES * 3
    )
    await ledger.check(postfix_copies(postfix_upstream))  # type: ignore[arg-type]
    await baseline.back_to(gw)


async def test_slowloris_on_smtp(gw: Gateway, postfix_upstream: Postfix) -> None:
    """40 clients dribbling one byte at a time are cut at the command timeout."""
    ledger = Ledger()
    baseline = await Baseline.take(gw)
    async with Bystander(gw.smtp_port).watching():
        dribblers = {f"slowloris #{n}": slowloris(gw.smtp_port, seconds=4) for n in range(40)}
        await all_of(
            ATTACK_BOUND, {**dribblers, "honest message": send_message(gw.smtp_port, ledger)}
        )
    await ledger.check(postfix_copies(postfix_upstream))  # type: ignore[arg-type]
    await baseline.back_to(gw)


# mode -> (upstream options, does the fake store (250 to the dot)?)
HOSTILE_UPSTREAMS = {
    "data_2xx": ({}, False),
    "slow_dot": ({"final_reply_timeout": 10}, True),
    "drop_data": ({}, False),
    "garbage_dot": ({}, False),
    "stall_data": ({"final_reply_timeout": 1}, False),
    "dot_451": ({}, False),
}


@pytest.mark.parametrize("mode", HOSTILE_UPSTREAMS)
async def test_hostile_upstream(mode: str, tls_files: dict[str, Path]) -> None:
    """Four messages through a misbehaving upstream: 250 only where it stored one."""
    options, stores = HOSTILE_UPSTREAMS[mode]
    fake = FakeUpstream(mode=mode, delay=2.5)
    await fake.start()
    ledger = Ledger()
    body = b"line of text that makes the body long enough\r\n" * 10
    try:
        cfg = config(fake.port, tls_files, tls="none", **options)
        async with Gateway(cfg) as gateway:  # type: ignore[arg-type]
            baseline = await Baseline.take(gateway)
            async with Bystander(gateway.smtp_port).watching():
                messages = {
                    f"message #{n}": send_message(gateway.smtp_port, ledger, body) for n in range(4)
                }
                await all_of(ATTACK_BOUND, messages)

            def copies(mark: str) -> int:
                return sum(mark.encode() in m for m in fake.received) if stores else 0

            await ledger.check(copies, settle=0.2)
            await fake.stop()  # its stalled sockets live in this process too
            await baseline.back_to(gateway)
    finally:
        await fake.stop()
    assert all(s.code is not None for s in ledger.sent), ledger.sent  # answered, in bound
    assert all((s.code == 250) is stores for s in ledger.sent), ledger.sent
    assert fake.stored == sum(s.code == 250 for s in ledger.sent)


MALFORMED = {
    "too big": b"x" * 998 + b"\r\n",  # x 1100 lines: over the 1 MiB limit
    "bare LF": b"a line\nwith a bare LF\r\n",
    "long line": b"y" * 2000 + b"\r\n",
    "valid, near the limit": b"z" * 998 + b"\r\n",
}


async def test_large_and_malformed_data(gw: Gateway, postfix_upstream: Postfix) -> None:
    """Oversized, bare-LF and over-long DATA is refused; a large valid one arrives once."""
    ledger = Ledger()
    baseline = await Baseline.take(gw)
    bodies = [
        MALFORMED["too big"] * 1100,
        MALFORMED["bare LF"],
        MALFORMED["long line"],
        MALFORMED["valid, near the limit"] * 900,
    ]
    async with Bystander(gw.smtp_port).watching():
        messages = {
            f"body {n} ({len(body)} bytes) #{copy}": send_message(gw.smtp_port, ledger, body)
            for n, body in enumerate(bodies)
            for copy in (1, 2)
        }
        await all_of(ATTACK_BOUND, messages)
    assert [s.code == 250 for s in ledger.sent].count(True) == 2
    await ledger.check(postfix_copies(postfix_upstream))  # type: ignore[arg-type]
    await baseline.back_to(gw)


# One session as a random walk over commands; it may end in QUIT, a half-close or a hang-up.
STEP = st.sampled_from(
    [
        b"EHLO c.test\r\n",
        b"HELO c.test\r\n",
        b"MAIL FROM:<s@example.org>\r\n",
        b"MAIL FROM:<s@example.org> SIZE=100\r\n",
        b"RCPT TO:<alice@accepted.test>\r\n",
        b"RCPT TO:<x@evil.test>\r\n",
        b"RCPT TO:<alice@ACCEPTED.test>\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"VRFY alice\r\n",
        b"XYZZY\r\n",
        b"MAIL FROM:<s@exa\x00mple.org>\r\n",
        b"\xff\xfe\r\n",
        b"DATA\r\n",
        b"STARTTLS\r\n",
    ]
)
ENDINGS = st.sampled_from(["quit", "half-close", "hang-up"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(STEP, max_size=12), ending=ENDINGS)
async def test_random_sessions_keep_the_invariants(
    gw: Gateway, postfix_upstream: Postfix, steps: list[bytes], ending: str
) -> None:
    """Whatever a client sends, in any order, the gateway answers, closes and recovers."""
    ledger = Ledger()
    client = await RawClient.connect(gw.smtp_port)
    try:
        await client.reply()
        for step in steps:
            await client.send(step)
            reply = await client.reply(timeout=5)
            if step == b"DATA\r\n" and reply.code == 354:
                mark = ledger.new_mark()
                got = await client.cmd(b"Subject: " + mark.encode() + b"\r\n\r\nx\r\n.")
                ledger.record(mark, got.code)
            if step == b"STARTTLS\r\n" and reply.code == 220:
                break  # a handshake never started: the timeout must end it
            if reply.code == 421:
                break
        if ending == "quit":
            await client.send(b"QUIT\r\n")
        elif ending == "half-close":
            client.writer.write_eof()
        else:
            await client.reset()
    except ConnectionError:
        pass
    finally:
        await client.close()
    await ledger.check(postfix_copies(postfix_upstream), settle=0.1)  # type: ignore[arg-type]
    await Baseline(fds=10_000, rss=1 << 40).back_to(gw, timeout=5)  # gauge 0, slots free
    probe = await RawClient.connect(gw.smtp_port)
    assert (await probe.reply()).code == 220
    await probe.close()
