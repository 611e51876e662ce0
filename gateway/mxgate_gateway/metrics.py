"""Prometheus metrics for one gateway, on its own ``CollectorRegistry``.

Owns metric names (prefix ``mxgate_``) and their bounded label values. It
must not use the global registry (tests run several gateways per process)
and must never label by raw domain, address or IP. The one exception is the
``upstream`` label: the configured upstream address, bounded by the config
(``track_upstreams`` creates the series of configured upstreams and removes
the rest; values for any other address are dropped).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from mxgate_gateway import __version__
from mxgate_gateway.negotiated import NegotiatedTLS

# Label values present from the start (what the server can negotiate, and plaintext).
TLS_LABELS = (NegotiatedTLS.NONE.value, NegotiatedTLS.TLS1_2.value, NegotiatedTLS.TLS1_3.value)
# Why a 4xx after the relayed dot: the upstream said 4xx, or no usable reply (Failure).
AMBIGUOUS_REASONS = ("upstream_4xx", "timeout", "disconnected", "protocol", "tls")
# Per-upstream series created for every configured upstream (relay.outcome.Failure values).
UPSTREAM_PHASES = ("connect", "data")
UPSTREAM_FAILURE_KINDS = ("connect", "tls", "timeout", "disconnected", "protocol")


class GatewayMetrics:
    """Every metric the gateway exports. One instance per running gateway."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide: no *_created
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Gauge("mxgate_build_info", "Build information.", ["version"], registry=r)
        self.build_info.labels(__version__).set(1)
        self.connections = Gauge(
            "mxgate_connections", "SMTP connections currently open.", registry=r
        )
        self.sessions = Counter(
            "mxgate_sessions_total",
            "Finished SMTP sessions by the TLS version they ended with.",
            ["tls"],
            registry=r,
        )
        self.messages = Counter(
            "mxgate_messages_total",
            "Messages by outcome (relayed, rejected, tempfailed) and TLS state.",
            ["outcome", "tls"],
            registry=r,
        )
        self.recipients = Counter(
            "mxgate_recipients_total",
            "RCPT commands by outcome.",
            ["outcome"],
            registry=r,
        )
        self.starttls_failures = Counter(
            "mxgate_starttls_failures_total",
            "STARTTLS handshakes that failed or timed out.",
            ["reason"],
            registry=r,
        )
        self.protocol_errors = Counter(
            "mxgate_smtp_protocol_errors_total",
            "Client protocol violations refused (smuggling, limits, syntax).",
            ["kind"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "mxgate_upstream_latency_seconds",
            "Time spent waiting for the upstream, by phase (connect, data) and upstream.",
            ["phase", "upstream"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.upstream_failures = Counter(
            "mxgate_upstream_failures_total",
            "Upstream steps that ended without a usable reply, by kind and configured upstream"
            " (connect failures that failover hid included).",
            ["kind", "upstream"],
            registry=r,
        )
        self.policy_decisions = Counter(
            "mxgate_policy_decisions_total",
            "Policy decisions by rule id, mode and action.",
            ["rule", "mode", "action"],
            registry=r,
        )
        self.config_generation = Gauge(
            "mxgate_config_generation", "Config snapshots installed so far.", registry=r
        )
        self.config_reloads = Counter(
            "mxgate_config_reload_total",
            "Reloads of the watched config/policy files (and TLS pair) by result.",
            ["result"],
            registry=r,
        )
        self.policy_file_refused = Gauge(
            "mxgate_policy_file_refused",
            "1 while the operator's policy file is refused (serving without it, or the last"
            " good one); 0 when it loaded.",
            registry=r,
        )
        self.tls_not_after = Gauge(
            "mxgate_tls_certificate_not_after_seconds",
            "Expiry (unix time) of the certificate served for STARTTLS.",
            registry=r,
        )
        self.connections_refused = Counter(
            "mxgate_connections_refused_total",
            "Connections closed before the greeting (limits, PROXY header problems).",
            ["reason"],
            registry=r,
        )
        self.breaker_opened = Counter(
            "mxgate_upstream_breaker_open_total",
            "Times an upstream's circuit breaker opened, by configured upstream.",
            ["upstream"],
            registry=r,
        )
        self.upstream_up = Gauge(
            "mxgate_upstream_up",
            "1 if the last connection attempt (connect, EHLO, required STARTTLS) to this"
            " configured upstream succeeded or none was made yet; 0 if it failed (also while"
            " its breaker is open).",
            ["upstream"],
            registry=r,
        )
        self._upstreams: frozenset[str] = frozenset()
        self.ambiguous_outcomes = Counter(
            "mxgate_ambiguous_outcomes_total",
            "4xx answers given after the final dot was relayed (the upstream may have stored"
            " the message; the sender's retry may duplicate it), by reason.",
            ["reason"],
            registry=r,
        )
        self.unhandled_errors = Counter(
            "mxgate_unhandled_errors_total",
            "Exceptions caught by the catch-all (answered 451 4.3.0).",
            registry=r,
        )
        for result in ("success", "failure"):
            self.config_reloads.labels(result)
        for reason in AMBIGUOUS_REASONS:
            self.ambiguous_outcomes.labels(reason)
        for label in TLS_LABELS:
            self.sessions.labels(label)
        for outcome in ("relayed", "rejected", "tempfailed"):
            for label in TLS_LABELS:
                self.messages.labels(outcome, label)

    def track_upstreams(self, addresses: Iterable[str]) -> None:
        """Label values for exactly the configured upstreams: new ones start up with zero
        failures (so an outage shows as a rate, not a missing series), removed ones go."""
        wanted = frozenset(addresses)
        for gone in self._upstreams - wanted:
            for phase in UPSTREAM_PHASES:
                self.upstream_latency.remove(phase, gone)
            for kind in UPSTREAM_FAILURE_KINDS:
                self.upstream_failures.remove(kind, gone)
            self.breaker_opened.remove(gone)
            self.upstream_up.remove(gone)
        for new in wanted - self._upstreams:
            for phase in UPSTREAM_PHASES:
                self.upstream_latency.labels(phase, new)
            for kind in UPSTREAM_FAILURE_KINDS:
                self.upstream_failures.labels(kind, new)
            self.breaker_opened.labels(new)
            self.upstream_up.labels(new).set(1)
        self._upstreams = wanted

    def tracks(self, upstream: str) -> bool:
        """Is ``upstream`` a configured upstream (a permitted label value)?"""
        return upstream in self._upstreams

    def observe_upstream(self, phase: str, upstream: str, seconds: float) -> None:
        if self.tracks(upstream):
            self.upstream_latency.labels(phase, upstream).observe(seconds)

    def upstream_failed(self, kind: str, upstream: str) -> None:
        if self.tracks(upstream):
            self.upstream_failures.labels(kind, upstream).inc()

    def upstream_connected(self, upstream: str, ok: bool) -> None:
        if self.tracks(upstream):
            self.upstream_up.labels(upstream).set(1 if ok else 0)

    def upstream_breaker_opened(self, upstream: str) -> None:
        if self.tracks(upstream):
            self.breaker_opened.labels(upstream).inc()

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
