"""Per-source quota for TLS-RPT intake: reports and sessions one source may add per interval.

Anyone can POST a report, so without a cap one client inflates every counter (issue
12.11). A fixed window per source key, in a table bounded by ``max_sources``: when it
is full and nothing has expired, unknown sources share one overflow entry (they are
capped together, never uncapped). Pure state with an injected clock; no I/O, no logs.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["OVERFLOW", "SourceQuota", "source_of"]

OVERFLOW = "(overflow)"


@dataclass(slots=True)
class _Window:
    start: float
    reports: int = 0
    sessions: int = 0


class SourceQuota:
    """``admit(source, sessions)``: True (and counted) if it fits this source's window."""

    def __init__(self, max_sources: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.max_sources = max_sources
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def admit(
        self, source: str, sessions: int, *, max_reports: int, max_sessions: int, interval: float
    ) -> bool:
        now = self._clock()
        window = self._window(source, now, interval)
        if window.reports + 1 > max_reports or window.sessions + sessions > max_sessions:
            return False
        window.reports += 1
        window.sessions += sessions
        return True

    def _window(self, source: str, now: float, interval: float) -> _Window:
        if source not in self._windows and len(self._windows) >= self.max_sources:
            self._windows = {k: w for k, w in self._windows.items() if now - w.start < interval}
            if len(self._windows) >= self.max_sources:
                source = OVERFLOW  # full of live sources: newcomers share one window
        window = self._windows.get(source)
        if window is None or now - window.start >= interval:
            window = self._windows[source] = _Window(now)
        return window


def source_of(peer: str | None, forwarded_for: str | None, trusted: Sequence[str]) -> str:
    """The client a report came from: the peer address, or, when the peer is a trusted
    proxy (the ingress controller), the last ``X-Forwarded-For`` hop it did not add itself.
    """
    nets = [ipaddress.ip_network(n) for n in trusted]

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return False
        return any(ip in n for n in nets)

    source = peer or "(unknown)"
    if not nets or not is_trusted(source) or not forwarded_for:
        return source
    for raw in reversed(forwarded_for.split(",")):
        hop = raw.strip()
        if not hop:
            continue
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return source  # garbage in the header: fall back to the proxy itself
        source = hop
    return source
