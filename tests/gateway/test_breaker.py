"""The upstream circuit breaker: a dead upstream is skipped for a short, growing cooldown."""

from __future__ import annotations

from mxgate_gateway.relay.breaker import (
    BreakerBank,
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    failover_order,
)


class Clock:
    """A hand-moved clock: tests advance time instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = BreakerSettings(threshold=3, cooldown=2.0, max_cooldown=8.0)


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    """Two failures keep it closed; the third opens it and attempts are refused."""
    breaker = CircuitBreaker(Clock(), SETTINGS)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_failure_count() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker = CircuitBreaker(Clock(), SETTINGS)
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_after_cooldown_exactly_one_probe_goes_through() -> None:
    """Half-open admits one probe; concurrent attempts are still refused."""
    clock = Clock()
    breaker = CircuitBreaker(clock, SETTINGS)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 2.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_failed_probes_double_the_cooldown_up_to_the_cap() -> None:
    """Each failed probe doubles the wait (2, 4, 8, 8 s) so a dead upstream costs little."""
    clock = Clock()
    breaker = CircuitBreaker(clock, SETTINGS)
    for _ in range(3):
        breaker.record_failure()
    waits = []
    for _ in range(4):
        wait = 0.0
        while not breaker.allow():
            clock.now += 0.5
            wait += 0.5
        waits.append(wait)
        breaker.record_failure()
    assert waits == [2.0, 4.0, 8.0, 8.0]


def test_a_vanished_probe_does_not_wedge_the_breaker() -> None:
    """If the probe's owner never reports (cancelled), another probe is allowed later."""
    clock = Clock()
    breaker = CircuitBreaker(clock, SETTINGS)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 2.0
    assert breaker.allow()
    clock.now += 8.5
    assert breaker.allow()


def test_failover_skips_open_breakers_and_keeps_configured_order() -> None:
    """Upstreams are tried in order; one with an open breaker is skipped, not retried."""
    opened: list[str] = []
    bank = BreakerBank(Clock(), SETTINGS, on_open=opened.append)
    for _ in range(5):
        bank["a:25"].record_failure()
    assert opened == ["a:25"]  # announced once, not per failure
    assert list(failover_order(["a:25", "b:25", "c:25"], str, bank)) == ["b:25", "c:25"]
    assert bank.states() == {
        "a:25": BreakerState.OPEN,
        "b:25": BreakerState.CLOSED,
        "c:25": BreakerState.CLOSED,
    }


def test_failover_takes_a_probe_slot_only_when_the_caller_gets_there() -> None:
    """The order is lazy: stopping at the first upstream leaves the next one's probe free."""
    clock = Clock()
    bank = BreakerBank(clock, SETTINGS)
    for _ in range(3):
        bank["b:25"].record_failure()
    clock.now += 2.0
    order = failover_order(["a:25", "b:25"], str, bank)
    assert next(order) == "a:25"
    assert bank["b:25"].allow()  # nobody took b's probe


def test_all_upstreams_dead_means_nothing_to_try() -> None:
    """With every breaker open the order is empty: answer 4xx at once."""
    bank = BreakerBank(Clock(), SETTINGS)
    for key in ("a:25", "b:25"):
        for _ in range(3):
            bank[key].record_failure()
    assert list(failover_order(["a:25", "b:25"], str, bank)) == []
