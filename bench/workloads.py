"""The workloads of issue 9, (a)-(f), in a full and a ``--quick`` size.

Pure data: what each workload sends, with which client, over TLS or not. It
must not start anything; sizes are bounded so the full run stays well under
ten minutes on a 2-core box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.certs import KeyKind
from bench.loadgen import Load
from bench.source import SourceLoad

KiB = 1024
MiB = 1024 * KiB
BIG = 25 * MiB - 64 * KiB  # "25 MiB": the default SIZE limit (25 MiB) less room for headers


@dataclass(frozen=True)
class Workload:
    """One measured workload; ``driver`` says which client sends it."""

    id: str
    title: str
    driver: Literal["source", "load", "idle"]
    source: SourceLoad | None = None
    load: Load | None = None
    idle: int = 0  # connections held open (driver "idle")
    cert: KeyKind = "rsa"
    repeats: int = 1  # same load N times in one target process (RSS flatness)
    only: tuple[str, ...] = ()  # restrict to these targets (empty: all)
    limit: float = 150.0  # seconds, per repeat

    @property
    def tls(self) -> bool:
        return self.load is not None and self.load.starttls

    @property
    def messages(self) -> int:
        per = self.source.messages if self.source else self.load.messages if self.load else 0
        return per * self.repeats


def _full() -> list[Workload]:
    return [
        Workload("a", "20 sessions x 100 msgs, 4 KiB, plaintext (smtp-source)", "source",
                 source=SourceLoad(messages=2000, sessions=20)),
        Workload("a-lat", "(a) from the asyncio client: per-message latency", "load",
                 load=Load(messages=2000, sessions=20, per_session=100)),
        Workload("a-rss", "(a) three times in one process: RSS after each", "source",
                 source=SourceLoad(messages=2000, sessions=20), repeats=3,
                 only=("mxgate", "mxgate-untuned", "haraka")),
        Workload("b", "one session per message, 20 concurrent, plaintext (smtp-source)", "source",
                 source=SourceLoad(messages=1000, sessions=20, reuse=False)),
        Workload("c", "STARTTLS, 20 sessions x 50 msgs, 4 KiB (RSA-2048)", "load",
                 load=Load(messages=1000, sessions=20, per_session=50, starttls=True)),
        Workload("c1-rsa", "STARTTLS, new session per message, 20 concurrent (RSA-2048)",
                 "load", load=Load(messages=400, sessions=20, per_session=1, starttls=True)),
        Workload("c1-ecdsa", "STARTTLS, new session per message, 20 concurrent (ECDSA P-256)",
                 "load", load=Load(messages=400, sessions=20, per_session=1, starttls=True),
                 cert="ecdsa"),
        Workload("d", "one connection, serial: the latency floor", "load",
                 load=Load(messages=300, sessions=1)),
        Workload("e", "1,000 idle connections (after EHLO)", "idle", idle=1000),
        Workload("f-100k", "100 KiB messages, 20 sessions x 10", "load",
                 load=Load(messages=200, sessions=20, per_session=10, size=100 * KiB)),
        Workload("f-5m", "5 MiB messages, 20 concurrent, one each", "load",
                 load=Load(messages=20, sessions=20, per_session=1, size=5 * MiB, timeout=60)),
        Workload("f-25m", "25 MiB messages, 20 concurrent, one each", "load",
                 load=Load(messages=20, sessions=20, per_session=1, size=BIG, timeout=120),
                 only=("direct", "mxgate", "mxgate-plain", "mxgate-untuned"), limit=240.0),
        Workload("f-25m-1", "one 25 MiB message: RSS growth", "load",
                 load=Load(messages=1, sessions=1, per_session=1, size=BIG, timeout=120),
                 only=("direct", "mxgate", "mxgate-plain", "mxgate-untuned")),
        Workload("a-half", "(a-lat) at half the concurrency (10 sessions): added p99", "load",
                 load=Load(messages=1000, sessions=10, per_session=100)),
    ]  # fmt: skip


def _quick() -> list[Workload]:
    return [
        Workload("a", "10 sessions x 20 msgs, 4 KiB, plaintext (smtp-source)", "source",
                 source=SourceLoad(messages=200, sessions=10)),
        Workload("a-lat", "(a) from the asyncio client: per-message latency", "load",
                 load=Load(messages=100, sessions=10, per_session=10)),
        Workload("b", "one session per message, 10 concurrent (smtp-source)", "source",
                 source=SourceLoad(messages=50, sessions=10, reuse=False)),
        Workload("c1-rsa", "STARTTLS, new session per message (RSA-2048)", "load",
                 load=Load(messages=20, sessions=5, per_session=1, starttls=True)),
        Workload("d", "one connection, serial", "load", load=Load(messages=20, sessions=1)),
        Workload("e", "50 idle connections", "idle", idle=50),
        Workload("f-100k", "100 KiB messages", "load",
                 load=Load(messages=10, sessions=5, size=100 * KiB)),
    ]  # fmt: skip


def workloads(quick: bool) -> list[Workload]:
    return _quick() if quick else _full()


def applies(workload: Workload, target: str, target_tls: bool) -> str | None:
    """Why ``workload`` is not run on ``target`` (None when it is)."""
    if workload.only and target not in workload.only:
        return "not measured on this target"
    if workload.tls and not target_tls:
        return "no STARTTLS (smtp-sink speaks plaintext only)"
    return None
