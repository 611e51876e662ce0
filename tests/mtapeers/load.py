"""A bounded SMTP load: N messages from C concurrent clients, every outcome recorded.

Each message carries a unique ``X-Test-Id``; its outcome is the final reply code the
client saw, or None when the connection dropped before any final reply. Messages are
never retried (a retry would blur the count). Bounded by count and by a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import aiosmtplib


@dataclass(frozen=True, slots=True)
class Sent:
    test_id: str
    code: int | None  # final reply code, or None: dropped before any final reply


def message(test_id: str, rcpt: str, sender: str = "load@sender.test") -> bytes:
    return (
        f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: load {test_id}\r\n"
        f"Message-ID: <{test_id}@sender.test>\r\nX-Test-Id: {test_id}\r\n\r\n"
        f"fault test body line 1\r\nline 2 {test_id}\r\n"
    ).encode()


@dataclass
class Load:
    """Drive ``total`` messages through ``host:port`` from ``concurrency`` clients."""

    host: str
    port: int
    total: int = 500
    concurrency: int = 20
    rcpt: str = "user@accepted.test"
    deadline: float = 60.0
    timeout: float = 20.0
    source_address: Callable[[int], str] | None = None  # client index → local IP
    pause: float = 0.0  # between messages on one connection (spreads a load in time)
    sent: list[Sent] = field(default_factory=list)
    progress: Counter[str] = field(default_factory=Counter)

    async def run(self) -> list[Sent]:
        ids = iter(f"m{n:05d}" for n in range(self.total))
        stop_at = time.monotonic() + self.deadline
        async with asyncio.TaskGroup() as tg:
            for index in range(self.concurrency):
                tg.create_task(self._client(index, ids, stop_at))
        return self.sent

    async def _client(self, index: int, ids: Iterator[str], stop_at: float) -> None:
        smtp: aiosmtplib.SMTP | None = None
        source = None if self.source_address is None else (self.source_address(index), 0)
        for test_id in ids:
            if time.monotonic() > stop_at:
                self._record(test_id, None)
                continue
            try:
                if smtp is None:
                    smtp = aiosmtplib.SMTP(
                        hostname=self.host,
                        port=self.port,
                        timeout=self.timeout,
                        start_tls=False,
                        source_address=source,
                    )
                    await smtp.connect()
                await smtp.sendmail("load@sender.test", [self.rcpt], message(test_id, self.rcpt))
                self._record(test_id, 250)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._record(test_id, exc.recipients[0].code)
                await _drop(smtp)
                smtp = None
            except aiosmtplib.SMTPResponseException as exc:
                self._record(test_id, exc.code)
                await _drop(smtp)
                smtp = None
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self._record(test_id, None)
                await _drop(smtp)
                smtp = None
            if self.pause:
                await asyncio.sleep(self.pause)
        await _drop(smtp, quit_=True)

    def _record(self, test_id: str, code: int | None) -> None:
        self.sent.append(Sent(test_id, code))
        self.progress["dropped" if code is None else str(code)[0] + "xx"] += 1


async def _drop(smtp: aiosmtplib.SMTP | None, quit_: bool = False) -> None:
    if smtp is None:
        return
    try:
        if quit_ and smtp.is_connected:
            await smtp.quit(timeout=5)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    smtp.close()


@dataclass(frozen=True)
class Ledger:
    """Every message's fate: what the clients saw against what the upstream holds."""

    accepted: int
    tempfailed: int
    dropped: int
    unacked_but_delivered: int  # allowed: the sender retries; SMTP is at-least-once
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"accepted={self.accepted} tempfailed={self.tempfailed} dropped={self.dropped}"
            f" unacked_but_delivered={self.unacked_but_delivered} problems={self.problems[:5]}"
        )


def check(sent: list[Sent], delivered_ids: list[str]) -> Ledger:
    """Every 250 is at the upstream exactly once; everything else was 4xx or dropped;
    the upstream holds nothing nobody sent and nothing twice."""
    at_upstream = Counter(delivered_ids)
    problems: list[str] = []
    known = {s.test_id for s in sent}
    for s in sent:
        n = at_upstream[s.test_id]
        if s.code == 250 and n != 1:
            problems.append(f"{s.test_id}: got 250, upstream has it {n} times")
        elif s.code is not None and s.code != 250 and not 400 <= s.code < 500:
            problems.append(f"{s.test_id}: got {s.code} (only 250, 4xx or a drop are allowed)")
        elif n > 1:
            problems.append(f"{s.test_id}: upstream has it {n} times")
    problems += [f"{i}: at upstream but never sent" for i in at_upstream if i not in known]
    if len(known) != len(sent):
        problems.append("a test id was recorded twice by the load generator")
    return Ledger(
        accepted=sum(s.code == 250 for s in sent),
        tempfailed=sum(s.code is not None and 400 <= s.code < 500 for s in sent),
        dropped=sum(s.code is None for s in sent),
        unacked_but_delivered=sum(s.code != 250 and at_upstream[s.test_id] > 0 for s in sent),
        problems=tuple(problems),
    )
