"""The invariant suite's own instruments stop when told: a stuck wait fails, never hangs.

Why: the failed-handshake storm hung past pytest's timeout in 1 of 3 clean-clone runs
(issue 12). Task dumps showed the gateway idle and the bystander still probing while the
test awaited it: the bystander had been cancelled, and the cancellation was lost inside
``asyncio.wait_for`` (CPython gh-86296, Python 3.11: a cancel that arrives as the
wrapped read completes is swallowed and the result returned). These tests pin both
halves of the fix: ``RawClient`` never loses a cancellation, and the bystander does not
depend on one.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from invariants.harness import Bystander
from mtapeers.raw import RawClient, Reply
from mxgate_gateway.app import Gateway


@pytest.mark.parametrize("turns", range(6))
async def test_a_cancelled_reply_is_cancelled_however_it_races_the_read(turns: int) -> None:
    """A reply line arrives, and ``turns`` loop iterations later the reader is
    cancelled: if the cancel was accepted, the read ends in CancelledError, never in a
    Reply (``wait_for`` returned the Reply at turns=1 on Python 3.11)."""
    reader = asyncio.StreamReader()  # fed below exactly as a socket transport feeds it
    client = RawClient(reader, cast("asyncio.StreamWriter", None))  # reads only
    task = asyncio.create_task(client.reply())
    await asyncio.sleep(0)  # the task now waits for a line
    reader.feed_data(b"220 mx.test ready\r\n")
    for _ in range(turns):
        await asyncio.sleep(0)
    if task.cancel():
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        assert (await task).code == 220  # it had finished before the cancel


@pytest.mark.postfix
async def test_the_bystander_stops_when_told_even_if_a_cancellation_is_lost(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A named fake ``RawClient.reply`` that finishes its read even when cancelled (what
    3.11's ``wait_for`` does in the race above); the attack ends while the bystander is
    in it. The bystander still stops, and within one probe."""
    honest_reply = RawClient.reply
    in_reply = asyncio.Event()

    async def reply_that_outlives_a_cancel(self: RawClient, timeout: float = 10.0) -> Reply:
        in_reply.set()
        read = asyncio.ensure_future(honest_reply(self, timeout))
        try:
            return await asyncio.shield(read)
        except asyncio.CancelledError:
            return await read  # the cancellation is lost here

    monkeypatch.setattr(RawClient, "reply", reply_that_outlives_a_cancel)

    async def attack_ends_mid_probe() -> None:
        async with Bystander(gateway.smtp_port).watching():
            await in_reply.wait()

    watched = asyncio.create_task(attack_ends_mid_probe())
    done, _ = await asyncio.wait({watched}, timeout=10)
    assert done, "the bystander did not stop when the attack ended"
    watched.result()  # and its invariants held: greeted, quickly
