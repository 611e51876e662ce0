"""One period's loss-report counts (since start, or one minute of the window), mergeable.

Counters are keyed only by bounded values (TLS label, upstream verdict, rule id
and mode); plaintext sender domains and client networks go into bounded
sketches. This module must not read clocks, do I/O, or see message contents.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mxgate_gateway.errors import MxgateError
from mxgate_gateway.report.distinct import Distinct
from mxgate_gateway.report.topk import CAPACITY, TopK

TLS_ORDER = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "other", "none")
VERDICTS = ("accepted", "rejected", "unknown")
ACTIONS = ("accept", "refuse", "would_refuse")


class ReportFormatError(MxgateError, ValueError):
    """A /report body that is not a loss report this version can merge."""


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

    # -- JSON ------------------------------------------------------------------

    def to_json(self, top_shown: int) -> dict[str, Any]:
        """The period as JSON: readable numbers first, mergeable sketch state last."""
        plain = self.messages["none"]
        total = sum(self.messages.values())
        return {
            "sessions": _by_tls(self.sessions),
            "messages": _by_tls(self.messages),
            "recipients": _by_tls(self.recipients),
            "upstream": {
                tls: {v: self.upstream[(tls, v)] for v in VERDICTS}
                for tls in _tls_keys({t for t, _ in self.upstream})
            },
            "rules": [
                {"rule": rule, "mode": mode, **{a: self.rules[(rule, mode, a)] for a in ACTIONS}}
                for rule, mode in sorted({(r, m) for r, m, _ in self.rules})
            ],
            "if_starttls_required": {
                "refused_messages": plain,
                "of_messages": total,
                "percent": round(100.0 * plain / total, 1) if total else 0.0,
                "sender_domains": self.senders.distinct.estimate(),
                "client_networks": self.networks.distinct.estimate(),
                "exact": self.senders.distinct.is_exact and self.networks.distinct.is_exact,
                "sender_domains_exact": self.senders.distinct.is_exact,
                "client_networks_exact": self.networks.distinct.is_exact,
                "upstream": {v: self.upstream[("none", v)] for v in VERDICTS},
            },
            "top_plaintext_sender_domains": _top(self.senders.top, top_shown),
            "top_plaintext_client_networks": _top(self.networks.top, top_shown),
            "sketches": {"senders": self.senders.to_json(), "networks": self.networks.to_json()},
        }

    @classmethod
    def from_json(cls, data: object) -> Tally:
        """Rebuild a tally from ``to_json`` output; raise ReportFormatError if malformed."""
        try:
            if not isinstance(data, dict):
                raise ValueError("expected an object")
            out = cls(
                sessions=_counts(data.get("sessions")),
                messages=_counts(data.get("messages")),
                recipients=_counts(data.get("recipients")),
            )
            upstream = data.get("upstream")
            if not isinstance(upstream, dict):
                raise ValueError("upstream: expected an object")
            for tls, verdicts in upstream.items():
                for verdict, n in _counts(verdicts).items():
                    out.upstream[(tls, verdict)] += n
            rules = data.get("rules")
            if not isinstance(rules, list):
                raise ValueError("rules: expected a list")
            for row in rules:
                if not isinstance(row, dict):
                    raise ValueError("rules: expected objects")
                rule, mode = row.get("rule"), row.get("mode")
                if not (isinstance(rule, str) and isinstance(mode, str)):
                    raise ValueError("rules: expected rule and mode names")
                counts = _counts({a: row.get(a, 0) for a in ACTIONS})
                for action, n in counts.items():
                    out.rules[(rule, mode, action)] += n
            sketches = data.get("sketches")
            if not isinstance(sketches, dict):
                raise ValueError("sketches: expected an object")
            out.senders = Sketch.from_json(sketches.get("senders"))
            out.networks = Sketch.from_json(sketches.get("networks"))
        except (ValueError, TypeError) as exc:
            raise ReportFormatError(f"not a loss report period: {exc}") from None
        return out


def _tls_keys(keys: set[str]) -> list[str]:
    known = [k for k in TLS_ORDER if k in keys]
    return known + sorted(keys - set(TLS_ORDER))


def _by_tls(counter: Counter[str]) -> dict[str, int]:
    return {k: counter[k] for k in _tls_keys(set(counter) | {"TLSv1.3", "TLSv1.2", "none"})}


def _top(top: TopK, n: int) -> list[dict[str, object]]:
    return [{"name": e.name, "messages": e.count, "error": e.error} for e in top.top(n)]


def _counts(data: object) -> Counter[str]:
    if not isinstance(data, dict):
        raise ValueError("expected an object of counts")
    out: Counter[str] = Counter()
    for key, n in data.items():
        if not isinstance(key, str) or isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"bad count {key!r}: {n!r}")
        if n:
            out[key] = n
    return out
