"""The upstream label is bounded by the config, and connect-failure lines are rate-limited.

Pure parts of the per-upstream signals (the real gateway with a dead upstream is in
tests/e2e/test_upstream_signals.py): which label values may exist, what a reload
does to them, and how often a failing upstream is logged.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mxgate_gateway.metrics import GatewayMetrics
from mxgate_gateway.relay.outcome import Failure
from mxgate_gateway.smtp.upstream_signals import LogLimiter, UpstreamSignals


def _upstream_values(metrics: GatewayMetrics) -> set[str]:
    text = metrics.exposition().decode()
    return {
        s.labels["upstream"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "upstream" in s.labels
    }


def test_series_exist_for_configured_upstreams_from_the_start_and_up() -> None:
    metrics = GatewayMetrics()
    UpstreamSignals(metrics).configured(frozenset({"mx1.internal:25", "mx2.internal:25"}))
    text = metrics.exposition().decode()
    assert _upstream_values(metrics) == {"mx1.internal:25", "mx2.internal:25"}
    assert 'mxgate_upstream_up{upstream="mx1.internal:25"} 1.0' in text
    assert 'mxgate_upstream_failures_total{kind="connect",upstream="mx2.internal:25"} 0.0' in text
    assert 'mxgate_upstream_breaker_open_total{upstream="mx1.internal:25"} 0.0' in text


def test_label_values_never_exceed_the_configured_upstreams() -> None:
    """Addresses not in the config (e.g. a transaction of the previous generation) are
    dropped, and a reload removes the series of upstreams it no longer names."""
    metrics = GatewayMetrics()
    signals = UpstreamSignals(metrics)
    signals.configured(frozenset({"a:25", "b:25"}))
    for i in range(50):
        signals.attempt("connect", f"stray{i}:25", Failure.CONNECT)
        metrics.observe_upstream("data", f"stray{i}:25", 0.1)
        signals.breaker_opened(f"stray{i}:25")
    signals.attempt("connect", "a:25", Failure.CONNECT)
    assert _upstream_values(metrics) == {"a:25", "b:25"}
    signals.configured(frozenset({"b:25", "c:25"}))
    assert _upstream_values(metrics) == {"b:25", "c:25"}
    text = metrics.exposition().decode()
    assert 'mxgate_upstream_up{upstream="c:25"} 1.0' in text


def test_up_follows_the_last_connection_attempt() -> None:
    metrics = GatewayMetrics()
    signals = UpstreamSignals(metrics)
    signals.configured(frozenset({"a:25"}))
    signals.attempt("connect", "a:25", Failure.TIMEOUT)
    assert 'mxgate_upstream_up{upstream="a:25"} 0.0' in metrics.exposition().decode()
    signals.attempt("mail", "a:25", Failure.DISCONNECTED)  # counted, but not a connect
    text = metrics.exposition().decode()
    assert 'mxgate_upstream_up{upstream="a:25"} 0.0' in text
    assert 'mxgate_upstream_failures_total{kind="timeout",upstream="a:25"} 1.0' in text
    assert 'mxgate_upstream_failures_total{kind="disconnected",upstream="a:25"} 1.0' in text
    signals.attempt("connect", "a:25", Failure.NONE)
    assert 'mxgate_upstream_up{upstream="a:25"} 1.0' in metrics.exposition().decode()


def test_connect_failure_lines_are_limited_per_upstream_and_count_the_suppressed() -> None:
    now = [0.0]
    limiter = LogLimiter(10.0, lambda: now[0])
    assert limiter.allow("a:25") == 0  # the first failure is always logged
    assert limiter.allow("b:25") == 0  # another upstream has its own budget
    now[0] = 3.0
    assert limiter.allow("a:25") is None
    assert limiter.allow("a:25") is None
    now[0] = 10.0
    assert limiter.allow("a:25") == 2  # the next line says how many were left out
    assert limiter.allow("a:25") is None
    limiter.forget(frozenset({"b:25"}))
    assert limiter.allow("a:25") == 0  # unconfigured upstreams keep no state
