"""`mxgate estimate` on logs written by real Postfix and Exim receivers for the same traffic.

A seeded mix of sessions (mtapeers.mailmix) goes to a private Postfix and to a
private Exim configured alike; each log must yield exactly what the servers
answered, and the two logs the same report. `--policy` replays both through the
real policy engine, with the expected decisions worked out by hand from the truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventually import eventually
from mtapeers.exim_receiver import RICH_SELECTOR, EximReceiver
from mtapeers.exim_receiver import available as exim_available
from mtapeers.mailmix import Truth, drive
from mtapeers.postfix import Postfix
from mtapeers.postfix import available as postfix_available

pytestmark = [pytest.mark.postfix, pytest.mark.slow]
SEED = 15
SESSIONS = 30
TLS_KEYS = ("TLSv1.3", "TLSv1.2", "none")

POLICY = """\
version: 1
mode: audit
rules:
  - id: bank
    mode: require
    scope: {sender_domains: [bank.test]}
  - id: vip
    mode: audit
    min_tls_version: "1.3"
    scope: {recipient_domains: [vip.test]}
"""


def estimate(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "mxgate_gateway.cli", "estimate", "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def postfix_log(
    tls_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Truth]]:
    """The seeded mix sent to a private Postfix; its log (after the readiness probe) and truth."""
    if not postfix_available():
        pytest.skip("Postfix is not installed (make test installs it)")
    tables = tmp_path_factory.mktemp("pfx-tables")
    tables.chmod(0o755)
    (tables / "rcpt.re").write_text("/^nosuch/ REJECT 5.1.1 unknown user\n")
    (tables / "header.re").write_text("/^Subject:.*SPAM/ REJECT spam refused\n")
    pfx = Postfix(
        "estimate",
        {
            "mynetworks": "192.0.2.1/32",  # not loopback: our client is an outsider
            "virtual_mailbox_domains": "accepted.test vip.test",
            "virtual_mailbox_maps": "static:box",
            "smtpd_tls_cert_file": str(tls_files["cert"]),
            "smtpd_tls_key_file": str(tls_files["key"]),
            "smtpd_tls_security_level": "may",
            "smtpd_tls_loglevel": "1",
            "smtpd_relay_restrictions": "reject_unauth_destination",
            "smtpd_recipient_restrictions": f"check_recipient_access regexp:{tables}/rcpt.re",
            "header_checks": f"regexp:{tables}/header.re",
        },
    )
    pfx.start()
    try:
        eventually(lambda: "disconnect from" in pfx.log(), 20, "the readiness probe's disconnect")
        skip = len(pfx.log())
        truth = drive(pfx.port, tls_files["ca"], SEED, SESSIONS)
        queued = sum(1 for t in truth.transactions if t.data_code == 250)
        ended = sum(truth.sessions.values())
        eventually(
            lambda: (
                pfx.log()[skip:].count(": removed") == queued
                and pfx.log()[skip:].count("disconnect from") == ended
            ),
            20,
            "every session to end and every queued message to be delivered",
        )
        out = tmp_path_factory.mktemp("pfx-log") / "maillog"
        out.write_text(pfx.log()[skip:])
        yield out, truth
    finally:
        pfx.stop()


def _exim_log(
    selector: str | None, tls_files: dict[str, Path], tmp: Path
) -> Iterator[tuple[Path, Truth]]:
    if not exim_available():
        pytest.skip("Exim is not unpacked (scripts/install-mta-senders.sh, run by make test)")
    exim = EximReceiver("estimate", tls_files["cert"], tls_files["key"], selector)
    exim.start()
    try:
        truth = drive(exim.port, tls_files["ca"], SEED, SESSIONS)
        if selector:
            ended = sum(truth.sessions.values())
            eventually(
                lambda: exim.log().count(" closed by ") + exim.log().count(" lost") >= ended,
                20,
                "every session to end",
            )
        queued = sum(1 for t in truth.transactions if t.data_code == 250)
        eventually(lambda: exim.log().count(" <= ") == queued, 20, "every message to be logged")
        time.sleep(0.3)  # the "no MAIL" line follows the last close
        out = tmp / "mainlog"
        out.write_text(exim.log())
        yield out, truth
    finally:
        exim.stop()


@pytest.fixture(scope="module")
def exim_log(
    tls_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Truth]]:
    """The seeded mix sent to a private Exim logging with the recommended selector."""
    yield from _exim_log(RICH_SELECTOR, tls_files, tmp_path_factory.mktemp("exim-rich"))


@pytest.fixture(scope="module")
def exim_default_log(
    tls_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Truth]]:
    """The same mix sent to a private Exim with Exim's default log_selector."""
    yield from _exim_log(None, tls_files, tmp_path_factory.mktemp("exim-default"))


def _by_tls(counter: Counter[str]) -> dict[str, int]:
    return {k: counter[k] for k in TLS_KEYS}


