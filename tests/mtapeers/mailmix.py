"""A seeded mix of real SMTP sessions, and the truth of what the server answered.

Plaintext and STARTTLS sessions, multi-recipient messages with some recipients
refused, relay attempts, sessions without mail, failed TLS handshakes, the null
sender, several transactions per session. ``Truth`` records, from the client's
side only, what each session negotiated and what the server replied: the
numbers ``mxgate estimate`` must find in the server's log.
"""

from __future__ import annotations

import random
import smtplib
import socket
import ssl
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SENDERS = ("a@alpha.test", "b@beta.test", "c@gamma.test", "pay@bank.test", "")
LOCAL = ("u1@accepted.test", "u2@accepted.test", "v1@vip.test", "v2@vip.test")
REFUSED = ("nosuch1@accepted.test", "nosuch2@vip.test")
RELAY = ("x@relay.test", "y@elsewhere.test")
KINDS = ("mail", "mail", "mail", "multi", "relay", "nomail", "failtls")


@dataclass(frozen=True)
class Transaction:
    """One MAIL transaction as the client saw it."""

    tls: str  # "TLSv1.3", or "none"
    sender: str
    accepted: tuple[str, ...]
    refused: tuple[tuple[str, bool], ...]  # (recipient, refused as relay)
    data_code: int | None  # the reply to the end of DATA; None if DATA was not sent


@dataclass
class Truth:
    """What the server answered, summed the way the loss report counts."""

    sessions: Counter[str] = field(default_factory=Counter)
    transactions: list[Transaction] = field(default_factory=list)

    @property
    def messages(self) -> Counter[str]:
        return Counter(t.tls for t in self.transactions if t.data_code is not None)

    @property
    def recipients(self) -> Counter[str]:
        """Recipients of the messages the server accepted (a log names no others)."""
        out: Counter[str] = Counter()
        for t in self.transactions:
            if t.data_code == 250:
                out[t.tls] += len(t.accepted)
        return out

    @property
    def upstream(self) -> Counter[tuple[str, str]]:
        out: Counter[tuple[str, str]] = Counter()
        for t in self.transactions:
            if t.data_code is not None:
                verdict = {2: "accepted", 5: "rejected"}.get(t.data_code // 100, "unknown")
                out[(t.tls, verdict)] += 1
        return out

    @property
    def plaintext_senders(self) -> Counter[str]:
        return Counter(
            t.sender.rpartition("@")[2] or "<>"
            for t in self.transactions
            if t.tls == "none" and t.data_code is not None
        )


def _context(ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    return ctx


def _transaction(
    client: smtplib.SMTP, tls: str, sender: str, rcpts: list[str], spam: bool
) -> Transaction:
    code, _ = client.mail(sender)
    assert code == 250, f"MAIL refused: {code}"
    accepted, refused = [], []
    for rcpt in rcpts:
        code, _ = client.rcpt(rcpt)
        if code == 250:
            accepted.append(rcpt)
        else:
            refused.append((rcpt, rcpt in RELAY))
    data_code = None
    if accepted:
        subject = "SPAM offer" if spam else "hello"
        data_code, _ = client.data(f"Subject: {subject}\r\n\r\nmix body\r\n".encode())
    else:
        client.rset()
    return Transaction(tls, sender, tuple(accepted), tuple(refused), data_code)


def _failed_handshake(port: int) -> None:
    """STARTTLS accepted, then bytes that are not a TLS ClientHello: the handshake fails."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        sock.sendall(b"EHLO broken.test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220")
        sock.sendall(b"\x16\x03\x01\x40\x00not a client hello\r\n" * 4)
        sock.shutdown(socket.SHUT_WR)
        with_timeout = sock.recv(4096)  # the server's alert or EOF: it gave up
        del with_timeout


def drive(port: int, ca: Path, seed: int, sessions: int = 30) -> Truth:
    """Run ``sessions`` seeded sessions against 127.0.0.1:``port``; return what was answered."""
    rng = random.Random(seed)
    truth = Truth()
    for _ in range(sessions):
        kind = rng.choice(KINDS)
        if kind == "failtls":
            _failed_handshake(port)
            truth.sessions["none"] += 1
            continue
        client = smtplib.SMTP("127.0.0.1", port, local_hostname="mix.test", timeout=10)
        tls = "none"
        if rng.random() < 0.5:
            client.starttls(context=_context(ca))
            client.ehlo("mix.test")
            assert isinstance(client.sock, ssl.SSLSocket)
            tls = client.sock.version() or "other"
        else:
            client.ehlo("mix.test")
        if kind == "relay":
            rcpts = rng.sample(RELAY, rng.randint(1, 2))
            truth.transactions.append(_transaction(client, tls, rng.choice(SENDERS), rcpts, False))
        elif kind in ("mail", "multi"):
            senders = rng.sample(SENDERS, 2 if kind == "multi" else 1)  # distinct per session
            for sender in senders:
                rcpts = rng.sample(LOCAL + REFUSED, rng.randint(1, 3))
                if rng.random() < 0.15:
                    rcpts = rng.sample(REFUSED, rng.randint(1, 2))  # every recipient refused
                spam = rng.random() < 0.2
                truth.transactions.append(_transaction(client, tls, sender, rcpts, spam))
        client.quit()
        truth.sessions[tls] += 1
    return truth
