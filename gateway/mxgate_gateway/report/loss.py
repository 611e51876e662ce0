"""LossReport: what the gateway records per session, decision and message; and merge().

Keeps one Tally since start and one per minute for a rolling window, so memory
is bounded by (window minutes + 1) tallies whatever the traffic. The clock is
passed in. This module must not do I/O or log, and never stores message
contents, full addresses or raw client IPs (only domains and /24 or /48 networks).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from mxgate_gateway.mtasts.render import merge_sections as merge_tlsrpt
from mxgate_gateway.negotiated import tls_label
from mxgate_gateway.policy.decisions import Decision
from mxgate_gateway.policy.facts import normalize_domain
from mxgate_gateway.report.document import FORMAT, ReportDocument, ReportFormatError
from mxgate_gateway.report.tally import Tally
from mxgate_gateway.report.topk import CAPACITY

__all__ = [
    "FORMAT",
    "LossReport",
    "client_network",
    "count_decision",
    "count_message",
    "count_session",
    "merge",
]
NULL_SENDER = "<>"
WINDOW_MINUTES = 60
TOP_SHOWN = 10


def client_network(ip: IPv4Address | IPv6Address | str) -> str:
    """The client's network as reported: ``/24`` for IPv4, ``/48`` for IPv6."""
    addr = ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(ip_network(f"{addr}/{prefix}", strict=False))


# -- what one fact adds to a tally: shared by the live report and `mxgate estimate` ---------


def count_session(tallies: Iterable[Tally], tls_version: str | None) -> None:
    """A session, by the TLS version it ended up with (None: plaintext)."""
    label = tls_label(tls_version)
    for t in tallies:
        t.sessions[label] += 1


def count_decision(tallies: Iterable[Tally], decision: Decision) -> None:
    """A policy decision under its rule; a ``carried`` RCPT repeat is not recounted."""
    if decision.carried:
        return
    key = (decision.rule_id, decision.mode.value, decision.action.value)
    for t in tallies:
        t.rules[key] += 1


def count_message(
    tallies: Iterable[Tally],
    *,
    tls_version: str | None,
    sender_domain: str | None,
    client_ip: IPv4Address | IPv6Address | str,
    upstream_accepted: bool | None,
    recipients: int,
) -> None:
    """A message that reached the end of DATA, and how the next hop judged it."""
    label = tls_label(tls_version)
    verdict = {True: "accepted", False: "rejected", None: "unknown"}[upstream_accepted]
    sender = normalize_domain(sender_domain) or NULL_SENDER
    network = client_network(client_ip) if label == "none" else ""
    for t in tallies:
        t.messages[label] += 1
        t.recipients[label] += max(recipients, 0)
        t.upstream[(label, verdict)] += 1
        if label == "none":
            t.senders.add(sender)
            t.networks.add(network)


class LossReport:
    """Records traffic facts; ``snapshot()`` is the JSON body of ``GET /report``."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        window_minutes: int = WINDOW_MINUTES,
        top_capacity: int = CAPACITY,
        top_shown: int = TOP_SHOWN,
    ) -> None:
        if window_minutes < 1:
            raise ValueError("window_minutes must be at least 1")
        self._clock = clock
        self._window_minutes = window_minutes
        self._top_capacity = top_capacity
        self._top_shown = top_shown
        self._total = Tally.empty(top_capacity)
        self._minutes: deque[tuple[int, Tally]] = deque()

    # -- recording -------------------------------------------------------------

    def _tallies(self) -> tuple[Tally, Tally]:
        minute = int(self._clock() // 60)
        self._expire(minute)
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append((minute, Tally.empty(self._top_capacity)))
        return self._total, self._minutes[-1][1]

    def _expire(self, minute: int) -> None:
        while self._minutes and self._minutes[0][0] <= minute - self._window_minutes:
            self._minutes.popleft()

    def record_session(self, tls_version: str | None) -> None:
        """Count a session, by the TLS version it ended up with (None: plaintext)."""
        count_session(self._tallies(), tls_version)

    def record_decision(self, decision: Decision) -> None:
        """Count a policy decision under its rule; a ``carried`` RCPT repeat is not recounted."""
        count_decision(self._tallies(), decision)

    def record_message(
        self,
        *,
        tls_version: str | None,
        sender_domain: str | None,
        client_ip: IPv4Address | IPv6Address | str,
        upstream_accepted: bool | None,
        recipients: int,
    ) -> None:
        """Count one message that reached the end of DATA.

        ``upstream_accepted``: True for the upstream's 250, False for its 5xx,
        None when it gave no final verdict (unreachable, timeout, 4xx).
        """
        count_message(
            self._tallies(),
            tls_version=tls_version,
            sender_domain=sender_domain,
            client_ip=client_ip,
            upstream_accepted=upstream_accepted,
            recipients=recipients,
        )

    # -- reading ---------------------------------------------------------------

    def window(self) -> Tally:
        """The last ``window_minutes`` minutes (including the current one) as one tally."""
        minute = int(self._clock() // 60)
        self._expire(minute)
        out = Tally.empty(self._top_capacity)
        for _, tally in self._minutes:
            out.merge(tally)
        return out

    def snapshot(self) -> ReportDocument:
        """The report document (``GET /report``): since start and the rolling window."""
        return ReportDocument(
            gateways=1,
            window_minutes=self._window_minutes,
            since_start=self._total.to_period(self._top_shown),
            window=self.window().to_period(self._top_shown),
        )


def merge(documents: Iterable[ReportDocument], *, top_shown: int = TOP_SHOWN) -> ReportDocument:
    """Merge several gateways' documents into one: counts add, sketches merge exactly.

    Raises ReportFormatError for a document whose sketch state is malformed, or
    when the documents' window lengths differ.
    """
    items = list(documents)
    if not items:
        raise ReportFormatError("nothing to merge")
    windows = {doc.window_minutes for doc in items}
    if len(windows) != 1:
        raise ReportFormatError(
            f"reports have different window lengths: {sorted(map(str, windows))}"
        )
    total, window = Tally.empty(), Tally.empty()
    for doc in items:
        total.merge(Tally.from_period(doc.since_start))
        window.merge(Tally.from_period(doc.window))
    try:  # TLS-RPT results (issue 8) ride along under their own key
        tlsrpt = merge_tlsrpt(doc.tlsrpt for doc in items)
    except ValueError as exc:
        raise ReportFormatError(str(exc)) from None
    return ReportDocument(
        gateways=sum(doc.gateways for doc in items),
        window_minutes=windows.pop(),
        since_start=total.to_period(top_shown),
        window=window.to_period(top_shown),
        tlsrpt=tlsrpt,
    )
