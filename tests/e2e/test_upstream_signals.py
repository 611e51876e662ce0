"""Per-upstream signals: with one of two upstreams down, the metrics name it.

A real gateway process relays to two configured upstreams: the first a closed port
(nobody listens), the second the suite's recording sink. Mail flows via failover,
and ``/metrics`` still shows the dead one: its connect failures (hidden from every
client by the failover), ``mxgate_upstream_up`` 0, its breaker opening; the live
one has no failures and is up. Label values are exactly the configured addresses.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from eventually import eventually_async
from mtapeers.load import Load, check
from mtapeers.ports import free_port
from mtapeers.scenario import scenario

pytestmark = [pytest.mark.slow]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_a_dead_upstream_shows_failures_and_down_while_mail_flows(tmp_path: Path) -> None:
    async with scenario(tmp_path, dead_upstreams_first=1) as sc:
        dead, live = (u["address"] for u in yaml.safe_load(sc.config_path.read_text())["upstreams"])
        sent = await Load("127.0.0.1", sc.smtp_port, total=12, concurrency=1).run()
        ledger = check(sent, sc.upstream.message_ids())
        text = await sc.gateway.metrics()
        lines = [
            json.loads(line)
            for line in sc.gateway.log.read_text().splitlines()
            if line.startswith("{")
        ]
    assert ledger.problems == (), ledger
    assert ledger.accepted == 12, "mail must flow via the second upstream"
    samples = _samples(text)
    dead_connect = _value(samples, "mxgate_upstream_failures_total", kind="connect", upstream=dead)
    assert dead_connect >= 3, "connect failures that failover hid are counted"
    assert _value(samples, "mxgate_upstream_up", upstream=dead) == 0
    assert _value(samples, "mxgate_upstream_up", upstream=live) == 1
    assert _value(samples, "mxgate_upstream_breaker_open_total", upstream=dead) == 1
    assert _value(samples, "mxgate_upstream_breaker_open_total", upstream=live) == 0
    for kind in ("connect", "tls", "timeout", "disconnected", "protocol"):
        assert _value(samples, "mxgate_upstream_failures_total", kind=kind, upstream=live) == 0
    assert (
        _value(samples, "mxgate_upstream_latency_seconds_count", phase="data", upstream=live) == 12
    )
    assert (
        _value(samples, "mxgate_upstream_latency_seconds_count", phase="data", upstream=dead) == 0
    )
    # One warning per failed connect, rate-limited per upstream (here: within one interval).
    failed = [e for e in lines if e.get("event") == "upstream_connect_failed"]
    assert failed, "a failed upstream connect is logged"
    assert {e["upstream"] for e in failed} == {dead}
    assert 1 <= len(failed) < dead_connect
    assert (failed[0]["kind"], failed[0]["suppressed"]) == ("connect", 0)
    # Cardinality: the upstream label takes exactly the configured addresses.
    seen = {dict(labels).get("upstream") for (_, labels) in samples} - {None}
    assert seen == {dead, live}


DASHBOARD = Path(__file__).resolve().parents[2] / "helm/mxgate/files/dashboards/mxgate.json"
PROMETHEUS = shutil.which("prometheus")


def _upstream_panel_queries() -> dict[str, list[str]]:
    """Panel title → its queries, for the panels of the dashboard's upstream row, with
    Grafana's variables replaced as a 1 s scrape interval needs."""
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    start = next(i for i, p in enumerate(panels) if p["type"] == "row" and "Upstream" in p["title"])
    out: dict[str, list[str]] = {}
    for panel in panels[start + 1 :]:
        if panel["type"] == "row":
            break
        if "mxgate_upstream_" not in json.dumps(panel["targets"]):
            continue  # the row also shows messages and connections
        out[panel["title"]] = [
            t["expr"].replace("$namespace", ".*").replace("$__rate_interval", "30s")
            for t in panel["targets"]
        ]
    return out


class Prometheus:
    """A real Prometheus server scraping one target every second (a child process)."""

    def __init__(self, tmp: Path, target: str) -> None:
        self.port = free_port()
        self.tmp = tmp
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "mxgate", "static_configs": [{"targets": [target]}]}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Prometheus:
        assert PROMETHEUS is not None
        with (self.tmp / "prometheus.log").open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                PROMETHEUS,
                f"--config.file={self.tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(url, params={"query": expr}) as resp,
        ):
            body = await resp.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    async def until(self, expr: str, within: float = 30.0) -> list[dict[str, Any]]:
        """The first non-empty result of ``expr`` (Prometheus starting, scrapes landing)."""
        return await eventually_async(
            lambda: self.query(expr),
            within,
            f"a result for {expr}",
            interval=0.3,
            ignore=(aiohttp.ClientError, OSError),
        )


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus: scripts/install-system-deps.sh")
async def test_the_dashboards_upstream_panels_have_data_during_an_outage(tmp_path: Path) -> None:
    """A real Prometheus scrapes the gateway while its first upstream is down: every query
    of the upstream row returns series, naming the dead upstream (up 0, failures > 0)."""
    async with scenario(tmp_path, dead_upstreams_first=1) as sc:
        dead, live = (u["address"] for u in yaml.safe_load(sc.config_path.read_text())["upstreams"])
        async with Prometheus(tmp_path, f"127.0.0.1:{sc.gateway.http_port}") as prom:
            # two scrapes before the outage hits traffic, so rates have a baseline
            assert await prom.until("count_over_time(mxgate_upstream_up[1m]) >= 2"), "no scrape"
            sent = await Load("127.0.0.1", sc.smtp_port, total=12, concurrency=1).run()
            assert check(sent, sc.upstream.message_ids()).accepted == 12
            connect = f'mxgate_upstream_failures_total{{kind="connect",upstream="{dead}"}}'
            assert await prom.until(f"{connect} >= 3"), "the failures were not scraped"
            panels = {
                title: [await prom.query(expr) for expr in exprs]
                for title, exprs in _upstream_panel_queries().items()
            }
    assert len(panels) == 4
    for title, results in panels.items():
        for result in results:
            assert result, f"panel {title!r} is empty during the outage"
            assert {r["metric"]["upstream"] for r in result} == {dead, live}, title
    (up,) = panels["Upstream up"]
    assert {r["metric"]["upstream"]: r["value"][1] for r in up} == {dead: "0", live: "1"}
    (failures,) = panels["Upstream failures by upstream and kind"]
    rates = {(r["metric"]["upstream"], r["metric"]["kind"]): float(r["value"][1]) for r in failures}
    assert rates[(dead, "connect")] > 0
    assert all(v == 0 for (u, _), v in rates.items() if u == live)
