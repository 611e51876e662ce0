"""The `mxgate report` table, pinned by a golden file (`pytest --update-golden` rewrites it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mxgate_gateway.config.model import Mode
from mxgate_gateway.policy import Action, Decision, Stage
from mxgate_gateway.report import LossReport, ReportDocument, merge, render_table

GOLDEN = Path(__file__).with_name("golden") / "report_table.txt"


def two_gateways() -> list[ReportDocument]:
    """Gateway A: a heavy plaintext sender among 400 one-off ones; gateway B: TLS and a rule."""
    now = [10_000.0]
    a = LossReport(lambda: now[0], top_capacity=20, top_shown=5)
    for i in range(400):
        a.record_session(None)
        a.record_message(
            tls_version=None,
            sender_domain="bulk.example" if i % 4 == 0 else f"oneoff{i}.example",
            client_ip=f"198.51.{i % 3}.{i % 200}",
            upstream_accepted=i % 5 != 0,
            recipients=1,
        )
        a.record_decision(Decision(Action.WOULD_REFUSE, "(default)", Mode.AUDIT, None))
    now[0] += 2 * 3600  # everything above is now outside A's window
    b = LossReport(lambda: now[0], top_capacity=20, top_shown=5)
    for version in ("TLSv1.3", "TLSv1.2", "TLSv1.3"):
        b.record_session(version)
        b.record_message(
            tls_version=version,
            sender_domain="ok.example",
            client_ip="2001:db8::1",
            upstream_accepted=True,
            recipients=2,
        )
        b.record_decision(Decision(Action.ACCEPT, "(default)", Mode.AUDIT, None))
    b.record_decision(
        Decision(Action.REFUSE, "partners", Mode.REQUIRE, (530, "5.7.0 x"), Stage.RCPT)
    )
    return [a.snapshot(), b.snapshot()]


def test_report_table_matches_golden(request: pytest.FixtureRequest) -> None:
    """Two gateways merged: TLS mix, approximate counterfactual (~), per-rule rows, ± top lists."""
    text = render_table(merge(two_gateways(), top_shown=5))
    if request.config.getoption("--update-golden", default=False):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), "missing golden file; run pytest --update-golden"
    assert text == GOLDEN.read_text(), "report table differs from golden (pytest --update-golden)"
