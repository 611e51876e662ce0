"""Exim 4 main logs (default ``log_selector`` or a richer one) → sessions and transactions.

Messages come from ``<=`` lines (``P=esmtps`` and ``X=TLS1.3:…`` give the TLS
version, ``for …`` the recipients with ``+received_recipients``) and ``rejected
after DATA`` lines; refused recipients from ``rejected RCPT`` lines, joined to
their transaction by process id (``+pid``) or, without it, by client address and
sender. Sessions need ``+smtp_connection +pid`` (and ``+smtp_no_mail`` for the TLS
of sessions without mail). Pure: lines in, facts out; open state is bounded.
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
from mxgate_gateway.estimate.stamps import LineGate, Window, iso_stamp

MAX_SESSIONS = 50_000
MAX_CLOSING = 10_000  # closed sessions waiting for their "no MAIL" line

HEADER = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)?(?: [-+]\d{4})?"
    r"(?: \[(?P<pid>\d+)(?::\d+)?\])? (?P<msg>.*)"
)
MESSAGE_ID = re.compile(  # 4.x ids, and the longer ids of 4.97+
    r"(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"
    r"|[0-9A-Za-z]{6}-[0-9A-Za-z]{11}-[0-9A-Za-z]{4}) "
)
HOST = re.compile(r"\bH=(?:\S+ )?(?:\([^)]*\) )?\[([0-9A-Fa-f.:]+)\]")
CONN_HOST = re.compile(r"from (?:\S+ )?(?:\([^)]*\) )?\[([0-9A-Fa-f.:]+)\]")
TLS = re.compile(r"\bX=([A-Za-z]+v?[0-9.]+)[:\s]")
PROTO = re.compile(r"\bP=(\S+)")
SENDER = re.compile(r"\bF=<([^>]*)>")
REJECTED_RCPT = re.compile(r"(?:temporarily )?rejected RCPT <([^>]*)>:? ?(.*)")
RELAY = re.compile(r"relay", re.IGNORECASE)
_SESSION_END = (" closed by ", " lost", "timeout on connection from", "unexpected disconnection")
_END_PREFIXES = (
    "SMTP connection from",
    "SMTP command timeout",
    "SMTP data timeout",
    "unexpected disconnection",
)
_IGNORED = (
    "SMTP connection from [",  # the daemon announcing a connection (its own pid)
    "TLS error on connection",
    "SMTP protocol",
    "SMTP syntax error",
    "SMTP call from",
    "Start queue run",
    "End queue run",
    "exim ",
    "Warning:",
    "rejected EHLO",
    "rejected HELO",
    "rejected MAIL",
    "rejected connection",
    "SMTP connection lost",
    "refused relay",
    "Connection from",
    "too many",
    "DKIM:",
    "cwd=",
)


def tls_version(cipher_field: str) -> str:
    """Exim's ``X=`` protocol (GnuTLS ``TLS1.3``, OpenSSL ``TLSv1.3``) → ``TLSv1.3``."""
    version = cipher_field.removeprefix("TLSv").removeprefix("TLS")
    if version in ("1.0", "1"):
        return "TLSv1"
    return f"TLSv{version}" if version else cipher_field


def _stamp(header: re.Match[str]) -> str:
    return iso_stamp(header["ts"])


@dataclass
class _Refusals:
    sender: str
    tls_version: str | None
    refused: list[tuple[str, bool]] = field(default_factory=list)


@dataclass
class _Session:
    client_ip: str
    tls_version: str | None = None
    had_mail: bool = False
    pending: _Refusals | None = None


