"""Upstream faults under load: killed and restarted, or slower than its timeout.

Every 250 a client got must be at the upstream exactly once; every other message got
a 4xx (never a 5xx, never a silent loss). Real gateway process, recording upstream
SIGKILLed like a crashed pod. Runtime ~15 s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from eventually import eventually_async
from mtapeers.load import Load, check
from mtapeers.scenario import scenario

pytestmark = [pytest.mark.slow]


async def test_upstream_killed_and_restarted_during_load(tmp_path: Path) -> None:
    """While the upstream is dead clients get 4xx; after it returns, mail flows again."""
    async with scenario(tmp_path) as sc:
        load = Load("127.0.0.1", sc.smtp_port, total=400, concurrency=20, pause=0.4, deadline=90)
        task = asyncio.create_task(load.run())
        await eventually_async(lambda: load.progress["2xx"] >= 80, 60, "80 messages accepted")
        await sc.upstream.kill()
        await eventually_async(lambda: load.progress["4xx"] >= 20, 30, "20 tempfails")
        accepted_while_dead = load.progress["2xx"]
        await sc.upstream.start()  # same port
        sent = await task
        ledger = check(sent, sc.upstream.message_ids())
        print("ledger:", ledger)  # shown with -s / on failure
        metrics = await sc.gateway.metrics()
    assert ledger.problems == (), ledger
    assert ledger.tempfailed >= 20
    assert ledger.accepted > accepted_while_dead, "mail did not flow after the restart"
    assert "mxgate_upstream_breaker_open_total" in metrics


async def test_upstream_slower_than_its_timeout_tempfails(tmp_path: Path) -> None:
    """An upstream that answers the final dot after our final-reply timeout yields 4xx,
    never 250, and each such 4xx is counted as an ambiguous outcome."""
    options = {"timeout": 1, "final_reply_timeout": 1}
    async with scenario(tmp_path, delay=2.5, upstream_options=options) as sc:
        sent = await Load("127.0.0.1", sc.smtp_port, total=20, concurrency=10).run()
        # The slow upstream finishes (stores, or drops) every message it got a dot for; a
        # late copy, or a second one, shows only then.
        got_dots, _ = await eventually_async(
            lambda: (flight := sc.upstream.in_flight())[0] > 0 and flight[1] == 0 and flight,
            10,
            "the slow upstream to finish",
        )
        ledger = check(sent, sc.upstream.message_ids())
        print("ledger:", ledger)  # shown with -s / on failure
        metrics = await sc.gateway.metrics()
    assert ledger.problems == (), ledger
    assert ledger.accepted == 0
    assert ledger.tempfailed >= 10
    assert got_dots >= ledger.tempfailed  # each timed-out 4xx came after a dot upstream
    ambiguous = f'mxgate_ambiguous_outcomes_total{{reason="timeout"}} {ledger.tempfailed}.0'
    assert ambiguous in metrics


async def test_dead_first_upstream_fails_over_and_its_breaker_opens(tmp_path: Path) -> None:
    """With the first upstream dead every message still gets 250 via the second, and
    after a few failures the dead one is skipped instead of retried per message."""
    async with scenario(tmp_path, dead_upstreams_first=1) as sc:
        sent = await Load("127.0.0.1", sc.smtp_port, total=40, concurrency=4).run()
        ledger = check(sent, sc.upstream.message_ids())
        print("ledger:", ledger)  # shown with -s / on failure
        metrics = await sc.gateway.metrics()
    assert ledger.problems == (), ledger
    assert ledger.accepted == 40
    dead = yaml.safe_load(sc.config_path.read_text())["upstreams"][0]["address"]
    assert f'mxgate_upstream_breaker_open_total{{upstream="{dead}"}} 1.0' in metrics
