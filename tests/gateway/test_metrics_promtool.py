"""A running gateway's /metrics passes `promtool check metrics` (Prometheus's own linter:
naming, units, HELP text, counter suffixes), after real traffic has filled in its labels.
promtool comes from Debian's `prometheus` package (scripts/install-system-deps.sh).
"""

from __future__ import annotations

import shutil
import subprocess

import aiohttp

from eventually import eventually_async
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway


async def _metrics(gw: Gateway) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{gw.http_port}/metrics") as resp,
    ):
        assert resp.status == 200
        return await resp.text()


async def test_metrics_after_a_relayed_message_pass_promtool_check(gateway: Gateway) -> None:
    """One relayed plaintext message, then promtool finds nothing to say about /metrics."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    assert (await client.cmd("MAIL FROM:<s@plain.example>")).code == 250
    assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
    await client.cmd("DATA")
    assert (await client.cmd("Subject: promtool\r\n\r\nx\r\n.")).code == 250
    await client.cmd("QUIT")
    await client.close()

    async def session_counted() -> str | None:  # once it has ended
        text = await _metrics(gateway)
        return text if 'mxgate_sessions_total{tls="none"} 1.0' in text else None

    text = await eventually_async(session_counted, 5, "the session to be counted")
    (upstream,) = (u.address for u in gateway.config.upstreams)
    assert (
        f'mxgate_upstream_latency_seconds_count{{phase="data",upstream="{upstream}"}} 1.0' in text
    )
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run scripts/install-system-deps.sh (Debian prometheus)"
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
