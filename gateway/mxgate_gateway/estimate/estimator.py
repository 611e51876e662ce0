"""Count log facts exactly as the live report counts traffic, and replay them through a policy.

Sessions and messages go through the live report's own counting functions
(``report.loss.count_*``) into one Tally; with a policy, every transaction is
decided by the real engine (``policy.decide_mail``/``decide_rcpt``) the way the
gateway would have: one MAIL decision, then one RCPT decision per recipient unless
MAIL was refused, relay refusals undecided. Pure: facts in, a ReportDocument out.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from mxgate_gateway.config.model import Listener, Policy
from mxgate_gateway.estimate.facts import Fact, ParseStats, SessionSeen, TransactionSeen, Verdict
from mxgate_gateway.policy import Action, SessionFacts, decide_mail, decide_rcpt, domain_of
from mxgate_gateway.report.document import EstimateInfo, ReportDocument
from mxgate_gateway.report.loss import (
    TOP_SHOWN,
    WINDOW_MINUTES,
    count_decision,
    count_message,
    count_session,
)
from mxgate_gateway.report.tally import Tally

_UPSTREAM = {Verdict.ACCEPTED: True, Verdict.REJECTED: False, Verdict.UNKNOWN: None}
_UNSPECIFIED = IPv4Address("0.0.0.0")  # noqa: S104 - a stand-in address, never bound


@dataclass(frozen=True)
class Replay:
    """The policy to replay, the listener role it is judged for, and its name for the report."""

    policy: Policy
    listener: Listener
    name: str


def _address(ip: str) -> IPv4Address | IPv6Address:
    try:
        return ip_address(ip)
    except ValueError:
        return _UNSPECIFIED


class Estimator:
    """Accumulates facts; ``document()`` is the estimate as an ``mxgate-report/1`` body."""

    def __init__(self, replay: Replay | None = None, *, top_shown: int = TOP_SHOWN) -> None:
        self.tally = Tally.empty()
        self.replay = replay
        self.top_shown = top_shown
        self._one = (self.tally,)
        self.unattributed_messages = 0

    def add(self, fact: Fact) -> None:
        if isinstance(fact, SessionSeen):
            count_session(self._one, fact.tls_version)
            return
        if fact.verdict is not None:
            address = _address(fact.client_ip)
            if address is _UNSPECIFIED:
                self.unattributed_messages += 1
            count_message(
                self._one,
                tls_version=fact.tls_version,
                sender_domain=domain_of(fact.sender) if fact.sender else None,
                client_ip=address,
                upstream_accepted=_UPSTREAM[fact.verdict],
                recipients=fact.recipient_count or len(fact.recipients),
            )
        if self.replay is not None:
            self._decide(self.replay, fact)

    def _decide(self, replay: Replay, fact: TransactionSeen) -> None:
        facts = SessionFacts(_address(fact.client_ip), fact.tls_version, replay.listener)
        sender = domain_of(fact.sender) if fact.sender else None
        mail = decide_mail(replay.policy, facts, sender)
        count_decision(self._one, mail)
        if mail.action is Action.REFUSE:
            return  # the gateway would have answered MAIL: no RCPT follows
        undecided = {rcpt for rcpt, relay in fact.refused if relay}
        names = [*fact.recipients, *(r for r, relay in fact.refused if not relay)]
        for rcpt in names:
            if rcpt in undecided:
                continue
            domain = domain_of(rcpt) or ""
            count_decision(self._one, decide_rcpt(replay.policy, facts, sender, domain))

    def document(self, source: str, files: int, stats: ParseStats) -> ReportDocument:
        """The estimate: counts in ``since_start``, an empty ``window`` (a log is history)."""
        notes = []
        if self.replay is not None:
            notes.append(
                "rules: what the policy would have decided for the transactions in the log;"
                " the session and message counts are what the MTA saw"
            )
        if not self.tally.sessions.total() and self.tally.messages.total():
            notes.append(
                "no session lines in the log: sessions are not counted"
                " (Exim: log_selector = +smtp_connection +smtp_no_mail +pid)"
            )
        accepted = sum(self.tally.upstream[(tls, "accepted")] for tls in self.tally.messages)
        if accepted and not self.tally.recipients.total():
            notes.append(
                "no recipients in the log: recipients are not counted"
                " (Exim: log_selector = +received_recipients)"
            )
        unattributed = dict(stats.unattributed)
        if self.unattributed_messages:
            unattributed["message_without_client_address"] = self.unattributed_messages
        return ReportDocument(
            gateways=1,
            window_minutes=WINDOW_MINUTES,
            since_start=self.tally.to_period(self.top_shown),
            window=Tally.empty().to_period(self.top_shown),
            estimate=EstimateInfo(
                source=source,
                files=files,
                lines=stats.lines,
                unparsed_lines=stats.unparsed,
                first_seen=stats.first_seen,
                last_seen=stats.last_seen,
                unattributed=unattributed,
                notes=tuple(notes),
                policy=self.replay.name if self.replay else None,
            ),
        )
