"""Per-upstream signals: what each relay attempt tells the metrics and the log.

Turns the relay's attempt results into ``mxgate_upstream_*{upstream}`` samples
and one ``upstream_connect_failed`` warning per failed connection, at most one
line per upstream per ``interval`` (the next line says how many it suppressed).
It must not decide routing or touch the network; label values are the
configured addresses only (``GatewayMetrics`` drops anything else).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mxgate_gateway.logs import get_logger
from mxgate_gateway.metrics import GatewayMetrics
from mxgate_gateway.relay.outcome import Failure

log = get_logger("mxgate.relay")

LOG_INTERVAL = 10.0  # seconds between two connect-failure lines for one upstream


class LogLimiter:
    """Per-key rate limit: ``allow`` says whether to log now and how many were
    suppressed since the last line. Pure state over a clock passed in."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None: stay quiet (counted); else log now, with this many suppressed before."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)

    def forget(self, keep: frozenset[str]) -> None:
        """Drop the state of keys no longer configured (bounded by the config)."""
        for key in set(self._last) - keep:
            self._last.pop(key, None)
            self._suppressed.pop(key, None)


class UpstreamSignals:
    """The handler's listener for relay attempts, breaker openings and latencies."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.limiter = LogLimiter(interval, clock)

    def configured(self, addresses: frozenset[str]) -> None:
        """The config names these upstreams (at start and after each reload)."""
        self.metrics.track_upstreams(addresses)
        self.limiter.forget(addresses)

    def attempt(self, step: str, upstream: str, failure: Failure) -> None:
        """One connection attempt (``connect``) or a MAIL FROM it broke on (``mail``)."""
        if step == "connect":
            self.metrics.upstream_connected(upstream, failure is Failure.NONE)
        if failure is Failure.NONE:
            return
        self.metrics.upstream_failed(failure.value, upstream)
        if step != "connect" or not self.metrics.tracks(upstream):
            return
        suppressed = self.limiter.allow(upstream)
        if suppressed is not None:
            log.warning(
                "upstream_connect_failed",
                upstream=upstream,
                kind=failure.value,
                suppressed=suppressed,
            )

    def failed(self, upstream: str, failure: Failure) -> None:
        """A later step (the final dot) ended without a usable reply."""
        if failure is not Failure.NONE:
            self.metrics.upstream_failed(failure.value, upstream)

    def breaker_opened(self, upstream: str) -> None:
        self.metrics.upstream_breaker_opened(upstream)
        log.warning("upstream_breaker_opened", upstream=upstream)
