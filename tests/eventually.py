"""The suite's one way to wait for something: poll a check until it holds, bounded in time.

``eventually`` (blocking) and ``eventually_async`` (awaits between polls; the check may
be a coroutine function) call ``check`` every ``interval`` seconds until it returns a
truthy value, and return that value. After ``timeout`` seconds they fail with
``AssertionError`` naming ``what`` and the last value the check returned, or the last
exception it raised when that exception is one the caller said to ``ignore`` (a server
still starting). ``what`` may be a function, called only on failure (a log tail). Any
other exception propagates at once (a child that exited is final).

This is for convergence (a peer starting, a metric landing, a ConfigMap propagating),
never for performance: how long a wait took is not a result. Tests that assert something
did *not* happen wait for a later positive event with this, then assert the absence.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Ignored = tuple[type[BaseException], ...]
What = str | Callable[[], str]


class _Last:
    """The last thing a check returned or raised, for the failure message."""

    def __init__(self) -> None:
        self.value: object = None
        self.error: BaseException | None = None
        self.polls = 0

    def fail(self, what: What, check: object, timeout: float) -> AssertionError:
        what = what() if callable(what) else what or getattr(check, "__name__", "a check")
        seen = (
            f"last error: {self.error!r}"
            if self.error is not None
            else f"last value: {_short(self.value)}"
        )
        error = AssertionError(f"not within {timeout:g} s ({self.polls} polls): {what}; {seen}")
        error.__cause__ = self.error
        return error


def _short(value: object, limit: int = 500) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def eventually(
    check: Callable[[], T],
    timeout: float = 10.0,
    what: What = "",
    *,
    interval: float = 0.1,
    ignore: Ignored = (),
) -> T:
    """Call ``check`` until it returns a truthy value; return it (blocking)."""
    deadline = time.monotonic() + timeout
    last = _Last()
    while True:
        last.polls += 1
        try:
            value = check()
        except ignore as exc:
            last.error = exc
        else:
            if value:
                return value
            last.value, last.error = value, None
        if time.monotonic() >= deadline:
            raise last.fail(what, check, timeout)
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    what: What = "",
    *,
    interval: float = 0.05,
    ignore: Ignored = (),
) -> T:
    """Call (and await) ``check`` until it returns a truthy value; return it."""
    deadline = time.monotonic() + timeout
    last = _Last()
    while True:
        last.polls += 1
        try:
            result = check()
            value: T = await result if inspect.isawaitable(result) else result  # type: ignore[assignment]
        except ignore as exc:
            last.error = exc
        else:
            if value:
                return value
            last.value, last.error = value, None
        if time.monotonic() >= deadline:
            raise last.fail(what, check, timeout)
        await asyncio.sleep(interval)
