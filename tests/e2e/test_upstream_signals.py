"""Per-upstream signals: with one of two upstreams down, the metrics name it.

A real gateway process relays to two configured upstreams: the first a closed port
(nobody listens), the second the suite's recording sink. Mail flows via failover,
and ``/metrics`` still shows the dead one: its connect failures (hidden from every
client by the failover), ``mxgate_upstream_up`` 0, its breaker opening; the live
one has no failures and is up. Label values are exactly the configured addresses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from faultkit.load import Load, check
from faultkit.scenario import scenario

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