def expected_rules(truth: Truth) -> list[dict[str, object]]:
    """The POLICY's decisions, worked out by hand from what the client saw.

    MAIL: bank.test senders meet rule ``bank`` (require: plaintext refused),
    everyone else the default (audit: plaintext would be refused). RCPT, unless
    MAIL was refused: recipients at vip.test meet rule ``vip`` (audit, TLS 1.3)
    when the log names them (accepted into a queued message, or refused but not
    as relay). Other RCPT decisions repeat MAIL's and are not counted again.
    """
    rows: Counter[tuple[str, str, str]] = Counter()
    for t in truth.transactions:
        plain = t.tls == "none"
        if t.sender.endswith("@bank.test"):
            rows[("bank", "require", "refuse" if plain else "accept")] += 1
            if plain:
                continue
        else:
            rows[("(default)", "audit", "would_refuse" if plain else "accept")] += 1
        named = [
            *(t.accepted if t.data_code == 250 else ()),
            *(r for r, relay in t.refused if not relay),
        ]
        for rcpt in named:
            if rcpt.endswith("@vip.test"):
                rows[("vip", "audit", "would_refuse" if t.tls != "TLSv1.3" else "accept")] += 1
    out = []
    for rule, mode in sorted({(r, m) for r, m, _ in rows}):
        counts = {a: rows[(rule, mode, a)] for a in ("accept", "refuse", "would_refuse")}
        out.append({"rule": rule, "mode": mode, **counts})
    return out


def check_against_truth(period: dict[str, Any], truth: Truth, *, sessions: bool = True) -> None:
    if sessions:
        assert period["sessions"] == _by_tls(truth.sessions)
    assert period["messages"] == _by_tls(truth.messages)
    upstream = {
        tls: {v: truth.upstream[(tls, v)] for v in ("accepted", "rejected", "unknown")}
        for tls in TLS_KEYS
        if any(truth.upstream[(tls, v)] for v in ("accepted", "rejected", "unknown"))
    }
    assert {k: v for k, v in period["upstream"].items() if any(v.values())} == upstream
    cf = period["if_starttls_required"]
    assert cf["refused_messages"] == truth.messages["none"]
    assert cf["of_messages"] == sum(truth.messages.values())
    assert cf["sender_domains"] == len(truth.plaintext_senders)
    assert cf["client_networks"] == (1 if truth.messages["none"] else 0)
    top = {e["name"]: e["messages"] for e in period["top_plaintext_sender_domains"]}
    assert top == dict(truth.plaintext_senders)


def test_the_traffic_mix_covers_every_case(postfix_log: tuple[Path, Truth]) -> None:
    """The seed gives plaintext and TLS sessions, refusals, relay, no-mail, spam and <>."""
    _, truth = postfix_log
    ts = truth.transactions
    assert truth.sessions["none"]
    assert truth.sessions["TLSv1.3"]
    assert any(t.refused and t.accepted for t in ts), "a message with a refused recipient"
    assert any(len(t.accepted) > 1 for t in ts), "a multi-recipient message"
    assert any(r for t in ts for r, relay in t.refused if relay), "a relay attempt"
    assert any(t.data_code and t.data_code >= 500 for t in ts), "a message rejected at DATA"
    assert any(t.sender == "" and t.data_code == 250 for t in ts), "the null sender"
    assert len(ts) < sum(truth.sessions.values()), "sessions without mail"


def test_postfix_log_gives_what_postfix_answered(postfix_log: tuple[Path, Truth]) -> None:
    """Sessions, messages, verdicts, the counterfactual and top senders equal the truth."""
    path, truth = postfix_log
    doc = estimate(str(path))
    period = doc["since_start"]
    check_against_truth(period, truth)
    assert period["recipients"] == _by_tls(truth.recipients)
    assert doc["estimate"]["source"] == "postfix"
    assert doc["estimate"]["unparsed_lines"] == 0
    assert doc["estimate"]["unattributed"] == {}
    assert sum(doc["window"]["messages"].values()) == 0  # a log is history, not a window


def test_exim_log_gives_what_exim_answered(exim_log: tuple[Path, Truth]) -> None:
    """With the recommended log_selector, Exim's log yields the same numbers as the truth."""
    path, truth = exim_log
    doc = estimate(str(path))
    check_against_truth(doc["since_start"], truth)
    assert doc["since_start"]["recipients"] == _by_tls(truth.recipients)
    assert doc["estimate"]["source"] == "exim"
    assert doc["estimate"]["unparsed_lines"] == 0


def test_same_traffic_same_report_from_both_logs(
    postfix_log: tuple[Path, Truth], exim_log: tuple[Path, Truth]
) -> None:
    """Postfix's and Exim's logs of one seeded mix give the very same counts and policy replay."""
    (pf_path, pf_truth), (ex_path, ex_truth) = postfix_log, exim_log
    assert pf_truth == ex_truth  # both servers answered every command alike
    policy = pf_path.parent / "policy.yaml"
    policy.write_text(POLICY)
    pf = estimate(str(pf_path), "--policy", str(policy))["since_start"]
    ex = estimate(str(ex_path), "--policy", str(policy))["since_start"]
    assert pf == ex
    assert pf["rules"] == expected_rules(pf_truth)


def test_exim_default_selector_gives_messages_not_sessions(
    exim_default_log: tuple[Path, Truth],
) -> None:
    """Exim's default selector logs no sessions and no recipients: the estimate says so."""
    path, truth = exim_default_log
    doc = estimate(str(path))
    check_against_truth(doc["since_start"], truth, sessions=False)
    assert sum(doc["since_start"]["sessions"].values()) == 0
    assert sum(doc["since_start"]["recipients"].values()) == 0
    assert any("+smtp_connection" in note for note in doc["estimate"]["notes"])
