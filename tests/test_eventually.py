"""The one polling helper: returns the first truthy value, fails naming what it last saw."""

from __future__ import annotations

import itertools

import pytest

from eventually import eventually, eventually_async


def test_returns_the_first_truthy_value() -> None:
    values = iter([None, 0, [], "ready"])
    assert eventually(lambda: next(values), 5, "a value", interval=0) == "ready"


def test_a_timeout_names_what_was_awaited_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"the queue to drain; last value: \[\]"):
        eventually(list, 0.05, "the queue to drain")
    with pytest.raises(AssertionError, match=r"last value: 0"):
        eventually(lambda: 0, 0.05, "zero")
    with pytest.raises(AssertionError, match=r"the log said: bind failed; last value: None"):
        eventually(lambda: None, 0.05, lambda: "the log said: bind failed")


def test_ignored_errors_are_retried_and_reported_others_propagate() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("nobody listens")

    with pytest.raises(AssertionError, match="last error: ConnectionRefusedError") as caught:
        eventually(refused, 0.05, "a listener", ignore=(OSError,))
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    with pytest.raises(ConnectionRefusedError):
        eventually(refused, 5, "a listener")  # not ignored: at once, not after 5 s


async def test_the_async_form_awaits_coroutine_checks() -> None:
    polls = itertools.count(1)

    async def third_time() -> int | None:
        n = next(polls)
        return n if n >= 3 else None

    assert await eventually_async(third_time, 5, "the third poll", interval=0) == 3
    with pytest.raises(AssertionError, match="never; last value: False"):
        await eventually_async(lambda: False, 0.05, "never")
