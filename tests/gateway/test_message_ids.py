"""One queue id per accepted message, not per session, in the reply and the Received line."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix


async def test_each_message_of_a_session_gets_its_own_queue_id(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """Three messages on one connection: three distinct ids, each in its Received header."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    ids = {}
    for _ in range(3):
        mark = f"qid-{uuid.uuid4().hex}"
        assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
        assert (await client.cmd("RCPT TO:<bob@accepted.test>")).code == 250
        assert (await client.cmd("DATA")).code == 354
        done = await client.cmd(f"Subject: {mark}\r\n\r\nx\r\n.")
        assert done.code == 250
        ids[mark] = done.text.rsplit("Queued as ", 1)[1]
    await client.cmd("QUIT")
    await client.close()
    assert len(set(ids.values())) == 3
    for mark, queue_id in ids.items():
        message = await asyncio.to_thread(postfix_upstream.wait_for, mark.encode(), "bob")
        ours = re.search(rb"by mx\.test \(mxgate\) with ESMTP id (\w+)", message)
        assert ours is not None
        assert ours.group(1).decode() == queue_id