class EximParser:
    """Feed main-log lines in order (one file after another, oldest first); call ``finish``."""

    def __init__(
        self,
        emit: Callable[[Fact], None],
        *,
        window: Window | None = None,
        stats: ParseStats | None = None,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.emit = emit
        self.window = window or Window()
        self.stats = stats or ParseStats()
        self._sessions: Bounded[str, _Session] = Bounded(max_sessions)
        self._closing: Bounded[str, _Session] = Bounded(min(MAX_CLOSING, max_sessions))
        self.saw_pid = False
        self._lines = LineGate(HEADER, _stamp, self.window, self.stats)

    def feed(self, line: str) -> None:
        m = self._lines.admit(line)
        if m is None:
            return
        pid, msg = m["pid"], m["msg"]
        if pid is not None:
            self.saw_pid = True
        if msg.startswith(_IGNORED):
            return
        ident = MESSAGE_ID.match(msg)
        body = msg[ident.end() :] if ident else msg
        if body.startswith("<= "):
            self._received(pid, body)
        elif "rejected after DATA" in body:
            self._rejected_after_data(pid, body)
        elif " rejected RCPT " in body:
            self._rejected_rcpt(pid, body)
        elif body.startswith("no MAIL in SMTP connection from"):
            self._no_mail(pid, body)
        elif body.startswith(_END_PREFIXES):
            if any(e in body for e in _SESSION_END):
                self._session_end(pid, body)
        elif ident is not None or body.startswith(("Completed", "Frozen")):
            return  # deliveries (=> -> ** ==), queue events: not the receiving side
        else:
            self.stats.unparsed += 1

    # -- sessions (need +pid) -------------------------------------------------------

    def _session(self, pid: str | None, ip: str) -> _Session | None:
        if pid is None:
            return None
        session = self._sessions.get(pid)
        if session is None:
            closing = self._closing.pop(pid)  # a new connection served by a reused pid
            if closing is not None:
                self.emit(SessionSeen(closing.client_ip, closing.tls_version))
            session = _Session(ip)
            evicted = self._sessions.put(pid, session)
            if evicted is not None:
                self.stats.unattributed["session_without_end"] += 1
                self._end(evicted[1])
        return session

    def _note_tls(self, session: _Session | None, body: str) -> str | None:
        x = TLS.search(body)
        version = tls_version(x.group(1)) if x else None
        if version is None:
            p = PROTO.search(body)
            if p is not None and p.group(1).startswith("esmtps"):
                version = "TLS"  # TLS without tls_cipher logged: version unknown ("other")
        if session is not None:
            if version is not None:
                session.tls_version = version
            return session.tls_version
        return version

    def _session_end(self, pid: str | None, body: str) -> None:
        if pid is None:
            return
        host = CONN_HOST.search(body)
        session = self._sessions.pop(pid)
        if session is None:  # the normal case without mail: the daemon logged the connect
            session = _Session(host.group(1) if host else "")
        self._note_tls(session, body)
        self._flush(session)
        if session.had_mail:
            self.emit(SessionSeen(session.client_ip, session.tls_version))
            return
        evicted = self._closing.put(pid, session)  # its "no MAIL" line may follow
        if evicted is not None:
            self.emit(SessionSeen(evicted[1].client_ip, evicted[1].tls_version))

    def _no_mail(self, pid: str | None, body: str) -> None:
        if pid is None:
            return
        session = self._closing.pop(pid)
        if session is None:
            session = self._sessions.pop(pid)
            if session is None:
                return
        self._note_tls(session, body)
        self.emit(SessionSeen(session.client_ip, session.tls_version))

    def _end(self, session: _Session) -> None:
        self._flush(session)
        self.emit(SessionSeen(session.client_ip, session.tls_version))

    # -- transactions -----------------------------------------------------------------

    def _key(self, pid: str | None, ip: str) -> str:
        return pid if pid is not None else f"ip:{ip}"

    def _pending_owner(self, pid: str | None, ip: str) -> _Session:
        """Where refusals wait: the pid's session, or (without +pid) a pseudo-session per IP."""
        session = self._session(pid, ip)
        if session is not None:
            return session
        key = self._key(None, ip)
        owner = self._sessions.get(key)
        if owner is None:
            owner = _Session(ip, had_mail=True)
            evicted = self._sessions.put(key, owner)
            if evicted is not None:
                self._flush(evicted[1])
        return owner

    def _flush(self, owner: _Session) -> None:
        pending, owner.pending = owner.pending, None
        if pending is not None:
            tls = owner.tls_version or pending.tls_version
            self.emit(
                TransactionSeen(
                    owner.client_ip, tls, pending.sender, refused=tuple(pending.refused)
                )
            )

    def _take_refusals(self, owner: _Session, sender: str) -> list[tuple[str, bool]]:
        pending = owner.pending
        if pending is None:
            return []
        if pending.sender == sender:
            owner.pending = None
            return pending.refused
        self._flush(owner)
        return []

    def _host(self, body: str) -> str:
        h = HOST.search(body)
        return h.group(1) if h else ""

    def _received(self, pid: str | None, body: str) -> None:
        proto = PROTO.search(body)
        if proto is None or "smtp" not in proto.group(1) or " H=" not in body:
            return  # local submission or a bounce Exim wrote itself
        ip = self._host(body)
        sender = body[3:].split(" ", 1)[0]
        sender = "" if sender == "<>" else sender
        owner = self._pending_owner(pid, ip)
        owner.had_mail = True
        tls = self._note_tls(self._session(pid, ip), body)
        refused = self._take_refusals(owner, sender)
        recipients: tuple[str, ...] = ()
        at = body.find(" for ")
        if at >= 0:
            recipients = tuple(r for r in body[at + 5 :].split() if "=" not in r)
        self.emit(
            TransactionSeen(
                ip,
                tls,
                sender,
                recipients=recipients,
                recipient_count=len(recipients),
                refused=tuple(refused),
                verdict=Verdict.ACCEPTED,
            )
        )

    def _rejected_after_data(self, pid: str | None, body: str) -> None:
        ip = self._host(body)
        f = SENDER.search(body)
        sender = f.group(1) if f else None
        owner = self._pending_owner(pid, ip)
        owner.had_mail = True
        tls = self._note_tls(self._session(pid, ip), body)
        refused = self._take_refusals(owner, sender or "")
        temporary = "temporarily rejected after DATA" in body
        self.emit(
            TransactionSeen(
                ip,
                tls,
                sender,
                refused=tuple(refused),
                verdict=Verdict.UNKNOWN if temporary else Verdict.REJECTED,
            )
        )

    def _rejected_rcpt(self, pid: str | None, body: str) -> None:
        ip = self._host(body)
        f = SENDER.search(body)
        r = REJECTED_RCPT.search(body)
        if r is None:
            self.stats.unparsed += 1
            return
        sender = f.group(1) if f else ""
        owner = self._pending_owner(pid, ip)
        owner.had_mail = True
        tls = self._note_tls(self._session(pid, ip), body)
        pending = owner.pending
        if pending is None or pending.sender != sender:
            self._flush(owner)
            pending = owner.pending = _Refusals(sender, tls)
        pending.refused.append((r.group(1), bool(RELAY.search(r.group(2)))))

    def open_state(self) -> int:
        """Sessions held open right now (bounded by the caps)."""
        return len(self._sessions) + len(self._closing)

    # -- end of input -------------------------------------------------------------------------

    def finish(self) -> None:
        """Close what the log left open (sessions still connected, refusals not yet tied)."""
        for key, session in self._sessions.drain():
            if key.startswith("ip:"):
                self._flush(session)
            else:
                self.stats.unattributed["session_without_end"] += 1
                self._end(session)
        for _, session in self._closing.drain():
            self.emit(SessionSeen(session.client_ip, session.tls_version))
