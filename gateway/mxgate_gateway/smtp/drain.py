"""Graceful drain: track live SMTP sessions; on shutdown close the idle, let the busy finish.

``SessionTracker.drain`` sends ``421 4.3.2`` to every session not inside a mail
transaction (now, and as each busy one finishes its transaction), waits for the rest
up to a deadline, then aborts what is left. It must not stop the listener, touch
readiness, or close upstream connections: the composition root orders those steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

REPLY_SHUTTING_DOWN: Final = "421 4.3.2 Service shutting down, try again later"


class DrainableSession(Protocol):
    """What the tracker needs from a session (the server's protocol object)."""

    def in_transaction(self) -> bool:
        """True from an accepted MAIL until the transaction ends (final reply, RSET)."""
        ...

    def close_idle(self, reply: str) -> None:
        """Send ``reply`` after anything already queued, then close gracefully."""
        ...

    def abort(self) -> None:
        """Drop the connection now (the deadline passed)."""
        ...


@dataclass(frozen=True, slots=True)
class DrainReport:
    """How a drain went; logged once at shutdown."""

    closed_idle: int
    finished: int  # sessions that were busy at the start of the drain and ended in time
    aborted: int
    seconds: float


class SessionTracker:
    """The set of live sessions, and the drain switch the handler consults."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions: set[DrainableSession] = set()
        self._told: set[DrainableSession] = set()
        self._draining = False
        self._clock = clock
        self._empty = asyncio.Event()
        self._empty.set()

    @property
    def draining(self) -> bool:
        """True once drain began: the handler must refuse a new MAIL with 421 4.3.2."""
        return self._draining

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: DrainableSession) -> None:
        self._sessions.add(session)
        self._empty.clear()
        if self._draining:  # accepted just before the listener closed
            self._tell(session)

    def discard(self, session: DrainableSession) -> None:
        self._sessions.discard(session)
        self._told.discard(session)
        if not self._sessions:
            self._empty.set()

    def transaction_ended(self, session: DrainableSession) -> None:
        """Call when a transaction ends: while draining, that session is now idle and
        is told to go. Deferred one loop turn so the transaction's own final reply,
        written in the same step, goes out first."""
        if self._draining:
            asyncio.get_running_loop().call_soon(self._tell_if_live, session)

    def _tell_if_live(self, session: DrainableSession) -> None:
        if session in self._sessions:
            self._tell(session)

    def _tell(self, session: DrainableSession) -> None:
        if session not in self._told and not session.in_transaction():
            self._told.add(session)
            session.close_idle(REPLY_SHUTTING_DOWN)

    async def drain(self, deadline: float, poll: float = 0.05) -> DrainReport:
        """Close idle sessions now; wait up to ``deadline`` seconds for busy ones."""
        started = self._clock()
        self._draining = True
        busy_at_start = {s for s in self._sessions if s.in_transaction()}
        for session in list(self._sessions):
            self._tell(session)
        closed_idle = len(self._told)
        stop_at = started + deadline
        # Poll as a safety net: a session can leave its transaction without the
        # handler noticing (client RSET, timeout), and then must still be told.
        while self._sessions and self._clock() < stop_at:
            try:
                await asyncio.wait_for(self._empty.wait(), min(poll, stop_at - self._clock()))
            except TimeoutError:
                for session in list(self._sessions):
                    self._tell(session)
        leftovers = list(self._sessions)
        for session in leftovers:
            session.abort()
        if leftovers:
            # Give connection_lost a moment to run so the counts settle.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), 1.0)
        finished = len(busy_at_start - set(leftovers))
        return DrainReport(closed_idle, finished, len(leftovers), self._clock() - started)
