"""The per-verb decisions of a session: relay check, policy, in-line relay, accounting.

One ``EdgeHandler`` per gateway, shared by all sessions (state lives in
``Connection``/``Transaction``). It turns MAIL/RCPT/DATA into replies:
domains first, then TLS policy, then the live upstream; a 250 after DATA
only when the upstream said 250. It answers with values (a ``Reply``, or
``Close`` to end the session) and never touches the connection: it must not
parse the wire or import the engine (server.py does and calls it), and must
never log message bodies or raw exception text to clients.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from mxgate_gateway import replies
from mxgate_gateway.config.model import Limits
from mxgate_gateway.logs import get_logger
from mxgate_gateway.metrics import GatewayMetrics
from mxgate_gateway.negotiated import tls_label
from mxgate_gateway.policy import (
    Action,
    Decision,
    SessionFacts,
    decide_mail,
    decide_rcpt,
    trace_header_value,
)
from mxgate_gateway.relay.breaker import BreakerBank
from mxgate_gateway.relay.client import UpstreamTransaction
from mxgate_gateway.relay.outcome import RelayOutcome, RelayStatus
from mxgate_gateway.relay.pool import UpstreamPool
from mxgate_gateway.smtp.addresses import Path, relay_target, sender_domain
from mxgate_gateway.smtp.data import DataSink, DataStatus
from mxgate_gateway.smtp.drain import SessionTracker
from mxgate_gateway.smtp.gatekeeper import Gatekeeper
from mxgate_gateway.smtp.received import TraceFacts, received_header
from mxgate_gateway.smtp.state import Close, Connection, Transaction, new_queue_id
from mxgate_gateway.smtp.upstream_signals import UpstreamSignals
from mxgate_gateway.tls.contexts import UpstreamContexts

log = get_logger("mxgate.smtp")


class ReportSink(Protocol):
    """The loss report's recording API (``mxgate_gateway.report.LossReport``)."""

    def record_session(self, tls_version: str | None) -> None: ...
    def record_decision(self, decision: Decision) -> None: ...
    def record_message(
        self,
        *,
        tls_version: str | None,
        sender_domain: str | None,
        client_ip: IPv4Address | IPv6Address | str,
        upstream_accepted: bool | None,
        recipients: int,
    ) -> None: ...


