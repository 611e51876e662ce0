"""Drain: idle sessions get 421 4.3.2 at once, busy ones finish, stragglers are aborted."""

from __future__ import annotations

import asyncio

from eventually import eventually_async
from mxgate_gateway.smtp.drain import REPLY_SHUTTING_DOWN, SessionTracker


class FakeSession:
    """A fake session (the real ones are exercised in tests/e2e/test_faults_drain.py)."""

    def __init__(self, tracker: SessionTracker, busy: bool = False) -> None:
        self.tracker = tracker
        self.busy = busy
        self.replies: list[str] = []
        self.aborted = False
        self.looked_at = 0  # how often the tracker asked: the drain's progress, seen from here
        tracker.add(self)

    def in_transaction(self) -> bool:
        self.looked_at += 1
        return self.busy

    def close_idle(self, reply: str) -> None:
        self.replies.append(reply)
        asyncio.get_running_loop().call_soon(self.tracker.discard, self)

    def abort(self) -> None:
        self.aborted = True
        asyncio.get_running_loop().call_soon(self.tracker.discard, self)

    def finish_transaction(self) -> None:
        self.busy = False
        self.tracker.transaction_ended(self)


async def test_idle_sessions_are_told_421_432_immediately() -> None:
    """Every idle session gets exactly one 421 4.3.2 and the drain ends at once."""
    tracker = SessionTracker()
    sessions = [FakeSession(tracker) for _ in range(3)]
    report = await tracker.drain(deadline=5)
    assert [s.replies for s in sessions] == [[REPLY_SHUTTING_DOWN]] * 3
    assert REPLY_SHUTTING_DOWN.startswith("421 4.3.2 ")
    assert (report.closed_idle, report.finished, report.aborted) == (3, 0, 0)
    assert len(tracker) == 0


async def test_busy_session_finishes_then_is_told_behind_its_reply() -> None:
    """A session mid-transaction is left alone until its transaction ends, then told."""
    tracker = SessionTracker()
    busy = FakeSession(tracker, busy=True)
    drain = asyncio.create_task(tracker.drain(deadline=5))
    # Past its first pass (2 looks) and one safety-net poll (1): it looked and left it alone.
    await eventually_async(lambda: busy.looked_at >= 3, 2, "the drain to poll the session")
    assert busy.replies == []
    assert tracker.draining
    busy.finish_transaction()
    assert busy.replies == []  # its own final reply goes out first
    report = await drain
    assert busy.replies == [REPLY_SHUTTING_DOWN]
    assert (report.finished, report.aborted) == (1, 0)


async def test_session_that_leaves_its_transaction_silently_is_still_told() -> None:
    """Without a transaction_ended call (client RSET), the poll catches the idle session."""
    tracker = SessionTracker()
    busy = FakeSession(tracker, busy=True)
    drain = asyncio.create_task(tracker.drain(deadline=5, poll=0.01))
    await eventually_async(lambda: busy.looked_at >= 2, 2, "the drain's first pass")
    busy.busy = False  # only a later poll can notice
    report = await drain
    assert busy.replies == [REPLY_SHUTTING_DOWN]
    assert report.aborted == 0


async def test_sessions_still_busy_at_the_deadline_are_aborted() -> None:
    """The deadline is hard: a transaction that does not finish is dropped, never 250'd."""
    tracker = SessionTracker()
    stuck = FakeSession(tracker, busy=True)
    report = await tracker.drain(deadline=0.05, poll=0.01)
    assert stuck.aborted
    assert stuck.replies == []
    assert (report.finished, report.aborted) == (0, 1)


async def test_connection_accepted_during_drain_is_told_at_once() -> None:
    """A connection that slipped in before the listener closed is sent away too."""
    tracker = SessionTracker()
    busy = FakeSession(tracker, busy=True)
    drain = asyncio.create_task(tracker.drain(deadline=5, poll=0.01))
    await eventually_async(lambda: tracker.draining, 2, "the drain to begin")
    late = FakeSession(tracker)
    assert late.replies == [REPLY_SHUTTING_DOWN]
    busy.finish_transaction()
    await drain
