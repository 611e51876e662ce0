"""What a log says happened: sessions and transactions, as plain values.

The parsers emit these after correlating lines (by process id, queue id); the
estimator counts them. This module must not parse lines or count anything.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar


class Verdict(Enum):
    """How the MTA that wrote the log judged a message at the end of DATA."""

    ACCEPTED = "accepted"  # queued (2xx)
    REJECTED = "rejected"  # refused permanently (5xx)
    UNKNOWN = "unknown"  # refused temporarily (4xx), or no final word in the log


@dataclass(frozen=True)
class SessionSeen:
    """One SMTP session, ended; ``tls_version`` as Python names it (``TLSv1.3``) or None."""

    client_ip: str
    tls_version: str | None


@dataclass(frozen=True)
class TransactionSeen:
    """One MAIL transaction of a session.

    ``sender`` is the reverse-path address (``""`` for the null sender ``<>``), or
    None when the log does not say. ``recipients`` are accepted recipient
    addresses the log names; ``recipient_count`` the number accepted (the log may
    count without naming). ``refused`` are recipients the MTA refused, with
    ``relay`` True for a relay refusal. ``verdict`` is None when the transaction
    never reached the end of DATA (every recipient refused, or abandoned).
    """

    client_ip: str
    tls_version: str | None
    sender: str | None
    recipients: tuple[str, ...] = ()
    recipient_count: int = 0
    refused: tuple[tuple[str, bool], ...] = ()
    verdict: Verdict | None = None


Fact = SessionSeen | TransactionSeen

K = TypeVar("K")
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """A map of open state (sessions by pid, messages by queue id) with a size cap.

    When full, the oldest entry is evicted and returned, so a log whose closing
    lines are missing (truncated, interleaved) cannot grow memory without bound.
    """

    __slots__ = ("_items", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """Store ``value``; return the evicted oldest entry when over the cap."""
        self._items[key] = value
        if len(self._items) > self.limit:
            return self._items.popitem(last=False)
        return None

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def drain(self) -> list[tuple[K, V]]:
        """Every open entry, oldest first; the map is empty afterwards."""
        items = list(self._items.items())
        self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class ParseStats:
    """What a parser read: lines, lines it did not understand, and facts it could not tie.

    ``unattributed`` counts, by kind, lines that named a session or message the
    log never opened or closed (truncated or interleaved logs).
    """

    lines: int = 0
    unparsed: int = 0
    unattributed: Counter[str] = field(default_factory=Counter)
    first_seen: str | None = None
    last_seen: str | None = None

    def saw_time(self, stamp: str | None) -> None:
        if stamp is None:
            return
        if self.first_seen is None or stamp < self.first_seen:
            self.first_seen = stamp
        if self.last_seen is None or stamp > self.last_seen:
            self.last_seen = stamp
