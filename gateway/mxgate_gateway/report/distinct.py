"""Bounded distinct counting: exact below a small limit, HyperLogLog above it.

Memory never grows with the number of distinct names: at most ``exact_limit``
names, then ``2**precision`` one-byte registers. Merging is exact: the merge of
two estimators equals the estimator of the union of their inputs, state for
state. This module must not know what it counts (domains, networks) or do I/O.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable

EXACT_LIMIT = 128
PRECISION = 12  # 4096 registers, standard error 1.04/sqrt(4096) ≈ 1.6 %


def hash64(name: str) -> int:
    """A stable 64-bit hash (the same in every process, unlike ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


class Distinct:
    """Counts distinct names in bounded memory; mergeable by union / register max."""

    __slots__ = ("_exact", "_registers", "exact_limit", "precision")

    def __init__(self, *, exact_limit: int = EXACT_LIMIT, precision: int = PRECISION) -> None:
        if not 4 <= precision <= 16 or exact_limit < 0:
            raise ValueError("precision must be 4..16 and exact_limit >= 0")
        self.exact_limit = exact_limit
        self.precision = precision
        self._exact: set[str] | None = set()
        self._registers: bytearray | None = None

    # -- updates -----------------------------------------------------------

    def add(self, name: str) -> None:
        if self._exact is not None:
            self._exact.add(name)
            if len(self._exact) > self.exact_limit:
                self._to_registers()
            return
        self._add_hash(hash64(name))

    def _add_hash(self, h: int) -> None:
        assert self._registers is not None
        width = 64 - self.precision
        index = h >> width
        rest = h & ((1 << width) - 1)
        rank = width - rest.bit_length() + 1
        self._registers[index] = max(self._registers[index], rank)

    def _to_registers(self) -> None:
        names = self._exact or set()
        self._exact = None
        self._registers = bytearray(1 << self.precision)
        for name in names:
            self._add_hash(hash64(name))

    def merge(self, other: Distinct) -> None:
        """Fold ``other`` into this estimator (exact union, or register-wise max)."""
        if (other.exact_limit, other.precision) != (self.exact_limit, self.precision):
            raise ValueError("cannot merge estimators with different parameters")
        if self._exact is not None and other._exact is not None:
            self._exact |= other._exact
            if len(self._exact) > self.exact_limit:
                self._to_registers()
            return
        if self._exact is not None:
            self._to_registers()
        assert self._registers is not None
        if other._exact is not None:
            for name in other._exact:
                self._add_hash(hash64(name))
            return
        assert other._registers is not None
        mine, theirs = self._registers, other._registers
        self._registers = bytearray(max(a, b) for a, b in zip(mine, theirs, strict=True))

    # -- reading -----------------------------------------------------------

    @property
    def is_exact(self) -> bool:
        return self._exact is not None

    def footprint(self) -> int:
        """Stored items: names while exact, registers after (the memory bound)."""
        if self._exact is not None:
            return len(self._exact)
        assert self._registers is not None
        return len(self._registers)

    def estimate(self) -> int:
        if self._exact is not None:
            return len(self._exact)
        assert self._registers is not None
        m = len(self._registers)
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / sum(2.0**-r for r in self._registers)
        zeros = self._registers.count(0)
        if raw <= 2.5 * m and zeros:
            return round(m * math.log(m / zeros))  # linear counting for small ranges
        return round(raw)

    # -- JSON state ----------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        if self._exact is not None:
            return {"exact": sorted(self._exact)}
        assert self._registers is not None
        return {
            "precision": self.precision,
            "registers": base64.b64encode(bytes(self._registers)).decode(),
        }

    @classmethod
    def from_json(
        cls, data: object, *, exact_limit: int = EXACT_LIMIT, precision: int = PRECISION
    ) -> Distinct:
        """Rebuild from ``to_json`` output; raise ValueError when it is malformed."""
        out = cls(exact_limit=exact_limit, precision=precision)
        if not isinstance(data, dict):
            raise ValueError("distinct: expected an object")
        if "exact" in data:
            names = data["exact"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError("distinct.exact: expected a list of names")
            out._merge_names(names)
            return out
        if data.get("precision") != precision or not isinstance(data.get("registers"), str):
            raise ValueError(f"distinct: expected precision {precision} and registers")
        raw = base64.b64decode(data["registers"], validate=True)
        if len(raw) != 1 << precision or max(raw, default=0) > 65 - precision:
            raise ValueError("distinct.registers: wrong length or out-of-range rank")
        out._exact, out._registers = None, bytearray(raw)
        return out

    def _merge_names(self, names: Iterable[str]) -> None:
        for name in names:
            self.add(name)