class EdgeHandler:
    """Answers MAIL, RCPT and DATA for every session of one gateway."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        report: ReportSink | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        upstream_pool: bool = True,
    ) -> None:
        self.metrics = metrics
        self.report = report
        self.clock = clock
        self._closing: set[asyncio.Task[None]] = set()
        # Live operations: drain, admission (limits, PROXY), upstream breakers.
        self.tracker = SessionTracker()
        self.gatekeeper = Gatekeeper(Limits(), self._connection_refused)
        # Per-upstream metrics and the rate-limited connect-failure log.
        self.signals = UpstreamSignals(metrics)
        self.breakers = BreakerBank(time.monotonic, on_open=self.signals.breaker_opened)
        # Idle upstream sessions reused message after message (settings.Tuning).
        self.pool = UpstreamPool() if upstream_pool else None
        # Upstream TLS client contexts, built once per config generation.
        self.upstream_contexts = UpstreamContexts()

    # --- session events ----------------------------------------------------------

    def on_connect(self) -> None:
        self.metrics.connections.inc()

    def on_tls(self, conn: Connection) -> None:
        log.info(
            "starttls_completed",
            session_id=conn.session_id,
            client_ip=str(conn.client_ip),
            **_tls_fields(conn),
        )

    def on_session_end(self, conn: Connection, *, admitted: bool) -> None:
        """The connection is gone; ``admitted`` is False when it was refused before the
        greeting (limits, PROXY), which is no session."""
        self.metrics.connections.dec()
        if not admitted:
            return
        self.metrics.sessions.labels(tls_label(conn.tls_version)).inc()
        if self.report is not None:
            self.report.record_session(conn.tls_version)
        log.info(
            "session_ended",
            session_id=conn.session_id,
            client_ip=str(conn.client_ip),
            helo=conn.helo[:64],
            transactions=conn.transactions,
            relayed=conn.messages_relayed,
            protocol_errors=conn.protocol_errors,
            duration_s=round(time.monotonic() - conn.started, 3),
            **_tls_fields(conn),
        )

    def on_transaction_end(self, txn: Transaction) -> None:
        """A transaction was reset, finished or abandoned: release its upstream."""
        upstream, txn.upstream = txn.upstream, None
        if upstream is not None and not upstream.release():
            task = asyncio.get_running_loop().create_task(upstream.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close_upstreams(self) -> None:
        """Wait for released upstream connections to say QUIT (each bounded by its
        quit timeout): the last step of a drain."""
        if self._closing:
            await asyncio.wait(tuple(self._closing))

    def _connection_refused(self, reason: str) -> None:
        self.metrics.connections_refused.labels(reason).inc()
        log.info("connection_refused", reason=reason)

    # --- MAIL --------------------------------------------------------------------

    async def on_mail(
        self, conn: Connection, txn: Transaction, path: Path
    ) -> replies.Reply | Close:
        if self.tracker.draining:
            return Close(replies.SHUTTING_DOWN)
        decision = decide_mail(conn.config.policy, _facts(conn), sender_domain(path))
        self._count_decision(decision)
        if decision.action is Action.REFUSE and decision.reply is not None:
            log.info("mail_refused", session_id=conn.session_id, rule=decision.rule_id)
            return _policy_reply(decision.reply)
        txn.sender, txn.params = path, dict(path.params)
        txn.verdict, txn.policy_rule = decision.action.value, decision.rule_id
        conn.transactions += 1
        return replies.reply(250, "Sender OK", "2.1.0")

    # --- RCPT --------------------------------------------------------------------

    async def on_rcpt(self, conn: Connection, txn: Transaction, path: Path) -> replies.Reply:
        target = relay_target(path, conn.config.domains)
        if isinstance(target, replies.Reply):
            return self._rcpt_refused(conn, "relay_denied", target)
        assert txn.sender is not None
        rcpt_domain = target.rpartition("@")[2]
        decision = decide_rcpt(
            conn.config.policy, _facts(conn), sender_domain(txn.sender), rcpt_domain
        )
        self._count_decision(decision)
        if decision.action is Action.REFUSE and decision.reply is not None:
            return self._rcpt_refused(conn, "policy", _policy_reply(decision.reply))
        if decision.action is Action.WOULD_REFUSE and not decision.carried:
            txn.verdict, txn.policy_rule = decision.action.value, decision.rule_id
        outcome = await self._upstream_rcpt(conn, txn, target)
        if not outcome.accepted:
            return self._rcpt_refused(conn, f"upstream_{outcome.status.value}", outcome.reply)
        txn.recipients.append(target)
        self.metrics.recipients.labels("accepted").inc()
        return replies.reply(250, "Recipient OK", "2.1.5")

    async def _upstream_rcpt(self, conn: Connection, txn: Transaction, rcpt: str) -> RelayOutcome:
        if txn.upstream_failure is not None:
            return txn.upstream_failure
        if txn.upstream is None:
            assert txn.sender is not None
            upstream, outcome = await UpstreamTransaction.open(
                conn.config.upstreams,
                helo=conn.config.hostname,
                sender=txn.sender.address,
                mail_params=[_param(k, v) for k, v in txn.params.items()],
                observe=self.metrics.observe_upstream,
                breakers=self.breakers,
                pool=self.pool,
                contexts=self.upstream_contexts,
                on_attempt=self.signals.attempt,  # counts each failure, even those failover hid
            )
            if upstream is None:
                txn.upstream_failure = outcome
                return outcome
            txn.upstream = upstream
        return await txn.upstream.rcpt(rcpt)

    def _rcpt_refused(self, conn: Connection, why: str, reply: replies.Reply) -> replies.Reply:
        self.metrics.recipients.labels(why).inc()
        log.info(
            "rcpt_rejected",
            session_id=conn.session_id,
            client_ip=str(conn.client_ip),
            reason=why,
            code=reply.code,
        )
        return reply

    # --- DATA --------------------------------------------------------------------

    def on_data_start(self, conn: Connection, txn: Transaction) -> DataSink:
        """Start the upstream's DATA with our trace headers; the server streams the
        message into the returned sink as the client sends it."""
        txn.queue_id = new_queue_id()  # named in our Received header, then in the 250
        if txn.upstream is None:  # cannot happen: a recipient was accepted upstream
            return _DISCARD
        txn.upstream.start_data(self._trace_headers(conn, txn))
        return txn.upstream

    async def on_data(self, conn: Connection, txn: Transaction, size: int) -> replies.Reply:
        """The client's final dot arrived and the section kept every rule: send the
        upstream's final dot; 250 only after the upstream's 250."""
        upstream: dict[str, object] = {}
        if txn.upstream is None:  # cannot happen: a recipient was accepted upstream
            outcome_reply = replies.UPSTREAM_FAILED
            status = RelayStatus.TEMPFAILED
        else:
            outcome = await txn.upstream.finish_data()
            outcome_reply, status = outcome.reply, outcome.status
            # The upstream's own reply names its queue id: grep its log for it.
            upstream = {"upstream": txn.upstream.upstream.address}
            upstream["upstream_reply"] = str(outcome.reply)[:200]
            if outcome.failure.value != "none":
                self.signals.failed(txn.upstream.upstream.address, outcome.failure)
                upstream["failure"] = outcome.failure.value
            if outcome.after_dot:
                self._ambiguous(conn, txn, outcome)
        label = {"accepted": "relayed"}.get(status.value, status.value)
        self.metrics.messages.labels(label, tls_label(conn.tls_version)).inc()
        if status is RelayStatus.ACCEPTED:
            conn.messages_relayed += 1
            conn.junk_commands = 0
            outcome_reply = replies.reply(250, f"Queued as {txn.queue_id}", "2.0.0")
        self._record_message(conn, txn, status)
        log.info(
            f"message_{label}",
            session_id=conn.session_id,
            queue_id=txn.queue_id,
            client_ip=str(conn.client_ip),
            recipients=len(txn.recipients),
            size=size,
            code=outcome_reply.code,
            verdict=txn.verdict,
            rule=txn.policy_rule,
            **upstream,
            **_tls_fields(conn),
        )
        return outcome_reply

    def _ambiguous(self, conn: Connection, txn: Transaction, outcome: RelayOutcome) -> None:
        """A 4xx after the dot was relayed: the upstream may hold a copy (duplicate risk)."""
        reason = "upstream_4xx" if outcome.failure.value == "none" else outcome.failure.value
        self.metrics.ambiguous_outcomes.labels(reason).inc()
        log.warning(
            "ambiguous_outcome",
            session_id=conn.session_id,
            queue_id=txn.queue_id,
            reason=reason,
            **({"upstream": outcome.upstream} if outcome.upstream else {}),
        )

    def on_data_refused(self, conn: Connection, txn: Transaction, why: DataStatus) -> None:
        """The section broke an edge rule: the upstream transaction is abandoned before
        its final dot, so no copy exists anywhere."""
        if txn.upstream is not None:
            txn.upstream.abandon_data()
        self.metrics.messages.labels("rejected", tls_label(conn.tls_version)).inc()
        log.info(
            "message_refused", session_id=conn.session_id, queue_id=txn.queue_id, reason=why.value
        )

    def _trace_headers(self, conn: Connection, txn: Transaction) -> bytes:
        tls = conn.tls
        header = received_header(
            TraceFacts(
                helo=conn.helo,
                client_ip=str(conn.client_ip),
                hostname=conn.config.hostname,
                session_id=txn.queue_id,
                esmtp=conn.esmtp,
                tls_version=tls.version if tls else None,
                tls_cipher=tls.cipher if tls else None,
                tls_bits=tls.bits if tls else None,
                recipient=txn.recipients[0] if len(txn.recipients) == 1 else None,
                when=self.clock(),
            )
        )
        name = conn.config.policy.trace_header
        if name:
            header += f"{name}: {trace_header_value(_facts(conn))}\r\n".encode("ascii")
        return header

    def _record_message(self, conn: Connection, txn: Transaction, status: RelayStatus) -> None:
        if self.report is None:
            return
        accepted = {RelayStatus.ACCEPTED: True, RelayStatus.REJECTED: False}.get(status)
        self.report.record_message(
            tls_version=conn.tls_version,
            sender_domain=sender_domain(txn.sender) if txn.sender else None,
            client_ip=conn.client_ip,
            upstream_accepted=accepted,
            recipients=len(txn.recipients),
        )

    def _count_decision(self, decision: Decision) -> None:
        if not decision.carried:  # an RCPT decision repeating MAIL's is counted once, like /report
            self.metrics.policy_decisions.labels(
                decision.rule_id, decision.mode.value, decision.action.value
            ).inc()
        if self.report is not None:
            self.report.record_decision(decision)


class _Discard:
    """A sink that drops the message (no upstream to stream to)."""

    async def write(self, data: bytes) -> None:
        return None


_DISCARD = _Discard()


def _facts(conn: Connection) -> SessionFacts:
    return SessionFacts(conn.client_ip, conn.tls_version, conn.config.listener)


def _policy_reply(pair: tuple[int, str]) -> replies.Reply:
    code, text = pair
    enhanced, _, rest = text.partition(" ")
    return replies.Reply(code, enhanced, replies.clean_text(rest))


def _param(key: str, value: str | None) -> str:
    return key if value is None else f"{key}={value}"


def _tls_fields(conn: Connection) -> dict[str, object]:
    """``tls`` always (``none`` in plaintext); ``cipher`` only when there is one.

    The one rule for every event: a field that does not apply is absent, never null.
    """
    tls = conn.tls
    return {"tls": tls.version, "cipher": tls.cipher} if tls else {"tls": "none"}
