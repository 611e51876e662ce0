"""Postfix 2.x to 3.x logs (syslog lines or ``maillog_file``) → sessions and transactions.

Correlates by smtpd process id (a session: ``connect from`` … ``disconnect from``,
its TLS from ``TLS connection established``) and by queue id (a message:
``client=`` … qmgr ``from=``/``removed``, or a cleanup/smtpd reject). Reject lines
carry no TLS facts: they are joined to their smtpd session. A failed STARTTLS
handshake never logs "established", so that session stays plaintext. Pure: lines
in, facts out through ``emit``; open state is bounded (``facts.Bounded``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mxgate_gateway.estimate.facts import (
    Bounded,
    Fact,
    ParseStats,
    SessionSeen,
    TransactionSeen,
    Verdict,
)
from mxgate_gateway.estimate.stamps import LineGate, Window, iso_stamp, syslog_stamp

MAX_SESSIONS = 50_000  # open smtpd sessions (concurrent processes, plus a truncated log's)
MAX_MESSAGES = 200_000  # open queue ids (messages in the queue)
MAX_NAMED_RECIPIENTS = 1_000  # recipient names kept per message (counts are exact anyway)

HEADER = re.compile(
    r"(?P<ts>(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)"
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)\S*)"
    r" \S+ (?P<prog>[\w.-]+)/(?:[\w.-]+/)*(?P<daemon>[\w.-]+)\[(?P<pid>\d+)\]: (?P<msg>.*)"
)
CLIENT = re.compile(r"[^\s\[]*\[([0-9A-Fa-f.:]+)\]")
TLS_UP = re.compile(
    r"(?:(?:Anonymous|Untrusted|Trusted|Verified) )?TLS connection established"
    r" from [^\s\[]*\[([0-9A-Fa-f.:]+)\]: (\S+) with cipher"
)
QUEUE_ID = re.compile(r"([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}): (.*)")
REJECT = re.compile(r"(?:milter-)?reject: (\S+) from [^\s\[]*\[([0-9A-Fa-f.:]+)\](?::\d+)?: (.*)")
ADDR = re.compile(r"\b(from|to|orig_to)=<([^>]*)>")
QMGR_FROM = re.compile(r"from=<([^>]*)>, size=\d+, nrcpt=(\d+)")
REPLY = re.compile(r"([245])\d\d\b|([245])\.\d{1,3}\.\d{1,3}\b")  # at the reply's start
RELAY = re.compile(r"relay", re.IGNORECASE)

_IGNORED_SMTPD = (
    "lost connection",
    "timeout after",
    "too many errors",
    "warning:",
    "SSL_accept error",
    "setting up TLS connection",
    "improper command pipelining",
    "NOQUEUE: filter:",
    "NOQUEUE: reject: CONNECT",
    "NOQUEUE: reject: EHLO",
    "NOQUEUE: reject: HELO",
    "NOQUEUE: reject: MAIL",
    "NOQUEUE: reject: VRFY",
    "NOQUEUE: reject: ETRN",
    "TLS connection established to",
    "Anonymous TLS connection established to",
    "Untrusted TLS connection established to",
    "Trusted TLS connection established to",
    "Verified TLS connection established to",
    "auth=",
    "statistics:",
    "discarding EHLO",
    "watchdog",
    "fatal:",
    "panic:",
    "error:",
)


def _verdict(rest: str) -> Verdict:
    """A reject line's verdict from its reply: 5xx rejected, else unknown.

    smtpd writes the reply after ``host[ip]: ``; cleanup (header/body checks) after
    ``helo=<…>: ``, because the matched header text comes first.
    """
    for start in (rest.find("]: ") + 3, rest.rfind(">: ") + 3):
        m = REPLY.match(rest, start) if start >= 3 else None
        if m is not None:
            return Verdict.REJECTED if (m.group(1) or m.group(2)) == "5" else Verdict.UNKNOWN
    return Verdict.UNKNOWN


@dataclass
class _Refusals:
    """NOQUEUE recipient refusals of one sender in a row: a transaction with no queue id."""

    sender: str
    refused: list[tuple[str, bool]] = field(default_factory=list)


@dataclass
class _Session:
    client_ip: str
    tls_version: str | None = None
    pending: _Refusals | None = None  # NOQUEUE refusals not yet tied to a transaction


@dataclass
class _Message:
    client_ip: str
    tls_version: str | None
    before: _Refusals | None  # refusals logged just before ``client=``: maybe this message's
    sender: str | None = None
    recipient_count: int = 0
    recipients: list[str] = field(default_factory=list)
    refused: list[tuple[str, bool]] = field(default_factory=list)
    verdict: Verdict | None = None


class PostfixParser:
    """Feed lines in log order (one file after another, oldest first); call ``finish``."""

    def __init__(
        self,
        emit: Callable[[Fact], None],
        *,
        year: int,
        window: Window | None = None,
        stats: ParseStats | None = None,
        max_sessions: int = MAX_SESSIONS,
        max_messages: int = MAX_MESSAGES,
    ) -> None:
        self.emit = emit
        self.year, self.last_month = year, 12
        self.window = window or Window()
        self.stats = stats or ParseStats()
        self._sessions: Bounded[str, _Session] = Bounded(max_sessions)
        self._messages: Bounded[str, _Message] = Bounded(max_messages)
        self._lines = LineGate(HEADER, self._stamp, self.window, self.stats)

    # -- lines ---------------------------------------------------------------------

    def feed(self, line: str) -> None:
        m = self._lines.admit(line)
        if m is None:
            return
        daemon, msg = m["daemon"], m["msg"]
        if daemon == "smtpd":
            self._smtpd(m["pid"], msg)
        elif daemon == "cleanup":
            self._cleanup(msg)
        elif daemon == "qmgr":
            self._qmgr(msg)
        elif daemon in ("smtp", "lmtp", "local", "virtual", "pipe", "error", "discard", "relay"):
            self._delivery(msg)
        # other daemons (master, pickup, bounce, postscreen, anvil, …) say nothing we count

    def _stamp(self, header: re.Match[str]) -> str | None:
        if header["iso"]:
            return iso_stamp(header["iso"])
        return syslog_stamp(header["mon"], header["day"], header["hms"], self.year, self.last_month)

    def _smtpd(self, pid: str, msg: str) -> None:
        if msg.startswith("connect from "):
            ip = CLIENT.match(msg, 13)
            self._open_session(pid, ip.group(1) if ip else "")
            return
        if msg.startswith("disconnect from "):
            self._close_session(pid)
            return
        tls = TLS_UP.match(msg)
        if tls is not None:
            self._session(pid, tls.group(1)).tls_version = tls.group(2)
            return
        if msg.startswith("NOQUEUE: reject: RCPT "):
            self._refused(pid, None, msg[9:])
            return
        q = QUEUE_ID.match(msg)
        if q is not None:
            qid, rest = q.groups()
            if rest.startswith("client="):
                ip = CLIENT.match(rest, 7)
                self._open_message(pid, qid, ip.group(1) if ip else "")
            elif rest.startswith("reject: RCPT "):
                self._refused(pid, qid, rest)
            elif rest.startswith(("reject: ", "milter-reject: ")):
                self._end_of_data_reject(qid, rest)
            # other queue-id lines of smtpd (filter, hold, …) change nothing we count
            return
        if msg.startswith(_IGNORED_SMTPD):
            return
        self.stats.unparsed += 1

    def _cleanup(self, msg: str) -> None:
        q = QUEUE_ID.match(msg)
        if q is None:
            return
        qid, rest = q.groups()
        if rest.startswith(("reject: ", "milter-reject: ")):
            self._end_of_data_reject(qid, rest)

    def _qmgr(self, msg: str) -> None:
        q = QUEUE_ID.match(msg)
        if q is None:
            return
        qid, rest = q.groups()
        message = self._messages.get(qid)
        if message is None:
            return  # a retry of a message queued earlier, or locally submitted mail
        if rest == "removed":
            self._messages.pop(qid)
            self._emit_message(message)
            return
        f = QMGR_FROM.match(rest)
        if f is not None and message.verdict is None:
            message.sender = f.group(1)
            message.recipient_count = int(f.group(2))
            message.verdict = Verdict.ACCEPTED

    def _delivery(self, msg: str) -> None:
        q = QUEUE_ID.match(msg)
        if q is None:
            return
        message = self._messages.get(q.group(1))
        if message is None:
            return
        addrs = dict((k, v) for k, v in ADDR.findall(q.group(2)) if k != "from")
        name = addrs.get("orig_to") or addrs.get("to")
        known = message.recipients
        if name and name not in known and len(known) < MAX_NAMED_RECIPIENTS:
            known.append(name)

    # -- sessions ----------------------------------------------------------------------

    def _open_session(self, pid: str, ip: str) -> None:
        old = self._sessions.pop(pid)
        if old is not None:  # no disconnect line for the previous session of this pid
            self.stats.unattributed["session_without_disconnect"] += 1
            self._finish_session(old)
        evicted = self._sessions.put(pid, _Session(ip))
        if evicted is not None:
            self.stats.unattributed["session_without_disconnect"] += 1
            self._finish_session(evicted[1])

    def _session(self, pid: str, ip: str) -> _Session:
        """The open session of ``pid``; a line without ``connect from`` opens one (noted)."""
        session = self._sessions.get(pid)
        if session is None:
            self.stats.unattributed["session_without_connect"] += 1
            session = _Session(ip)
            evicted = self._sessions.put(pid, session)
            if evicted is not None:
                self._finish_session(evicted[1])
        return session

    def _close_session(self, pid: str) -> None:
        session = self._sessions.pop(pid)
        if session is None:
            self.stats.unattributed["session_without_connect"] += 1
            return
        self._finish_session(session)

    def _finish_session(self, session: _Session) -> None:
        self._flush_refusals(session)
        self.emit(SessionSeen(session.client_ip, session.tls_version))

    def _flush_refusals(self, session: _Session) -> None:
        pending, session.pending = session.pending, None
        if pending is not None:
            self.emit(
                TransactionSeen(
                    session.client_ip,
                    session.tls_version,
                    pending.sender,
                    refused=tuple(pending.refused),
                )
            )

    def _refused(self, pid: str, qid: str | None, rest: str) -> None:
        """``reject: RCPT from h[ip]: 554 … ; from=<s> to=<r> …`` with or without a queue id."""
        m = REJECT.match(rest)
        addrs = dict(ADDR.findall(rest))
        sender, rcpt = addrs.get("from"), addrs.get("to", "")
        session = self._session(pid, m.group(2) if m else "")
        refusal = (rcpt, bool(m and RELAY.search(m.group(3))))
        message = self._messages.get(qid) if qid else None
        if message is not None:
            message.refused.append(refusal)
            return
        if qid is not None:
            self.stats.unattributed["reject_without_client"] += 1
        pending = session.pending
        if pending is None or pending.sender != (sender or ""):
            self._flush_refusals(session)
            pending = session.pending = _Refusals(sender or "")
        pending.refused.append(refusal)

    # -- messages ------------------------------------------------------------------------

    def _open_message(self, pid: str, qid: str, ip: str) -> None:
        session = self._session(pid, ip)
        before, session.pending = session.pending, None
        message = _Message(ip or session.client_ip, session.tls_version, before)
        evicted = self._messages.put(qid, message)
        if evicted is not None:
            self.stats.unattributed["message_without_end"] += 1
            self._emit_message(evicted[1])

    def _end_of_data_reject(self, qid: str, rest: str) -> None:
        message = self._messages.pop(qid)
        if message is None:
            self.stats.unattributed["reject_without_client"] += 1
            return
        addrs = dict(ADDR.findall(rest))
        if message.sender is None:
            message.sender = addrs.get("from")
        message.verdict = _verdict(rest)
        self._emit_message(message)

    def _emit_message(self, message: _Message) -> None:
        """Emit the message, and the refusals before it as its own or a separate transaction."""
        refused = list(message.refused)
        before = message.before
        if before is not None:
            if message.sender is not None and before.sender == message.sender:
                refused = before.refused + refused
            else:
                self.emit(
                    TransactionSeen(
                        message.client_ip,
                        message.tls_version,
                        before.sender,
                        refused=tuple(before.refused),
                    )
                )
        self.emit(
            TransactionSeen(
                message.client_ip,
                message.tls_version,
                message.sender,
                recipients=tuple(message.recipients),
                recipient_count=message.recipient_count,
                refused=tuple(refused),
                verdict=message.verdict,
            )
        )

    def open_state(self) -> int:
        """Sessions and messages held open right now (bounded by the caps)."""
        return len(self._sessions) + len(self._messages)

    # -- end of input ------------------------------------------------------------------------

    def finish(self) -> None:
        """Close what the log left open: queued messages and sessions still connected."""
        for _, message in self._messages.drain():
            if message.verdict is None:  # no qmgr line: never reached the end of DATA
                self.stats.unattributed["message_without_end"] += 1
            self._emit_message(message)
        for _, session in self._sessions.drain():
            self.stats.unattributed["session_without_disconnect"] += 1
            self._finish_session(session)
