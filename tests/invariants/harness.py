"""The invariant suite's instruments: a ledger, a resource baseline, a bystander.

- ``Ledger``: every message a client sent, with a unique mark, and whether it got 250;
  ``check`` proves conservation against the upstream (250 = exactly one copy, anything
  else = none).
- ``Baseline``: the gateway's connections gauge, this process's open descriptors and
  RSS before an attack; ``back_to`` waits until they return (RSS within a margin).
- ``ProcessBaseline``: the same for a gateway in its own process (``mxgate gateway``).
- ``Bystander``: an honest client that connects again and again during an attack and
  records how long each greeting took.
- ``all_of``: runs an attack's clients at once, bounded as a whole.
Each attack is bounded in count and time, and so is every wait here: a stuck one
fails naming what it waited for, never hangs. Nothing here sleeps to pass a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from eventually import eventually_async
from mtapeers.observe import metric, settled
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

RSS_MARGIN = 48 * 1024 * 1024  # allocator slack after an attack, not a leak
GREETING_LIMIT = 1.0  # seconds: the bystander invariant, for 95% of greetings...
GREETING_CEILING = 2.5  # ...and for every one (a shared CI runner can stall any process)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Baseline:
    fds: int
    rss: int

    @classmethod
    async def take(cls, gateway: Gateway) -> Baseline:
        await settled(gateway)
        await _empty_pool(gateway)
        return cls(open_fds(), rss())

    async def back_to(self, gateway: Gateway, timeout: float = 15.0) -> None:
        """Connections gauge 0, descriptors at (or below) baseline, RSS within the margin.

        Idle upstream sessions kept for reuse hold descriptors by design: the pool is
        emptied (QUIT) first, so only what nothing owns any more would remain.
        """
        await settled(gateway, timeout)
        await _empty_pool(gateway)
        await eventually_async(
            lambda: open_fds() <= self.fds, timeout, f"fds back to {self.fds} (now {open_fds()})"
        )
        assert rss() <= self.rss + RSS_MARGIN, (rss(), self.rss)
        assert metric(gateway, "mxgate_connections") == 0


async def _empty_pool(gateway: Gateway, timeout: float = 15.0) -> None:
    if gateway.handler.pool is not None:
        try:
            async with asyncio.timeout(timeout):
                await gateway.handler.pool.close()
        except TimeoutError:
            raise AssertionError(f"the upstream pool did not close within {timeout}s") from None


@dataclass
class Sent:
    mark: str
    code: int | None  # the reply to the final dot; None if the client never got one


@dataclass
class Ledger:
    sent: list[Sent] = field(default_factory=list)

    def new_mark(self) -> str:
        return f"inv-{uuid.uuid4().hex}"

    def record(self, mark: str, code: int | None) -> None:
        self.sent.append(Sent(mark, code))

    async def check(self, copies: Callable[[str], int], settle: float = 1.0) -> None:
        """Conservation: every 250 is exactly one copy upstream; no 250, no copy."""
        accepted = [s for s in self.sent if s.code == 250]

        def missing() -> list[str]:
            return [s.mark for s in accepted if not copies(s.mark)]

        await eventually_async(
            lambda: not missing(), 20, lambda: f"every 250 upstream (missing {missing()[:5]})"
        )
        await asyncio.sleep(settle)  # a duplicate, or a copy of a refused message, shows now
        wrong = {s.mark: (s.code, copies(s.mark)) for s in self.sent}
        wrong = {m: v for m, v in wrong.items() if v[1] != (1 if v[0] == 250 else 0)}
        assert not wrong, wrong


@dataclass
class Bystander:
    """Greets the gateway every ``every`` seconds; ``worst`` is the slowest greeting.

    It stops on a flag, between probes, never by cancellation: a cancellation can be
    lost (Python 3.11's ``wait_for`` swallows one that arrives as its read completes,
    CPython gh-86296), and the bystander would then probe for ever while the test
    waits for it. Each probe is bounded (``RawClient``), so the stop is too.
    """

    port: int
    every: float = 0.1
    greetings: list[float] = field(default_factory=list)
    stop_within: float = 30.0  # one probe's worst case: connect, greeting, QUIT, close

    @property
    def worst(self) -> float:
        return max(self.greetings, default=0.0)

    @property
    def p95(self) -> float:
        ordered = sorted(self.greetings)
        return ordered[int(0.95 * (len(ordered) - 1))] if ordered else 0.0

    async def _probe(self) -> None:
        started = time.monotonic()
        client = await RawClient.connect(self.port)
        try:
            banner = await client.reply(timeout=10)
            assert banner.code == 220, banner
            self.greetings.append(time.monotonic() - started)
            await client.cmd("QUIT")
        finally:
            await client.close()

    async def _run(self, stop: asyncio.Event) -> None:
        while True:  # at least one probe, however short the attack
            await self._probe()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every):
                    await stop.wait()
            if stop.is_set():
                return

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Bystander]:
        stop = asyncio.Event()
        task = asyncio.create_task(self._run(stop), name="bystander")
        try:
            yield self
        finally:
            stop.set()
            done, _ = await asyncio.wait({task}, timeout=self.stop_within)
            if not done:
                task.cancel()
                raise AssertionError(
                    f"the bystander did not stop within {self.stop_within}s: {task!r}"
                )
        task.result()  # a probe that failed (refused, closed, timed out) fails the test
        assert self.greetings, "the bystander was never greeted"
        assert self.p95 < GREETING_LIMIT, f"bystander p95 {self.p95:.2f}s {self.greetings}"
        assert self.worst < GREETING_CEILING, f"bystander waited {self.worst:.2f}s"


async def all_of(within: float, named: Mapping[str, Awaitable[None]]) -> None:
    """Run the named attacks (and clients) at once; each is bounded on its own, and this
    is the backstop: after ``within`` seconds fail naming those still running. A failing
    one cancels the rest (a TaskGroup), so none outlives the test."""
    tasks: dict[str, asyncio.Task[None]] = {}
    try:
        async with asyncio.timeout(within), asyncio.TaskGroup() as group:
            for name, step in named.items():
                tasks[name] = group.create_task(_awaited(step), name=name)
    except TimeoutError:
        running = sorted(name for name, task in tasks.items() if task.cancelled())
        raise AssertionError(f"still running after {within}s: {running}") from None


async def _awaited(step: Awaitable[None]) -> None:
    await step


async def send_message(
    port: int, ledger: Ledger, body: bytes = b"body\r\n", rcpt: str = "alice@accepted.test"
) -> None:
    """One honest message; the final reply (or None if the connection died) is recorded."""
    mark = ledger.new_mark()
    code: int | None = None
    client = await RawClient.connect(port)
    try:
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        rcpt_ok = (await client.cmd(f"RCPT TO:<{rcpt}>")).code == 250
        if rcpt_ok and (await client.cmd("DATA")).code == 354:
            message = b"Subject: " + mark.encode() + b"\r\n\r\n" + body + b"."
            code = (await client.cmd(message, timeout=30)).code
        await client.send(b"QUIT\r\n")
    except (ConnectionError, TimeoutError):
        pass
    finally:
        ledger.record(mark, code)
        await client.close()


def process_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def process_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class ProcessBaseline:
    """``Baseline`` for a gateway in its own process: its descriptors, RSS and gauge.

    ``gauge`` reads ``mxgate_connections`` from the process's /metrics. Idle upstream
    sessions close by themselves (the pool's idle timeout), so the wait covers that.
    """

    pid: int
    fds: int
    rss: int

    @classmethod
    async def take(cls, pid: int, gauge: Callable[[], Awaitable[float]]) -> ProcessBaseline:
        await _gauge_zero(gauge, 10.0)
        return cls(pid, process_fds(pid), process_rss(pid))

    async def back_to(self, gauge: Callable[[], Awaitable[float]], timeout: float = 15.0) -> None:
        await _gauge_zero(gauge, timeout)
        await eventually_async(
            lambda: process_fds(self.pid) <= self.fds,
            timeout,
            f"gateway fds back to {self.fds} (now {process_fds(self.pid)})",
        )
        assert process_rss(self.pid) <= self.rss + RSS_MARGIN, (process_rss(self.pid), self.rss)


async def _gauge_zero(gauge: Callable[[], Awaitable[float]], timeout: float) -> None:
    async def zero() -> bool:
        return await gauge() == 0

    await eventually_async(zero, timeout, "mxgate_connections back to 0", interval=0.1)
