"""A short circuit breaker per upstream, and the failover order it implies.

After ``threshold`` consecutive connection failures an upstream is skipped for a
cooldown (doubling per failed probe, capped); then one probe is let through.
Pure state over a clock passed in: it must not do I/O, sleep, or log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

DEFAULT_THRESHOLD: Final = 3
DEFAULT_COOLDOWN: Final = 2.0
DEFAULT_MAX_COOLDOWN: Final = 30.0

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"  # traffic flows
    OPEN = "open"  # skipped until the cooldown ends
    HALF_OPEN = "half_open"  # one probe in flight decides


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    threshold: int = DEFAULT_THRESHOLD
    cooldown: float = DEFAULT_COOLDOWN
    max_cooldown: float = DEFAULT_MAX_COOLDOWN


class CircuitBreaker:
    """Breaker for one upstream. Only connection-level failures (refused, connect
    timeout, dropped mid-session, TLS failure) should be recorded as failures; an
    upstream that answers 4xx/5xx is alive."""

    def __init__(
        self,
        clock: Callable[[], float],
        settings: BreakerSettings | None = None,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self._clock = clock
        self._settings = settings or BreakerSettings()
        self._on_open = on_open
        self._failures = 0
        self._opened_at: float | None = None
        self._cooldown = self._settings.cooldown
        self._probing = False
        self._probe_started = 0.0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        now = self._clock()
        if self._probing and now - self._probe_started > self._settings.max_cooldown:
            self._probing = False  # the probe's owner vanished (cancelled); allow another
        if self._probing or now - self._opened_at >= self._cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a new attempt go to this upstream now? In half-open, only one may."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            self._probe_started = self._clock()
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False
        self._cooldown = self._settings.cooldown

    def record_failure(self) -> None:
        now = self._clock()
        if self._opened_at is not None:
            if self._probing:  # the probe failed: stay open, longer
                self._probing = False
                self._cooldown = min(self._cooldown * 2, self._settings.max_cooldown)
                self._opened_at = now
                self._opened()
            return
        self._failures += 1
        if self._failures >= self._settings.threshold:
            self._opened_at = now
            self._opened()

    def _opened(self) -> None:
        if self._on_open is not None:
            self._on_open()


class BreakerBank:
    """One breaker per upstream key (e.g. ``host:port``), created on first use.

    ``on_open(key)`` hears every (re)opening, e.g. to log it and count a metric.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        settings: BreakerSettings | None = None,
        on_open: Callable[[str], None] | None = None,
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._on_open = on_open
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, key: str) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            hook = None if self._on_open is None else (lambda: self._notify(key))
            breaker = self._breakers[key] = CircuitBreaker(self._clock, self._settings, hook)
        return breaker

    def _notify(self, key: str) -> None:
        if self._on_open is not None:
            self._on_open(key)

    def states(self) -> dict[str, BreakerState]:
        return {key: b.state for key, b in sorted(self._breakers.items())}


def failover_order(
    upstreams: Sequence[T], key: Callable[[T], str], bank: BreakerBank
) -> Iterator[T]:
    """The upstreams to try, lazily, in configured order, skipping open breakers.

    Lazy so that a half-open probe slot is taken only when the caller really moves
    on to that upstream; the caller records success or failure for each one it gets.
    Nothing yielded means: all are known dead right now; answer 4xx without trying.
    """
    for upstream in upstreams:
        if bank[key(upstream)].allow():
            yield upstream
