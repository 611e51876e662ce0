"""``python -m bench``: run every workload on every target, print and save the tables.

The composition root of the harness: parses options, installs uvloop for the
load generator when present, runs (workload x target) one after another within
a time budget, and writes ``results.md``/``results.json``. Exit 1 on any failed run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.profile import summarize
from bench.report import skipped_lines, table, verdict_table, verdicts
from bench.runner import Result, run_one
from bench.targets import TARGETS
from bench.workloads import applies, workloads


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small counts: a smoke test (~30 s)")
    p.add_argument(
        "--targets",
        default="direct,mxgate,mxgate-plain,mxgate-untuned,haraka",
        help="comma-separated",
    )
    p.add_argument("--workloads", default="", help="comma-separated ids (default: all)")
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="output directory")
    p.add_argument("--profile", action="store_true", help="py-spy the mxgate target per run")
    p.add_argument("--budget", type=float, default=900.0, help="stop starting runs after N s")
    return p.parse_args(argv)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = sys.version.split()[0]
    return f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}, Python {python}"


async def run_all(args: argparse.Namespace) -> list[Result]:
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in TARGETS:
            raise SystemExit(f"unknown target {t!r} (known: {', '.join(TARGETS)})")
    chosen = {w for w in args.workloads.split(",") if w}
    results: list[Result] = []
    started = time.monotonic()
    workdir = args.out.resolve() / "work"
    for w in workloads(args.quick):
        if chosen and w.id not in chosen:
            continue
        for t in targets:
            why = applies(w, t, TARGETS[t].tls)
            if why is None and time.monotonic() - started > args.budget:
                why = f"time budget of {args.budget:.0f} s spent"
            if why:
                results.append(Result(t, w.id, skipped=why))
                continue
            r = await run_one(t, w, workdir, profile=args.profile)
            stacks = workdir / f"{w.id}-{t}" / "profile.txt"
            if args.profile and stacks.exists():
                summary = args.out / f"profile-{w.id}-{t}.md"
                summary.write_text(f"# py-spy: {w.id} on {t}\n\n{summarize(stacks.read_text())}")
            results.append(r)
            rate = f"{r.msgs_per_s:,.0f} msgs/s" if r.msgs_per_s else ""
            cpu = f"{r.cpu_ms_per_msg:.2f} ms CPU/msg" if r.cpu_ms_per_msg else ""
            state = "ok" if r.passed else f"FAILED {r.sink_mismatch or ''} {r.errors[:1]}"
            print(f"  {w.id:9} {t:9} {rate:>16} {cpu:>18}  {state}", flush=True)
    return results


def render(results: list[Result], quick: bool, seconds: float) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "--quick" if quick else "full"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    out = f"Run {when} ({mode}, {seconds:.0f} s) on {machine()}; load average at the end {load}\n"
    out += f"\n{table(results)}\n"
    for subject in ("mxgate", "mxgate-plain", "mxgate-untuned"):
        if any(r.target == subject and not r.skipped for r in results):
            out += "\n" + verdict_table(verdicts(results, subject), subject)
    skipped = skipped_lines(results)
    return out + (f"\nNot measured:\n{skipped}" if skipped else "")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # noqa: PLC0415 - optional: a cheaper load generator when installed
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    t0 = time.monotonic()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        results = runner.run(run_all(args))
    text = render(results, args.quick, time.monotonic() - t0)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    data = [
        {**dataclasses.asdict(r), "passed": r.passed, "sink_mismatch": r.sink_mismatch}
        for r in results
    ]
    (args.out / "results.json").write_text(json.dumps(data, indent=1))
    print("\n" + text)
    failed = [r for r in results if not r.skipped and not r.passed]
    if failed:
        print(f"{len(failed)} run(s) FAILED", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
