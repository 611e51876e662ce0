"""Half-close is not hang-up: after the client's EOF, every complete command is answered.

Exim pipelines QUIT after the final dot and shuts its write side; other senders shut it
after any command. The gateway processes and answers everything it received, then
closes; an incomplete command or DATA section is dropped without a copy upstream.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mtapeers.observe import settled
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix

ENVELOPE = b"EHLO client.test\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@accepted.test>\r\n"

# Pipelined commands, then EOF: the reply codes the client must still get, in order.
COMMAND_STAGES = {
    "greeting only": (b"", []),
    "after EHLO": (b"EHLO client.test\r\n", [250]),
    "after MAIL": (b"EHLO client.test\r\nMAIL FROM:<s@example.org>\r\n", [250, 250]),
    "after RCPT": (ENVELOPE, [250, 250, 250]),
    "after RSET and NOOP": (ENVELOPE + b"RSET\r\nNOOP\r\n", [250, 250, 250, 250, 250]),
    "after QUIT": (b"EHLO client.test\r\nQUIT\r\n", [250, 221]),
    "partial command": (b"EHLO client.test\r\nMAIL FROM:<s@exa", [250]),
}


async def replies_until_close(client: RawClient) -> list[int]:
    codes = []
    while True:
        try:
            codes.append((await client.reply()).code)
        except ConnectionError:
            return codes


@pytest.mark.parametrize("stage", COMMAND_STAGES)
async def test_eof_after_commands_answers_each_then_closes(gateway: Gateway, stage: str) -> None:
    """Each complete command before the EOF gets its reply; then the gateway closes."""
    sent, expected = COMMAND_STAGES[stage]
    client = await RawClient.connect(gateway.smtp_port)
    assert (await client.reply()).code == 220
    await client.send(sent)
    client.writer.write_eof()
    assert await replies_until_close(client) == expected
    await client.close()
    await settled(gateway)


async def open_data(gateway: Gateway) -> RawClient:
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
    assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
    assert (await client.cmd("DATA")).code == 354
    return client


@pytest.mark.parametrize("then_quit", [True, False], ids=["dot+QUIT", "dot"])
async def test_eof_after_the_final_dot_delivers_once_and_answers(
    gateway: Gateway, postfix_upstream: Postfix, then_quit: bool
) -> None:
    """Exim's pattern (dot, QUIT, SHUT_WR) and the same without QUIT: 250 (221), one copy."""
    mark = f"half-close-{uuid.uuid4().hex}".encode()
    client = await open_data(gateway)
    await client.send(b"Subject: " + mark + b"\r\n\r\nbody\r\n.\r\n" + b"QUIT\r\n" * then_quit)
    client.writer.write_eof()
    codes = await replies_until_close(client)
    assert codes == ([250, 221] if then_quit else [250])
    await client.close()
    message = await asyncio.to_thread(postfix_upstream.wait_for, mark, "alice")
    assert message.startswith(b"Return-Path:")
    assert len(postfix_upstream.find(mark, "alice")) == 1
    await settled(gateway)


async def test_eof_in_the_middle_of_data_relays_nothing(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """A DATA section cut by EOF is incomplete: no reply, no copy, the slot is released."""
    mark = f"half-data-{uuid.uuid4().hex}".encode()
    client = await open_data(gateway)
    await client.send(b"Subject: " + mark + b"\r\n\r\nhalf a body\r\n")
    client.writer.write_eof()
    assert await replies_until_close(client) == []
    await client.close()
    await settled(gateway)
    assert postfix_upstream.find(mark, "alice") == []
