"""Traffic generator for the loss report: a known mix of TLS 1.3, TLS 1.2 and plaintext mail.

Each message is its own SMTP session from a 127.x.y.z source address (loopback,
so client networks vary without any setup) and a class-specific sender domain;
every ``reject_every``-th message carries ``X-Mxgate-Traffic: reject`` for an
upstream configured to refuse it. It returns a ledger of what was sent and how
each message ended, so a test can compare /report with the truth. Bounded in
count and concurrency; it must not start servers or read the gateway's state.

    python -m bench.traffic --smtp 127.0.0.1:2525 --tls13 30 --tls12 20 --plaintext 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Any

import aiosmtplib

REJECT_HEADER = "X-Mxgate-Traffic"
# Postfix header_checks line that makes the upstream refuse marked messages at end of DATA.
POSTFIX_HEADER_CHECK = f"/^{REJECT_HEADER}: reject/ REJECT 5.7.1 refused by the upstream (marker)"
CLASSES = ("TLSv1.3", "TLSv1.2", "none")
_OCTET = {"TLSv1.3": 13, "TLSv1.2": 12, "none": 100}


@dataclass(frozen=True)
class Mix:
    """How many messages of each kind, from how many distinct senders and networks."""

    tls13: int = 30
    tls12: int = 20
    plaintext: int = 10
    sender_domains: int = 5  # distinct sender domains per class
    client_networks: int = 3  # distinct client /24 networks per class
    reject_every: int = 4  # every n-th message of a class asks the upstream to refuse it; 0: none
    skew: bool = False  # Zipf-like sender domains (domain k gets ~1/(k+1) of the mail), not uniform
    recipient: str = "user@accepted.test"
    concurrency: int = 4

    def domain_index(self, i: int, count: int) -> int:
        """Which sender domain message ``i`` of ``count`` uses: round robin, or Zipf-like."""
        n = self.sender_domains
        if not self.skew:
            return i % n
        weights = [1 / (k + 1) for k in range(n)]
        x = (i + 0.5) / count * sum(weights)
        for k, w in enumerate(weights):
            x -= w
            if x < 0:
                return k
        return n - 1

    def messages(self) -> list[Planned]:
        out: list[Planned] = []
        for cls, count in zip(CLASSES, (self.tls13, self.tls12, self.plaintext), strict=True):
            for i in range(count):
                octet = _OCTET[cls]
                label = {"TLSv1.3": "tls13", "TLSv1.2": "tls12", "none": "plain"}[cls]
                out.append(
                    Planned(
                        tls=cls,
                        sender=f"sender{i}@{label}-{self.domain_index(i, count)}.traffic.test",
                        client_ip=f"127.{octet}.{i % self.client_networks}.{1 + i % 250}",
                        reject=bool(self.reject_every) and i % self.reject_every == 0,
                    )
                )
        return out


@dataclass(frozen=True)
class Planned:
    tls: str  # "TLSv1.3", "TLSv1.2" or "none"
    sender: str
    client_ip: str
    reject: bool


@dataclass
class Ledger:
    """What was sent and how each message ended, by TLS class.

    Outcomes: ``accepted`` (250 after DATA), ``upstream_rejected`` (5xx after
    DATA), ``tempfailed`` (4xx after DATA), ``refused_mail`` / ``refused_rcpt``
    (the gateway refused before DATA), ``error`` (connection or TLS failure).
    """

    sent: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    replies: Counter[str] = field(default_factory=Counter)  # "530 5.7.0" style, refusals only
    plaintext_sender_domains: set[str] = field(default_factory=set)
    plaintext_client_networks: set[str] = field(default_factory=set)

    def note(self, msg: Planned, outcome: str, reply: str | None = None) -> None:
        self.sent[msg.tls] += 1
        self.outcomes.setdefault(msg.tls, Counter())[outcome] += 1
        if reply:
            self.replies[reply] += 1
        if msg.tls == "none" and outcome in ("accepted", "upstream_rejected", "tempfailed"):
            self.plaintext_sender_domains.add(msg.sender.rsplit("@", 1)[1])
            self.plaintext_client_networks.add(msg.client_ip.rsplit(".", 1)[0] + ".0/24")

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "outcomes": {k: dict(v) for k, v in self.outcomes.items()},
            "refusal_replies": dict(self.replies),
            "plaintext_sender_domains": sorted(self.plaintext_sender_domains),
            "plaintext_client_networks": sorted(self.plaintext_client_networks),
        }


def client_context(tls: str) -> ssl.SSLContext:
    """A client context pinned to exactly one TLS version (loopback: no verification)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    version = ssl.TLSVersion.TLSv1_3 if tls == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def build_message(msg: Planned, recipient: str, n: int) -> bytes:
    em = EmailMessage()
    em["From"] = msg.sender
    em["To"] = recipient
    em["Subject"] = f"traffic {n} ({msg.tls})"
    if msg.reject:
        em[REJECT_HEADER] = "reject"
    em.set_content(f"Message {n} of the mxgate traffic generator.\n")
    return em.as_bytes()


