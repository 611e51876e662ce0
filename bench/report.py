"""Render results as Markdown tables, with ratios to ``direct`` and Haraka, and judge targets.

Pure functions of a list of Results: no I/O, no clocks. Ratios are computed
within one workload of one run (the only fair comparison on a shared box).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.runner import Result

MiB_KIB = 1024


def _f(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _ratio(v: float | None, ref: float | None) -> str:
    return "-" if v is None or not ref else f"{v / ref:.2f}x"


def _find(results: Sequence[Result], workload: str, target: str) -> Result | None:
    for r in results:
        if r.workload == workload and r.target == target and not r.skipped:
            return r
    return None


def _status(r: Result) -> str:
    if r.skipped:
        return f"skipped: {r.skipped}"
    if r.sink_mismatch:
        return f"**FAILED**: {r.sink_mismatch}"
    if r.failed or r.errors:
        first = r.errors[0] if r.errors else ""
        return f"**FAILED**: {r.failed} failed {first}".strip()
    return f"ok ({r.sink}/{r.ok} at sink)"


def table(results: Sequence[Result]) -> str:
    """One row per (workload, target) in run order."""
    head = (
        "| workload | target | msgs | msgs/s | vs direct | vs Haraka | p50 ms | p99 ms "
        "| CPU ms/msg | CPU vs Haraka | peak RSS MiB | KiB/idle conn | sink check |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n"
    )
    rows = []
    for r in results:
        if r.skipped:
            continue
        direct, har = _find(results, r.workload, "direct"), _find(results, r.workload, "haraka")
        d_rate = direct.msgs_per_s if direct else None
        h_rate = har.msgs_per_s if har else None
        h_cpu = har.cpu_ms_per_msg if har else None
        idle = r.kib_per_idle_conn
        h_idle = har.kib_per_idle_conn if har else None
        idle_cell = "-" if idle is None else f"{idle:.1f} ({_ratio(idle, h_idle)} Haraka)"
        rows.append(
            f"| {r.workload} | {r.target} | {r.ok} | {_f(r.msgs_per_s)} "
            f"| {_ratio(r.msgs_per_s, d_rate)} | {_ratio(r.msgs_per_s, h_rate)} "
            f"| {_f(r.p50_ms, 1)} | {_f(r.p99_ms, 1)} | {_f(r.cpu_ms_per_msg, 2)} "
            f"| {_ratio(r.cpu_ms_per_msg, h_cpu)} | {_f(r.peak_kib / MiB_KIB, 1)} "
            f"| {idle_cell} | {_status(r)} |"
        )
    return head + "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Verdict:
    """One target of issue 9: what it asks, what was measured, met or not."""

    target: str
    measured: str
    met: bool | None  # None: not measured in this run


def _v(target: str, value: float | None, ok: bool | None, fmt: str) -> Verdict:
    if value is None or ok is None:
        return Verdict(target, "not measured", None)
    return Verdict(target, fmt.format(value), ok)


def verdicts(results: Sequence[Result], subject: str = "mxgate") -> list[Verdict]:
    """Judge ``subject`` against issue 13's targets from this run's results."""
    out: list[Verdict] = []
    a = _find(results, "a", subject)
    cpu_a = a.cpu_ms_per_msg if a else None
    out.append(_v("plaintext CPU <= 0.4 ms/msg (a)", cpu_a,
                  cpu_a is not None and cpu_a <= 0.4, "{:.2f} ms"))  # fmt: skip
    rate_a = a.msgs_per_s if a else None
    out.append(_v("plaintext >= 2,000 msgs/s (a)", rate_a,
                  rate_a is not None and rate_a >= 2000, "{:,.0f} msgs/s"))  # fmt: skip
    for wid in ("c1-rsa", "c1-ecdsa"):
        r = _find(results, wid, subject)
        cpu = r.cpu_ms_per_msg if r else None
        out.append(_v(f"TLS session/msg CPU <= 1.2 ms ({wid})", cpu,
                      cpu is not None and cpu <= 1.2, "{:.2f} ms"))  # fmt: skip
    for wid in ("a-half", "a-lat"):
        lat, d_lat = _find(results, wid, subject), _find(results, wid, "direct")
        added = lat.p99_ms - d_lat.p99_ms if lat and d_lat and lat.p99_ms and d_lat.p99_ms else None
        out.append(_v(f"added p99 over direct <= 5 ms ({wid})", added,
                      added is not None and added <= 5, "{:+.1f} ms"))  # fmt: skip
    e = _find(results, "e", subject)
    idle = e.kib_per_idle_conn if e else None
    out.append(_v("<= 12 KiB RSS per idle connection (e)", idle,
                  idle is not None and idle <= 12, "{:.1f} KiB"))  # fmt: skip
    rss = _find(results, "a-rss", subject)
    series = rss.rss_series_kib if rss else ()
    spread = (max(series) - min(series)) / min(series) * 100 if len(series) > 1 else None
    out.append(_v("RSS flat (+-5%) over 3 runs of (a)", spread,
                  spread is not None and spread <= 5, "{:.1f}% spread"))  # fmt: skip
    f = _find(results, "f-25m", subject)
    peak = f.peak_kib / MiB_KIB if f and f.ok else None
    out.append(_v("25 MiB x 20: peak RSS <= 150 MiB (f-25m)", peak,
                  peak is not None and peak <= 150, "{:.0f} MiB"))  # fmt: skip
    one = _find(results, "f-25m-1", subject)
    growth = (one.peak_kib - one.rss_before_kib) / MiB_KIB if one and one.ok else None
    out.append(_v("1 x 25 MiB: RSS growth <= 10 MiB (f-25m-1)", growth,
                  growth is not None and growth <= 10, "{:.1f} MiB"))  # fmt: skip
    return out


def verdict_table(vs: Sequence[Verdict], subject: str = "mxgate") -> str:
    lines = [f"| target ({subject}) | measured | met |", "|---|---|---|"]
    for v in vs:
        met = "-" if v.met is None else ("yes" if v.met else "**no**")
        lines.append(f"| {v.target} | {v.measured} | {met} |")
    return "\n".join(lines) + "\n"


def skipped_lines(results: Sequence[Result]) -> str:
    return "".join(f"- {r.workload} on {r.target}: {r.skipped}\n" for r in results if r.skipped)
