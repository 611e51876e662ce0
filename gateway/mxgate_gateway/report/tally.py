"""One period's loss-report counts (since start, or one minute of the window), mergeable.

Counters are keyed only by bounded values (TLS label, upstream verdict, rule id
and mode); plaintext sender domains and client networks go into bounded
sketches. This module must not read clocks, do I/O, or see message contents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from mxgate_gateway.report.distinct import Distinct
from mxgate_gateway.report.document import (
    ACTIONS,
    VERDICTS,
    Counterfactual,
    Period,
    ReportFormatError,
    RuleRow,
    TopEntry,
    Verdicts,
)
from mxgate_gateway.report.topk import CAPACITY, TopK

TLS_ORDER = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "other", "none")
__all__ = ["ACTIONS", "TLS_ORDER", "VERDICTS", "ReportFormatError", "Sketch", "Tally"]


@dataclass
class Sketch:
    """Distinct count plus top list for one dimension (sender domains, client networks)."""

    distinct: Distinct = field(default_factory=Distinct)
    top: TopK = field(default_factory=TopK)

    def add(self, name: str) -> None:
        self.distinct.add(name)
        self.top.add(name)

    def merge(self, other: Sketch) -> None:
        self.distinct.merge(other.distinct)
        self.top.merge(other.top)

    def to_json(self) -> dict[str, object]:
        return {"distinct": self.distinct.to_json(), "top": self.top.to_json()}

    @classmethod
    def from_json(cls, data: object) -> Sketch:
        if not isinstance(data, dict):
            raise ValueError("sketch: expected an object")
        return cls(Distinct.from_json(data.get("distinct")), TopK.from_json(data.get("top")))


@dataclass
class Tally:
    """Counts for one period. ``plaintext`` sketches see only messages sent without TLS."""

    sessions: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    recipients: Counter[str] = field(default_factory=Counter)
    upstream: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tls, verdict)
    rules: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (rule, mode, action)
    senders: Sketch = field(default_factory=Sketch)
    networks: Sketch = field(default_factory=Sketch)

    @classmethod
    def empty(cls, top_capacity: int = CAPACITY) -> Tally:
        return cls(senders=Sketch(top=TopK(top_capacity)), networks=Sketch(top=TopK(top_capacity)))

    def merge(self, other: Tally) -> None:
        """Add ``other`` into this tally: counters add, sketches merge exactly."""
        self.sessions.update(other.sessions)
        self.messages.update(other.messages)
        self.recipients.update(other.recipients)
        self.upstream.update(other.upstream)
        self.rules.update(other.rules)
        self.senders.merge(other.senders)
        self.networks.merge(other.networks)

    # -- the document's period ---------------------------------------------------

    def to_period(self, top_shown: int) -> Period:
        """The period as the document shows it: readable numbers, then sketch state."""
        plain = self.messages["none"]
        total = sum(self.messages.values())
        return Period(
            sessions=_by_tls(self.sessions),
            messages=_by_tls(self.messages),
            recipients=_by_tls(self.recipients),
            upstream={
                tls: Verdicts(*(self.upstream[(tls, v)] for v in VERDICTS))
                for tls in _tls_keys({t for t, _ in self.upstream})
            },
            rules=tuple(
                RuleRow(rule, mode, *(self.rules[(rule, mode, a)] for a in ACTIONS))
                for rule, mode in sorted({(r, m) for r, m, _ in self.rules})
            ),
            if_starttls_required=Counterfactual(
                refused_messages=plain,
                of_messages=total,
                percent=round(100.0 * plain / total, 1) if total else 0.0,
                sender_domains=self.senders.distinct.estimate(),
                client_networks=self.networks.distinct.estimate(),
                sender_domains_exact=self.senders.distinct.is_exact,
                client_networks_exact=self.networks.distinct.is_exact,
                upstream=Verdicts(*(self.upstream[("none", v)] for v in VERDICTS)),
            ),
            top_plaintext_sender_domains=_top(self.senders.top, top_shown),
            top_plaintext_client_networks=_top(self.networks.top, top_shown),
            sketches={"senders": self.senders.to_json(), "networks": self.networks.to_json()},
        )

    @classmethod
    def from_period(cls, period: Period) -> Tally:
        """Rebuild a tally from a document's period; ReportFormatError if its sketches are bad."""
        out = cls(
            sessions=_nonzero(period.sessions),
            messages=_nonzero(period.messages),
            recipients=_nonzero(period.recipients),
        )
        for tls, verdicts in period.upstream.items():
            for verdict, n in verdicts.to_json().items():
                if n:
                    out.upstream[(tls, verdict)] += n
        for row in period.rules:
            for action, n in zip(ACTIONS, (row.accept, row.refuse, row.would_refuse), strict=True):
                if n:
                    out.rules[(row.rule, row.mode, action)] += n
        try:
            out.senders = Sketch.from_json(period.sketches.get("senders"))
            out.networks = Sketch.from_json(period.sketches.get("networks"))
        except (ValueError, TypeError) as exc:
            raise ReportFormatError(f"not a loss report period: sketches: {exc}") from None
        return out


def _tls_keys(keys: set[str]) -> list[str]:
    known = [k for k in TLS_ORDER if k in keys]
    return known + sorted(keys - set(TLS_ORDER))


def _by_tls(counter: Counter[str]) -> dict[str, int]:
    return {k: counter[k] for k in _tls_keys(set(counter) | {"TLSv1.3", "TLSv1.2", "none"})}


def _top(top: TopK, n: int) -> tuple[TopEntry, ...]:
    return tuple(TopEntry(e.name, e.count, e.error) for e in top.top(n))


def _nonzero(counts: Mapping[str, int]) -> Counter[str]:
    return Counter({k: n for k, n in counts.items() if n})