def _code(exc: aiosmtplib.SMTPResponseException) -> str:
    enhanced = exc.message.split(" ", 1)[0] if exc.message[:1].isdigit() else ""
    return f"{exc.code} {enhanced}".strip()


async def send_one(host: str, port: int, msg: Planned, mix: Mix, n: int, ledger: Ledger) -> None:
    smtp = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        source_address=(msg.client_ip, 0),
        start_tls=False,
        use_tls=False,
        timeout=30,
    )
    try:
        await smtp.connect()
        if msg.tls != "none":
            await smtp.starttls(tls_context=client_context(msg.tls))
        try:
            await smtp.mail(msg.sender)
        except aiosmtplib.SMTPResponseException as exc:
            return ledger.note(msg, "refused_mail", _code(exc))
        try:
            await smtp.rcpt(mix.recipient)
        except aiosmtplib.SMTPResponseException as exc:
            return ledger.note(msg, "refused_rcpt", _code(exc))
        try:
            await smtp.data(build_message(msg, mix.recipient, n))
        except aiosmtplib.SMTPResponseException as exc:
            outcome = "tempfailed" if 400 <= exc.code < 500 else "upstream_rejected"
            return ledger.note(msg, outcome)
        ledger.note(msg, "accepted")
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError):
        ledger.note(msg, "error")
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


async def run_traffic(host: str, port: int, mix: Mix) -> Ledger:
    """Send the whole mix with at most ``mix.concurrency`` sessions at a time."""
    ledger = Ledger()
    gate = asyncio.Semaphore(mix.concurrency)

    async def one(n: int, msg: Planned) -> None:
        async with gate:
            await send_one(host, port, msg, mix, n, ledger)

    async with asyncio.TaskGroup() as tg:
        for n, msg in enumerate(mix.messages()):
            tg.create_task(one(n, msg))
    return ledger


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.traffic", description=__doc__.split("\n")[0])
    p.add_argument("--smtp", default="127.0.0.1:2525", help="gateway host:port")
    defaults = Mix()
    for name in asdict(defaults):
        value = getattr(defaults, name)
        if isinstance(value, bool):
            p.add_argument(f"--{name.replace('_', '-')}", action="store_true")
        else:
            p.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    p.add_argument("--json", action="store_true", help="print the ledger as JSON")
    args = p.parse_args(argv)
    host, _, port = args.smtp.rpartition(":")
    mix = Mix(**{name: getattr(args, name) for name in asdict(defaults)})
    ledger = asyncio.run(run_traffic(host, int(port), mix))
    if args.json:
        print(json.dumps(ledger.to_json(), indent=2))
    else:
        for cls in CLASSES:
            outcomes = ", ".join(
                f"{k} {v}" for k, v in sorted(ledger.outcomes.get(cls, {}).items())
            )
            print(f"{cls:8} sent {ledger.sent[cls]:4}: {outcomes}")
        if ledger.replies:
            print("refusals: " + ", ".join(f"{k} x{v}" for k, v in sorted(ledger.replies.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
