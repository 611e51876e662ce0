"""Run one workload against one target with a fresh sink, and measure it.

Per run: start a fresh smtp-sink, start the target pointed at it, warm up,
snapshot the target's process tree (/proc), drive the load, snapshot again,
and count what reached the sink. It must not format tables or judge targets.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import profile as profiling
from bench.certs import make_cert
from bench.loadgen import Load, LoadResult, ReplyError, hold_idle, percentile, run_load
from bench.procs import Usage, quiesce
from bench.source import run_source
from bench.targets import TARGETS, Running, start_target
from bench.tls_upstream import PostfixTLSUpstream
from bench.workloads import Workload
from mtapeers.smtpsink import SmtpSink


@dataclass(frozen=True)
class Result:
    """What one (target, workload) run measured. ``ok`` = 250s the clients got."""

    target: str
    workload: str
    ok: int = 0
    failed: int = 0
    sink: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    peak_kib: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    idle_conns: int = 0
    rss_series_kib: tuple[int, ...] = ()
    errors: tuple[str, ...] = ()
    skipped: str = ""

    @property
    def sink_mismatch(self) -> str | None:
        return sink_mismatch(self.ok, self.sink)

    @property
    def passed(self) -> bool:
        return not self.skipped and not self.failed and not self.errors and not self.sink_mismatch

    @property
    def msgs_per_s(self) -> float | None:
        return self.ok / self.seconds if self.ok and self.seconds > 0 else None

    @property
    def cpu_ms_per_msg(self) -> float | None:
        return 1000 * self.cpu_s / self.ok if self.ok else None

    @property
    def kib_per_idle_conn(self) -> float | None:
        if not self.idle_conns:
            return None
        return (self.rss_after_kib - self.rss_before_kib) / self.idle_conns


def sink_mismatch(client_250s: int, sink_count: int) -> str | None:
    """Why a run failed when the sink did not get exactly the messages clients got 250 for."""
    if client_250s == sink_count:
        return None
    return f"sink received {sink_count} but clients got {client_250s} x 250"


@dataclass
class _Acc:
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    def add(self, r: LoadResult) -> None:
        self.ok += r.ok
        self.failed += r.failed
        self.latencies += r.latencies
        self.errors += r.errors


async def _drive(w: Workload, t: Running, acc: _Acc) -> None:
    for _ in range(w.repeats):
        if w.source is not None:
            acc.add(await run_source(t.host, t.port, w.source, w.limit))
        elif w.load is not None:
            acc.add(await run_load(t.host, t.port, w.load, w.limit))
        acc.rss.append(Usage.of(t.pid).rss_kib)


async def run_one(target: str, w: Workload, workdir: Path, profile: bool = False) -> Result:
    """Run workload ``w`` on a freshly started ``target``; never raises for target failures."""
    wd = workdir / f"{w.id}-{target}"
    cert = make_cert(workdir, w.cert)
    spec = TARGETS.get(target)
    sink: SmtpSink | PostfixTLSUpstream
    if spec is not None and spec.upstream == "postfix-tls":
        try:
            sink = await PostfixTLSUpstream.start(cert)
        except (OSError, RuntimeError, ImportError) as exc:
            return Result(target, w.id, errors=(f"TLS upstream failed: {exc}"[:400],))
    else:
        sink = await SmtpSink.start(wd, max_conns=4096)
    try:
        try:
            running = await start_target(target, sink, wd, cert)
        except (OSError, RuntimeError) as exc:
            return Result(target, w.id, errors=(f"start failed: {exc}"[:400],))
        try:
            return await _measure(w, running, sink, wd if profile else None)
        finally:
            await running.stop()
    finally:
        await sink.stop()


async def _measure(
    w: Workload, t: Running, sink: SmtpSink | PostfixTLSUpstream, profile_dir: Path | None
) -> Result:
    warm = await run_load(t.host, t.port, Load(messages=5, sessions=1), 30)
    if warm.failed:
        return Result(t.name, w.id, errors=tuple(f"warm-up: {e}" for e in warm.errors))
    await quiesce(t.pid)  # start-up work (imports, JIT, key loading) is not the workload's
    spy = None
    if profile_dir is not None and t.name.startswith("mxgate"):
        spy = await profiling.start(t.pid, profile_dir / "profile.txt")
    base = sink.count()
    before, client0, t0 = Usage.of(t.pid), os.times(), time.perf_counter()
    acc = _Acc()
    idle = 0
    if w.driver == "idle":
        idle, held = await _hold(w, t, acc)
        after = held or Usage.of(t.pid)
    else:
        await _drive(w, t, acc)
        after = Usage.of(t.pid)
    seconds = time.perf_counter() - t0
    client1 = os.times()
    if spy is not None:
        await profiling.stop(spy)
    received = await sink.settled_count(base + acc.ok) - base
    lat = acc.latencies
    return Result(
        target=t.name,
        workload=w.id,
        ok=acc.ok,
        failed=acc.failed,
        sink=received,
        seconds=seconds,
        cpu_s=after.cpu_s - before.cpu_s,
        client_cpu_s=(client1.user + client1.system) - (client0.user + client0.system),
        rss_before_kib=before.rss_kib,
        rss_after_kib=after.rss_kib,
        peak_kib=after.peak_kib,
        p50_ms=1000 * percentile(lat, 50) if lat else None,
        p99_ms=1000 * percentile(lat, 99) if lat else None,
        idle_conns=idle,
        rss_series_kib=tuple(acc.rss) if w.repeats > 1 else (),
        errors=tuple(acc.errors[:5]),
    )


async def _hold(w: Workload, t: Running, acc: _Acc) -> tuple[int, Usage | None]:
    """Hold ``w.idle`` sessions open, measure once they settle, then close them."""
    try:
        sessions = await hold_idle(t.host, t.port, w.idle, w.limit)
    except (OSError, TimeoutError, ValueError, ReplyError) as exc:
        acc.failed += 1
        acc.errors.append(f"idle connections: {type(exc).__name__}: {exc}")
        return 0, None
    await asyncio.sleep(1.0)
    held = Usage.of(t.pid)
    await asyncio.gather(*(s.close() for s in sessions))
    return len(sessions), held
