"""Bounded top list: Space-Saving counters (Metwally et al.) with an exact merge rule.

At most ``capacity`` names are tracked. Each tracked name has an upper-bound
``count`` and the ``error`` it may overstate by; every untracked name sent at
most ``floor``. While fewer than ``capacity`` names were seen, counts are exact.
Merging two summaries keeps those guarantees (Cafaro et al., parallel
Space-Saving). This module must not know what it counts or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

CAPACITY = 100


@dataclass(frozen=True)
class Entry:
    name: str
    count: int
    error: int

    @property
    def guaranteed(self) -> int:
        """A lower bound on the true count."""
        return self.count - self.error


class TopK:
    """Space-Saving summary: ``add`` is O(1) for tracked names, O(capacity) on eviction."""

    __slots__ = ("_counts", "capacity", "floor")

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.floor = 0
        self._counts: dict[str, tuple[int, int]] = {}

    def add(self, name: str, n: int = 1) -> None:
        counts = self._counts
        if name in counts:
            count, error = counts[name]
            counts[name] = (count + n, error)
            return
        if len(counts) >= self.capacity:
            victim = min(counts, key=lambda k: (counts[k][0], k))
            self.floor = max(self.floor, counts.pop(victim)[0])
        counts[name] = (self.floor + n, self.floor)

    def merge(self, other: TopK) -> None:
        """Fold ``other`` in: counts add; a name missing on one side adds that side's floor."""
        capacity = min(self.capacity, other.capacity)
        merged: dict[str, tuple[int, int]] = {}
        for name in self._counts.keys() | other._counts.keys():
            c1, e1 = self._counts.get(name, (self.floor, self.floor))
            c2, e2 = other._counts.get(name, (other.floor, other.floor))
            merged[name] = (c1 + c2, e1 + e2)
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1][0], kv[0]))
        floor = self.floor + other.floor
        for _, (count, _) in ranked[capacity:]:
            floor = max(floor, count)
        self.capacity, self.floor = capacity, floor
        self._counts = dict(ranked[:capacity])

    def __len__(self) -> int:
        return len(self._counts)

    def estimate(self, name: str) -> int:
        """Upper bound on ``name``'s count (``floor`` when untracked)."""
        return self._counts.get(name, (self.floor, 0))[0]

    def top(self, n: int | None = None) -> list[Entry]:
        """Tracked names, largest count first (ties by name), at most ``n``."""
        ranked = sorted(self._counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [Entry(k, c, e) for k, (c, e) in ranked[:n]]

    # -- JSON state ----------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "capacity": self.capacity,
            "floor": self.floor,
            "counters": [[e.name, e.count, e.error] for e in self.top()],
        }

    @classmethod
    def from_json(cls, data: object) -> TopK:
        """Rebuild from ``to_json`` output; raise ValueError when it is malformed."""
        if not isinstance(data, dict):
            raise ValueError("top: expected an object")
        capacity, floor, counters = data.get("capacity"), data.get("floor"), data.get("counters")
        if not (_is_count(capacity) and _is_count(floor) and isinstance(counters, list)):
            raise ValueError("top: expected capacity, floor and counters")
        out = cls(max(capacity, 1))
        out.floor = floor
        for row in counters:
            if not (
                isinstance(row, list)
                and len(row) == 3
                and isinstance(row[0], str)
                and _is_count(row[1])
                and _is_count(row[2])
                and row[2] <= row[1]
            ):
                raise ValueError("top.counters: expected [name, count, error] rows")
            out._counts[row[0]] = (row[1], row[2])
        if len(out._counts) > out.capacity:
            raise ValueError("top.counters: more rows than capacity")
        return out


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
