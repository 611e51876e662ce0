"""The session is bounded, not only each wait: a lifetime and a junk-command limit.

A client sending NOOP every few seconds never trips a timeout; it must still not hold
its slot forever. Both limits are answered ``421 4.7.0`` and the slot is released.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from mtapeers.gwconfig import gateway_config
from mtapeers.observe import metric, settled
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway
from mxgate_gateway.smtp.commands import session_limit

pytestmark = pytest.mark.postfix


@pytest.mark.parametrize(
    ("age", "junk", "expected"),
    [
        (10.0, 5, None),
        (31.0, 5, "session_too_long"),
        (10.0, 6, "junk_command_limit"),
        (30.0, 5, None),  # at the limit is still allowed
    ],
)
def test_session_limit_is_a_pure_verdict(age: float, junk: int, expected: str | None) -> None:
    """Lifetime above max, or junk above the limit, ends the session with 421 4.7.0."""
    verdict = session_limit(age, junk, max_duration=30.0, junk_limit=5)
    assert (verdict[0] if verdict else None) == expected
    if verdict:
        assert (verdict[1].code, verdict[1].enhanced) == (421, "4.7.0")


def limited(postfix: Postfix, tls_files: dict[str, Path], **limits: float) -> Gateway:
    base = {"max_message_size": 1 << 20, "drain_timeout": 0, **limits}
    return Gateway(gateway_config(postfix.port, tls_files, limits=base))


async def test_a_noop_every_few_tenths_is_cut_at_max_session_duration(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """Never idle long enough for a timeout, yet closed with 421 4.7.0 after the lifetime."""
    async with limited(postfix_upstream, tls_files, max_session_duration=1.0) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        codes = []
        for _ in range(20):
            reply = await client.cmd("NOOP")
            codes.append(reply.code)
            if reply.code != 250:
                break
            await asyncio.sleep(0.2)
        assert codes[-1] == 421
        assert 3 <= len(codes) < 20
        assert reply.enhanced == "4.7.0"
        assert await client.closed()
        await client.close()
        await settled(gw)
        assert metric(gw, "mxgate_smtp_protocol_errors_total", kind="session_too_long") == 1


async def test_junk_commands_beyond_the_limit_close_the_session(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """NOOP/RSET/VRFY/HELP up to the limit are answered; the next one gets 421 4.7.0."""
    async with limited(postfix_upstream, tls_files, junk_command_limit=4) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        for verb in ("NOOP", "RSET", "VRFY x", "HELP"):
            assert (await client.cmd(verb)).code in (214, 250, 252)
        final = await client.cmd("NOOP")
        assert (final.code, final.enhanced) == (421, "4.7.0")
        assert await client.closed()
        await client.close()
        await settled(gw)


async def test_a_relayed_message_resets_the_junk_count(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """A sender that RSETs between messages of a long session is not junk."""
    async with limited(postfix_upstream, tls_files, junk_command_limit=2) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        for _ in range(3):
            assert (await client.cmd("RSET")).code == 250
            assert (await client.cmd("NOOP")).code == 250
            assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
            assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
            assert (await client.cmd("DATA")).code == 354
            mark = uuid.uuid4().hex.encode()
            assert (await client.cmd(b"Subject: " + mark + b"\r\n\r\nx\r\n.")).code == 250
        assert (await client.cmd("QUIT")).code == 221
        await client.close()
