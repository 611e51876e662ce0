"""The Grafana dashboard shipped in the chart queries metrics the gateway really exports, with
labels those metrics really have, and reaches Grafana through the sidecar's label.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from mxgate_gateway.metrics import GatewayMetrics
from mxgate_gateway.mtasts.metrics import TLSRPTRecorder

DASHBOARD = Path(__file__).resolve().parents[2] / "helm/mxgate/files/dashboards/mxgate.json"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def _exported() -> dict[str, set[str]]:
    """Sample name → label names, for every metric a gateway registers."""
    registry = CollectorRegistry()
    GatewayMetrics(registry)
    TLSRPTRecorder(registry)
    out: dict[str, set[str]] = {}
    for family in registry.collect():
        labels = {label for sample in family.samples for label in sample.labels}
        collector = registry._names_to_collectors.get(family.name)
        labels |= set(getattr(collector, "_labelnames", ()))
        for suffix in SUFFIXES.get(family.type, ("",)):
            out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_every_queried_metric_is_exported_by_the_gateway() -> None:
    """Each mxgate_* name in a panel query is a sample name the gateway exports."""
    exported = _exported()
    used = {name for expr in _exprs() for name in re.findall(r"\bmxgate_[a-z0-9_]+", expr)}
    assert used, "the dashboard queries no mxgate metric"
    assert used - set(exported) == set()


def test_every_grouping_and_matcher_label_exists_on_its_metric() -> None:
    """`sum by (x)` and `{x="..."}` use labels the metric has (namespace comes from the scrape)."""
    exported = _exported()
    checked = 0
    for expr in _exprs():
        for by, metric in re.findall(r"by \(([^)]*)\) \(\w+\((mxgate_\w+)", expr):
            assert {b.strip() for b in by.split(",")} <= exported[metric], expr
            checked += 1
        for metric, matchers in re.findall(r"(mxgate_\w+)\{([^}]*)\}", expr):
            names = set(re.findall(r"(\w+)\s*[!=]~?", matchers)) - {"namespace"}
            assert names <= exported[metric], expr
            checked += 1
    assert checked > 10


def test_dashboard_answers_the_operators_questions() -> None:
    """TLS share, refusals and would-refusals per rule, upstream latency and errors are shown."""
    exprs = "\n".join(_exprs())
    assert 'tls!="none"' in exprs
    assert 'action="refuse"' in exprs
    assert 'action="would_refuse"' in exprs
    assert "mxgate_upstream_latency_seconds_bucket" in exprs
    assert "mxgate_upstream_failures_total" in exprs


def test_upstream_panels_split_by_upstream_and_show_up() -> None:
    """Latency, failures and breaker openings per configured upstream, and whether it is up
    (that the panels have data during an outage: tests/e2e/test_upstream_signals.py)."""
    upstream_exprs = [e for e in _exprs() if "mxgate_upstream_" in e]
    names = {re.search(r"mxgate_upstream_\w+", e).group(0) for e in upstream_exprs}  # type: ignore[union-attr]
    assert names == {
        "mxgate_upstream_latency_seconds_bucket",
        "mxgate_upstream_failures_total",
        "mxgate_upstream_up",
        "mxgate_upstream_breaker_open_total",
    }
    for expr in upstream_exprs:
        assert re.search(r"by \([^)]*\bupstream\b", expr), expr


def test_dashboard_configmap_carries_the_sidecar_label_and_the_json(render) -> None:
    """The ConfigMap has grafana_dashboard: "1" and the dashboard JSON byte for byte."""
    cm = render().get("ConfigMap", "-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["mxgate.json"]) == json.loads(DASHBOARD.read_text("utf-8"))
