"""SIGTERM under load: every 250 is at the upstream exactly once, the rest got 4xx or a drop.

Real processes: the ``mxgate gateway`` CLI, a recording upstream MTA, 20 concurrent
SMTP clients sending 500 messages (bounded count and deadline). Runtime ~10 s.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from eventually import eventually_async
from mtapeers.load import Load, Sent, check, message
from mtapeers.scenario import scenario

pytestmark = [pytest.mark.slow]


class HeldTransaction:
    """A client inside a mail transaction (MAIL and RCPT accepted) when SIGTERM arrives,
    so the drain always has a busy session to let finish, whatever the load's timing."""

    TEST_ID = "held00001"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> HeldTransaction:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        held = cls(reader, writer)
        assert (await held.reply()).startswith(b"220")
        for command in (
            "EHLO held.test",
            "MAIL FROM:<load@sender.test>",
            "RCPT TO:<user@accepted.test>",
        ):
            writer.write(command.encode() + b"\r\n")
            assert (await held.reply()).startswith(b"250"), command
        return held

    async def reply(self) -> bytes:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 30)
            if line[3:4] != b"-":
                return line

    async def finish(self) -> tuple[Sent, bytes]:
        """DATA and the message; its final reply, then what the gateway says next."""
        self.writer.write(b"DATA\r\n")
        assert (await self.reply()).startswith(b"354")
        self.writer.write(message(self.TEST_ID, "user@accepted.test") + b".\r\n")
        final = await self.reply()
        after = await asyncio.wait_for(self.reader.readline(), 30)
        self.writer.close()
        return Sent(self.TEST_ID, int(final[:3])), after


async def test_sigterm_during_load_loses_and_invents_nothing(tmp_path: Path) -> None:
    """Mid-load SIGTERM: readiness drops, idle sessions get 421 4.3.2, busy ones finish, exit 0."""
    async with scenario(tmp_path, delay=0.05) as sc:
        load = Load("127.0.0.1", sc.smtp_port, total=500, concurrency=20, pause=0.01, deadline=90)
        task = asyncio.create_task(load.run())
        await eventually_async(lambda: load.progress["2xx"] >= 150, 60, "150 messages accepted")
        held = await HeldTransaction.open(sc.smtp_port)
        sc.gateway.signal(signal.SIGTERM)

        # The signal and our request race in the gateway's loop, so poll briefly.
        async def not_ready() -> tuple[int, dict[str, Any]] | None:
            try:
                status, detail = await sc.gateway.readyz()
            except (aiohttp.ClientError, OSError):
                return 0, {}  # HTTP already gone also means not ready
            return (status, detail) if status != 200 else None

        status, detail = await eventually_async(not_ready, 1, "/readyz to say not ready")
        assert status == 0 or detail["draining"] is True, detail
        held_sent, after_held = await held.finish()  # busy at SIGTERM: it finishes
        exit_code = await sc.gateway.wait(within=30)
        print("drain:", drain_report(sc.gateway.tail(400)))
        sent = await task
        ledger = check([*sent, held_sent], sc.upstream.message_ids())
        print("ledger:", ledger)  # shown with -s / on failure
    assert exit_code == 0, sc.gateway.tail()
    assert ledger.problems == (), ledger
    assert held_sent.code == 250  # the transaction in flight at SIGTERM completed ...
    assert after_held.startswith(b"421 4.3.2 ")  # ... and then its session was told to go
    assert len(sent) == 500
    assert ledger.accepted >= 150
    assert ledger.tempfailed + ledger.dropped > 0, "the drain was never exercised"
    drained = drain_report(sc.gateway.tail(400))
    assert drained["finished"] >= 1, drained  # at least the held transaction
    assert drained["aborted"] == 0, drained  # well within limits.drain_timeout


def drain_report(log: str) -> dict[str, Any]:
    """The gateway's ``drain_finished`` log event (JSON lines)."""
    for line in log.splitlines():
        if '"drain_finished"' in line:
            event: dict[str, Any] = json.loads(line)
            return event
    raise AssertionError("no drain_finished event in the gateway log")


async def test_sigterm_while_idle_exits_promptly_and_cleanly(tmp_path: Path) -> None:
    """With connected idle clients only, SIGTERM sends them 421 4.3.2 and exits 0 at once."""
    async with scenario(tmp_path) as sc:
        streams = [await asyncio.open_connection("127.0.0.1", sc.smtp_port) for _ in range(3)]
        for reader, writer in streams:
            assert (await reader.readline()).startswith(b"220 ")
            writer.write(b"EHLO idle.test\r\n")
            while not (await reader.readline()).startswith(b"250 "):
                pass
        sc.gateway.signal(signal.SIGTERM)
        for reader, writer in streams:
            assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"421 4.3.2 ")
            assert await reader.read() == b""
            writer.close()
        assert await sc.gateway.wait(within=10) == 0
