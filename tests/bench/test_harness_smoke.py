"""Smoke test of the benchmark harness: its counting is right, not its timings (~25 s).

Real peers only: smtp-sink is the counted upstream, smtp-source and the asyncio
client send load, and the ``blackhole`` target (a second smtp-sink that is not the
counted upstream) shows that 250s which never reach the sink make a run fail.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from bench.loadgen import Load, make_body, percentile
from bench.runner import Result, run_one, sink_mismatch
from bench.source import completed
from bench.tls_upstream import parse_sent
from bench.workloads import Workload, workloads

from mtapeers.smtpsink import parse_count

pytestmark = pytest.mark.postfix
ROOT = Path(__file__).resolve().parents[2]
QUICK = {w.id: w for w in workloads(quick=True)}


@pytest.mark.parametrize(
    ("client_250s", "sink_count", "fails"),
    [(10, 10, False), (0, 0, False), (10, 9, True), (10, 11, True), (10, 0, True)],
)
def test_a_run_fails_unless_the_sink_got_exactly_the_acknowledged_messages(
    client_250s: int, sink_count: int, fails: bool
) -> None:
    """The sink count must equal the 250s the clients got, in either direction."""
    assert (sink_mismatch(client_250s, sink_count) is not None) is fails
    result = Result("t", "w", ok=client_250s, sink=sink_count)
    assert result.passed is not fails


@pytest.mark.parametrize(
    ("output", "count"),
    [(b"", 0), (b"sess=0 quit=0 mesg=1\rsess=1 quit=1 mesg=12\r", 12), (b"mesg=3", 3)],
)
def test_the_sink_count_is_the_last_counter_smtp_sink_printed(output: bytes, count: int) -> None:
    """smtp-sink -c prints running counters; the last mesg= is the total."""
    assert parse_count(output) == count


def test_the_tls_upstream_counts_what_postfixs_discard_agent_delivered() -> None:
    """Postfix logs one status=sent per delivered recipient; deferrals do not count."""
    log = (
        b"postfix/discard[9]: 4Q: to=<a@accepted.test>, relay=none, status=sent (bench)\n"
        b"postfix/discard[9]: 5R: to=<b@accepted.test>, relay=none, status=sent (bench)\n"
        b"postfix/qmgr[8]: 6S: to=<c@accepted.test>, status=deferred (busy)\n"
    )
    assert parse_sent(log) == 2


@pytest.mark.parametrize(("output", "count"), [(b"", 0), (b"1\r2\r3\r\n", 3), (b"7\r", 7)])
def test_smtp_source_progress_is_the_last_counter(output: bytes, count: int) -> None:
    """smtp-source -c prints one counter per completed DATA."""
    assert completed(output) == count


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, 0.0), ([5.0], 99, 5.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([*range(1, 101)], 99, 99)],
)
def test_percentiles_are_nearest_rank(values: list[float], q: float, expected: float) -> None:
    """p50/p99 use the nearest-rank definition."""
    assert percentile(values, q) == expected


@pytest.mark.parametrize("size", [4096, 100 * 1024])
def test_generated_messages_are_legal_smtp_text(size: int) -> None:
    """The load generator's body has CRLF lines under 1000 octets and no line needing a dot."""
    body = make_body(size)
    lines = body.split(b"\r\n")
    assert body.endswith(b"\r\n")
    assert all(len(line) <= 998 and not line.startswith(b".") for line in lines)
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert size <= len(body) < size + 200


async def test_direct_run_counts_every_message_at_the_sink(tmp_path: Path) -> None:
    """Load straight into the sink: every 250 the client got is a message the sink counted."""
    result = await run_one("direct", QUICK["a"], tmp_path)
    assert result.errors == ()
    assert result.ok == 200
    assert result.sink == result.ok
    assert result.passed


async def test_acknowledged_mail_that_never_reaches_the_sink_is_a_failed_run(
    tmp_path: Path,
) -> None:
    """A target that answers 250 but relays nothing (blackhole) fails the sink check."""
    w = Workload("a-lat", "asyncio client", "load", load=Load(messages=30, sessions=3))
    result = await run_one("blackhole", w, tmp_path)
    assert result.ok == 30
    assert result.sink == 0
    assert result.sink_mismatch is not None
    assert not result.passed


def test_the_cli_reports_a_table_and_exits_nonzero_on_a_failed_run(tmp_path: Path) -> None:
    """`python -m bench --quick` writes the table; a blackhole run makes it exit 1."""
    cmd = [sys.executable, "-m", "bench", "--quick", "--workloads", "d", "--out", str(tmp_path)]
    good = subprocess.run(
        [*cmd, "--targets", "direct"], check=False, cwd=ROOT, capture_output=True, timeout=60
    )
    assert good.returncode == 0, good.stderr.decode()[-2000:]
    table = (tmp_path / "results.md").read_text()
    assert "| d | direct | 20 |" in table
    assert "ok (20/20 at sink)" in table
    bad = subprocess.run(
        [*cmd, "--targets", "blackhole"], check=False, cwd=ROOT, capture_output=True, timeout=60
    )
    assert bad.returncode == 1
    assert "FAILED" in (tmp_path / "results.md").read_text()


@pytest.mark.skipif(
    importlib.util.find_spec("mxgate_gateway.cli") is None, reason="gateway CLI not written yet"
)
async def test_mxgate_relays_every_acknowledged_message_to_the_sink(tmp_path: Path) -> None:
    """Through the gateway (the headline config: upstream TLS opportunistic to a Postfix
    offering STARTTLS), the upstream counts exactly the messages the clients got 250 for."""
    result = await run_one("mxgate", QUICK["a"], tmp_path)
    assert result.errors == ()
    assert result.ok == 200
    assert result.sink == result.ok
