"""`mxgate estimate` on captured logs: golden output, log shapes, damage, files and options.

The captured logs in data/estimate/ were written by the real receivers of
test_estimate_mta_logs.py for the seeded mix (seed 15, 30 sessions): Postfix 3.7,
Exim 4.96 with the recommended log_selector, and Exim with its default one.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mxgate_gateway.cli import main
from mxgate_gateway.config.model import Listener
from mxgate_gateway.estimate.estimator import Estimator
from mxgate_gateway.estimate.exim import EximParser, tls_version
from mxgate_gateway.estimate.facts import SessionSeen, TransactionSeen, Verdict
from mxgate_gateway.estimate.policyfile import (
    clustertlspolicy_floor,
    load_replay,
    tlspolicy_rule,
)
from mxgate_gateway.estimate.postfix import PostfixParser
from mxgate_gateway.estimate.reader import Progress, open_log
from mxgate_gateway.estimate.stamps import syslog_stamp
from mxgate_gateway.report.document import parse_document
from mxgate_gateway.report.loss import LossReport
from mxgate_operator.render.floors import ClusterPolicyInput, to_floor
from mxgate_operator.render.gateway_config import to_rule
from mxgate_operator.spec import parse_policy
from mxgate_operator.spec_cluster import parse_cluster_policy

DATA = Path(__file__).with_name("data") / "estimate"
GOLDEN = Path(__file__).with_name("golden")
POSTFIX = DATA / "postfix-3.7.maillog"
EXIM = DATA / "exim-4.96-rich.mainlog"
EXIM_DEFAULT = DATA / "exim-4.96-default.mainlog"
EXAMPLES = Path(__file__).parents[2] / "examples"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["estimate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def estimate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, "--json", *args)
    assert code == 0, err
    return dict(json.loads(out))


def counts(doc: dict[str, Any]) -> dict[str, Any]:
    """The numbers of since_start (sketch state aside)."""
    return {k: v for k, v in doc["since_start"].items() if k != "sketches"}


def check_golden(request: pytest.FixtureRequest, name: str, text: str) -> None:
    path = GOLDEN / name
    if request.config.getoption("--update-golden", default=False):
        path.write_text(text)
    assert path.exists(), "missing golden file; run pytest --update-golden"
    assert text == path.read_text(), f"{name} differs from golden (pytest --update-golden)"


# -- golden: the captured logs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("log", "golden"),
    [
        (POSTFIX, "estimate_postfix.json"),
        (EXIM, "estimate_exim_rich.json"),
        (EXIM_DEFAULT, "estimate_exim_default.json"),
    ],
)
def test_captured_logs_match_golden(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, log: Path, golden: str
) -> None:
    """Each captured log gives its pinned mxgate-report/1 document, which parses as a report."""
    doc = estimate(capsys, str(log), "--year", "2026")
    parse_document(doc)
    check_golden(request, golden, json.dumps(doc, indent=2) + "\n")


def test_captured_numbers_by_hand(capsys: pytest.CaptureFixture[str]) -> None:
    """The postfix capture, counted by hand with grep: sessions, TLS, failed STARTTLS, verdicts."""
    text = POSTFIX.read_text()
    doc = estimate(capsys, str(POSTFIX))
    sessions = doc["since_start"]["sessions"]
    assert sum(sessions.values()) == text.count(": connect from ")
    assert sessions["TLSv1.3"] == text.count("TLS connection established from")
    assert "starttls=0/1" in text  # failed handshakes exist, and are not TLS sessions
    accepted = sum(v["accepted"] for v in doc["since_start"]["upstream"].values())
    rejected = sum(v["rejected"] for v in doc["since_start"]["upstream"].values())
    assert accepted == text.count("(queue active)")
    assert rejected == text.count(": reject: header Subject: SPAM")
    nrcpt = sum(int(n) for n in re.findall(r"nrcpt=(\d+)", text))
    assert sum(doc["since_start"]["recipients"].values()) == nrcpt


def test_postfix_and_exim_captures_agree(capsys: pytest.CaptureFixture[str]) -> None:
    """The same traffic logged by Postfix and by Exim (rich selector) gives the same numbers."""
    assert counts(estimate(capsys, str(POSTFIX))) == counts(estimate(capsys, str(EXIM)))


def test_table_is_the_report_table_for_a_log(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    """Without --json: mxgate report's table, one column for the log, the MTA as next hop."""
    code, out, _ = run(capsys, str(POSTFIX), "--year", "2026")
    assert code == 0
    assert out.startswith("mxgate estimate from postfix logs: 1 file(s), 177 lines")
    assert "At the MTA those plaintext messages were" in out
    assert "last 60 min" not in out
    check_golden(request, "estimate_postfix_table.txt", out)


# -- log shapes: Postfix 2.x syslog, RFC 3339 stamps, old TLS wording ------------------------------


def reshaped(line: str, how: str) -> str:
    m = re.match(r"Dec (\d\d) (\S+) estimate (.*)", line)
    assert m is not None
    day, hms, rest = m.groups()
    if how == "syslog":  # rsyslog's traditional format, a 2.x-era host name and program
        rest = rest.replace("Anonymous TLS connection", "TLS connection")
        return f"Dec {int(day):2d} {hms} mx1 {rest}"
    if how == "rfc3339":
        return f"2026-12-{day}T{hms}.123456+01:00 mx1.example.org {rest}"
    return f"Dec {day} {hms} mx1 {rest.replace('postfix/', 'postfix-in/')}"  # syslog_name


@pytest.mark.parametrize("how", ["syslog", "rfc3339", "multi-instance"])
def test_other_postfix_log_shapes_give_the_same_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, how: str
) -> None:
    """Classic syslog (no "Anonymous"), RFC 3339 stamps and another syslog_name parse alike."""
    lines = POSTFIX.read_text().splitlines()
    log = tmp_path / "maillog"
    log.write_text("".join(reshaped(line, how) + "\n" for line in lines))
    assert counts(estimate(capsys, str(log))) == counts(estimate(capsys, str(POSTFIX)))


# -- damage: unparsed, truncated, interleaved ------------------------------------------


def test_lines_not_understood_are_counted_never_fatal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Garbage and other programs' lines are counted in unparsed_lines; the numbers stand."""
    noise = [
        "\x00\xff binary junk",
        "Dec 01 03:25:57 estimate dovecot[99]: imap-login: Login: user=<x>",
        "",
        "Dec 01 03:25:57 estimate postfix/smtpd[1]: something new in postfix 9",
    ]
    lines = POSTFIX.read_text().splitlines()
    mixed = lines[:50] + noise + lines[50:]
    log = tmp_path / "maillog"
    log.write_text("\n".join(mixed) + "\n")
    doc = estimate(capsys, str(log))
    assert doc["estimate"]["unparsed_lines"] == len(noise)
    assert counts(doc) == counts(estimate(capsys, str(POSTFIX)))


@pytest.mark.parametrize("log", [POSTFIX, EXIM])
def test_a_truncated_log_yields_what_it_supports(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, log: Path
) -> None:
    """Cut at both ends: no error, fewer numbers, and a note of what could not be attributed."""
    lines = log.read_text().splitlines()
    cut = tmp_path / log.name
    cut.write_text("\n".join(lines[7:-9]) + "\n")
    whole, part = estimate(capsys, str(log)), estimate(capsys, str(cut))
    assert sum(part["since_start"]["messages"].values()) <= sum(
        whole["since_start"]["messages"].values()
    )
    assert sum(part["since_start"]["sessions"].values()) >= 1
    if log is POSTFIX:
        assert part["estimate"]["unattributed"]
        _, table, _ = run(capsys, str(cut))
        assert "not attributed (the log starts or ends mid-way?): " in table


def test_interleaved_sessions_are_told_apart_by_pid() -> None:
    """Two smtpd processes log at once: each reject and message joins its own session's TLS."""
    log = (DATA / "postfix-interleaved.maillog").read_text()
    facts: list[object] = []
    parser = PostfixParser(facts.append, year=2026)
    for line in log.splitlines():
        parser.feed(line)
    parser.finish()
    assert parser.stats.unparsed == 1
    sessions = {f for f in facts if isinstance(f, SessionSeen)}
    assert sessions == {SessionSeen("192.0.2.10", None), SessionSeen("198.51.100.20", "TLSv1.2")}
    txns = {f.sender: f for f in facts if isinstance(f, TransactionSeen)}
    assert txns["s@a.example"] == TransactionSeen(
        "192.0.2.10", None, "s@a.example", refused=(("x@other.example", True),)
    )
    assert txns["u@b.example"].tls_version == "TLSv1.2"
    assert txns["u@b.example"].recipient_count == 3
    assert txns["u@b.example"].verdict is Verdict.ACCEPTED
    spam = txns["t@a.example"]
    assert (spam.tls_version, spam.verdict) == (None, Verdict.REJECTED)
    assert spam.refused == (("no@mx.example", False),)


@pytest.mark.parametrize(
    ("field", "version"),
    [("TLS1.3", "TLSv1.3"), ("TLSv1.2", "TLSv1.2"), ("TLS1.0", "TLSv1"), ("TLSv1.1", "TLSv1.1")],
)
def test_exim_tls_names_gnutls_and_openssl(field: str, version: str) -> None:
    """Exim built with GnuTLS writes X=TLS1.3, with OpenSSL X=TLSv1.3: both mean TLSv1.3."""
    assert tls_version(field) == version


def test_exim_without_pid_openssl_and_temporary_rejects() -> None:
    """Default selector, an OpenSSL build: messages by X=, 4xx after DATA has no verdict."""
    log = (DATA / "exim-openssl-default.mainlog").read_text()
    facts: list[object] = []
    parser = EximParser(facts.append)
    for line in log.splitlines():
        parser.feed(line)
    parser.finish()
    assert parser.stats.unparsed == 0
    txns = [f for f in facts if isinstance(f, TransactionSeen)]
    assert [(t.tls_version, t.verdict) for t in txns] == [
        ("TLSv1.2", Verdict.ACCEPTED),
        (None, Verdict.UNKNOWN),
        ("TLSv1.3", Verdict.ACCEPTED),
    ]
    assert not [f for f in facts if isinstance(f, SessionSeen)]


# -- bounded memory -----------------------------------------------------------------------------


def test_open_state_is_bounded_whatever_the_log_leaves_open() -> None:
    """20,000 sessions that never disconnect: at most the cap is held, every one still counted."""
    est = Estimator()
    parser = PostfixParser(est.add, year=2026, max_sessions=100, max_messages=100)
    peak = 0
    for i in range(20_000):
        parser.feed(f"Dec  1 10:00:00 mx postfix/smtpd[{i}]: connect from h[10.0.{i % 250}.1]")
        parser.feed(f"Dec  1 10:00:00 mx postfix/smtpd[{i}]: {i:010X}: client=h[10.0.{i % 250}.1]")
        peak = max(peak, parser.open_state())
    parser.finish()
    assert peak <= 200
    assert est.tally.sessions["none"] == 20_000
    assert parser.stats.unattributed["session_without_disconnect"] == 20_000


# -- files: rotated in any order, gzip, stdin ------------------------------------------


def test_rotated_files_in_any_order_gz_and_stdin_equal_one_log(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """maillog.2.gz, maillog.1, maillog named newest first give the numbers of the whole log."""
    lines = POSTFIX.read_text().splitlines(keepends=True)
    parts = [lines[:60], lines[60:120], lines[120:]]
    (tmp_path / "maillog.2.gz").write_bytes(gzip.compress("".join(parts[0]).encode()))
    (tmp_path / "maillog.1").write_text("".join(parts[1]))
    (tmp_path / "maillog").write_text("".join(parts[2]))
    names = [str(tmp_path / n) for n in ("maillog", "maillog.1", "maillog.2.gz")]
    whole = estimate(capsys, str(POSTFIX))
    rotated = estimate(capsys, *names)
    assert counts(rotated) == counts(whole)
    assert rotated["estimate"]["files"] == 3
    assert rotated["estimate"]["unattributed"] == {}
    stdin = io.TextIOWrapper(io.BytesIO(gzip.compress(POSTFIX.read_bytes())))
    monkeypatch.setattr("sys.stdin", stdin)
    assert counts(estimate(capsys, "-")) == counts(whole)


def test_since_and_until_keep_lines_in_the_window(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--since is inclusive, --until exclusive; stamps compare as the log wrote them."""
    log = tmp_path / "mainlog"
    log.write_text(
        "2026-11-29 23:59:59 1a2B3c-000001-AB <= a@x.example H=(x) [192.0.2.1] P=esmtp S=1\n"
        "2026-11-30 00:00:00 1a2B3c-000002-AB <= b@y.example H=(y) [192.0.2.2] P=esmtp S=1\n"
        "2026-12-01 00:00:00 1a2B3c-000003-AB <= c@z.example H=(z) [192.0.2.3] P=esmtp S=1\n"
    )
    doc = estimate(capsys, str(log), "--since", "2026-11-30", "--until", "2026-12-01")
    assert doc["since_start"]["messages"]["none"] == 1
    assert doc["since_start"]["top_plaintext_sender_domains"][0]["name"] == "y.example"
    assert doc["estimate"]["first_seen"] == "2026-11-30T00:00:00"


def test_errors_are_one_line_and_an_exit_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unknown format, a missing file and a bad --since each fail with a message."""
    other = tmp_path / "other.log"
    other.write_text("hello\nworld\n")
    code, _, err = run(capsys, str(other))
    assert (code, err) == (
        1,
        f"mxgate estimate: cannot read: {other}: neither a Postfix nor an Exim log"
        " (try --format)\n",
    )
    code, _, err = run(capsys, str(tmp_path / "missing"))
    assert code == 1
    assert "cannot read" in err
    code, _, err = run(capsys, str(POSTFIX), "--since", "yesterday")
    assert code == 1
    assert "not an ISO 8601" in err
    code, out, _ = run(capsys, str(other), "--format", "exim", "--json")
    assert code == 0
    assert json.loads(out)["estimate"]["unparsed_lines"] == 2


# -- --policy: the files it takes ---------------------------------------------------------------


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("tlspolicy-*.yaml")), ids=lambda p: p.name)
def test_a_tlspolicy_replays_as_the_rule_the_operator_renders(example: Path) -> None:
    """Contract: estimate's TLSPolicy → rule equals the operator's, for every example."""
    obj = yaml.safe_load(example.read_text())
    meta = obj["metadata"]
    parsed = parse_policy(meta["name"], obj["spec"])
    assert parsed.spec is not None
    rule_id = f"{meta.get('namespace', 'default')}/{meta['name']}"
    assert tlspolicy_rule(obj, str(example)) == to_rule(rule_id, parsed.spec)


def test_policy_files_of_every_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A gateway config, a policy file and TLSPolicies all load; a bad one names the field."""
    assert load_replay(EXAMPLES / "gateway-minimal.yaml").policy is not None
    two = tmp_path / "two.yaml"
    two.write_text(
        (EXAMPLES / "tlspolicy-audit-inbound.yaml").read_text()
        + "\n---\n"
        + (EXAMPLES / "tlspolicy-require-partners.yaml").read_text()
    )
    replay = load_replay(two, Listener.PUBLIC_MX)
    assert len(replay.policy.rules) == 2
    doc = estimate(capsys, str(POSTFIX), "--policy", str(two))
    assert {r["rule"] for r in doc["since_start"]["rules"]} >= {"(default)"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nrules: [{id: x, mode: sometimes, scope: {sender_domains: [a.b]}}]\n"
    )
    code, _, err = run(capsys, str(POSTFIX), "--policy", str(bad))
    assert code == 2
    assert "rules[0].mode" in err


@pytest.mark.parametrize(
    "example", sorted(EXAMPLES.glob("clustertlspolicy-*.yaml")), ids=lambda p: p.name
)
def test_a_clustertlspolicy_replays_as_the_floor_the_operator_renders(example: Path) -> None:
    """Contract: estimate's ClusterTLSPolicy → floor equals the operator's (same id, same
    fields), for every example."""
    obj = yaml.safe_load(example.read_text())
    name = obj["metadata"]["name"]
    parsed = parse_cluster_policy(name, obj["spec"])
    assert parsed.spec is not None
    floor_id = ClusterPolicyInput(name, "uid", 1, parsed).floor_id
    assert clustertlspolicy_floor(obj, str(example)) == to_floor(floor_id, parsed.spec)


def _kubectl_list(*items: dict[str, Any]) -> str:
    """What ``kubectl get tlsp,ctlsp -A -o yaml`` prints: a List, objects with status."""
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(items)})


def _object(kind: str, name: str, mode: str, **meta: str) -> dict[str, Any]:
    """A policy as the API server returns it: CRD defaults filled in, a status, no surprises."""
    spec = {
        "mode": mode,
        "listener": "public-mx",
        "minTLSVersion": "1.2",
        "priority": 0,
        "refusal": "permanent",
        "scope": {"senderDomains": ["bank.test"]},
    }
    metadata = {"name": name, "uid": f"uid-{name}", "generation": 1, **meta}
    status = {"observedGeneration": 1, "conditions": []}
    return {
        "apiVersion": "mxgate.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }


AUTHOR = _object("TLSPolicy", "bank-opportunistic", "opportunistic", namespace="mail")


def _rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in doc["since_start"]["rules"]}


@pytest.mark.parametrize(
    ("floor_mode", "column"), [("require", "refuse"), ("audit", "would_refuse")]
)
def test_a_clustertlspolicy_is_a_floor_the_authors_tlspolicy_cannot_lower(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], floor_mode: str, column: str
) -> None:
    """An author's opportunistic TLSPolicy for bank.test plus an administrator's
    ClusterTLSPolicy (require, or audit) for bank.test: bank.test's two plaintext messages
    count as refused (would-refuse) under the floor's id; the author's rule alone lets them
    through."""
    floor = _object("ClusterTLSPolicy", "bank-requires-tls", floor_mode)
    both, alone = tmp_path / "both.yaml", tmp_path / "alone.yaml"
    both.write_text(_kubectl_list(AUTHOR, floor))
    alone.write_text(_kubectl_list(AUTHOR))

    with_floor = _rows(estimate(capsys, str(POSTFIX), "--policy", str(both)))
    row = with_floor["cluster.mxgate.io/bank-requires-tls"]
    assert (row["mode"], row[column]) == (floor_mode, 2)
    assert sum(r["refuse"] + r["would_refuse"] for r in with_floor.values()) == 2

    without = _rows(estimate(capsys, str(POSTFIX), "--policy", str(alone)))
    assert without["mail/bank-opportunistic"]["accept"] > 0
    assert all(r["refuse"] == r["would_refuse"] == 0 for r in without.values())


def test_tlspolicies_and_clustertlspolicies_mix_in_any_stream(tmp_path: Path) -> None:
    """``---`` documents and a List load alike: rules by namespace/name, floors by name."""
    floor = _object("ClusterTLSPolicy", "bank-requires-tls", "require")
    stream = tmp_path / "stream.yaml"
    stream.write_text(yaml.safe_dump(AUTHOR) + "---\n" + yaml.safe_dump(floor))
    listed = tmp_path / "list.yaml"
    listed.write_text(_kubectl_list(floor, AUTHOR))
    for path in (stream, listed):
        policy = load_replay(path).policy
        assert [r.id for r in policy.rules] == ["mail/bank-opportunistic"]
        assert [f.id for f in policy.floors] == ["cluster.mxgate.io/bank-requires-tls"]
    floors_only = tmp_path / "floors.yaml"
    floors_only.write_text(yaml.safe_dump(floor))
    replay = load_replay(floors_only)
    assert (replay.policy.rules, len(replay.policy.floors)) == ((), 1)
    assert "1 ClusterTLSPolicy floor(s)" in replay.name


@pytest.mark.parametrize(
    ("item", "named"),
    [
        (
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "x", "namespace": "mail"},
            },
            "ConfigMap mail/x (v1)",
        ),
        (
            {
                "apiVersion": "mxgate.io/v1alpha1",
                "kind": "TLSPolicyReport",
                "metadata": {"name": "r"},
            },
            "TLSPolicyReport r (mxgate.io/v1alpha1)",
        ),
    ],
    ids=["other-api", "unknown-mxgate-kind"],
)
def test_other_objects_are_an_error_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], item: dict[str, Any], named: str
) -> None:
    """A List holding anything but TLSPolicy and ClusterTLSPolicy is refused, naming it."""
    path = tmp_path / "mixed.yaml"
    path.write_text(_kubectl_list(AUTHOR, item))
    code, _, err = run(capsys, str(POSTFIX), "--policy", str(path))
    assert code == 2
    assert named in err
    assert "only TLSPolicy and ClusterTLSPolicy" in err
    empty = tmp_path / "empty.yaml"
    empty.write_text(_kubectl_list())
    code, _, err = run(capsys, str(POSTFIX), "--policy", str(empty))
    assert code == 2
    assert "no TLSPolicy or ClusterTLSPolicy" in err


def test_estimate_counts_what_the_live_report_counts() -> None:
    """A fact counted by the estimator lands where LossReport puts the same traffic."""
    est = Estimator()
    est.add(SessionSeen("192.0.2.9", None))
    est.add(
        TransactionSeen(
            "192.0.2.9",
            None,
            "",
            recipients=("a@b.example",),
            recipient_count=1,
            verdict=Verdict.REJECTED,
        )
    )
    live = LossReport(lambda: 0.0)
    live.record_session(None)
    live.record_message(
        tls_version=None,
        sender_domain=None,
        client_ip="192.0.2.9",
        upstream_accepted=False,
        recipients=1,
    )
    assert est.tally.to_period(10) == live.snapshot().since_start
    assert est.tally.senders.top.top(1)[0].name == "<>"


@pytest.mark.parametrize(
    ("month", "year", "last_month", "stamp"),
    [
        ("Dec", 2027, 1, "2026-12-31T23:59:59"),  # a log spanning New Year, modified in January
        ("Jan", 2027, 1, "2027-01-31T23:59:59"),
        ("Dec", 2026, 12, "2026-12-31T23:59:59"),
    ],
)
def test_syslog_stamps_get_their_year(month: str, year: int, last_month: int, stamp: str) -> None:
    """Syslog stamps carry no year: a month after the file's newest is from the year before."""
    assert syslog_stamp(month, "31", "23:59:59", year, last_month) == stamp


def test_progress_goes_to_stderr_with_rate_and_share() -> None:
    """Long inputs show progress on stderr: share of bytes, lines and lines/s, on one line."""
    out = io.StringIO()
    log = open_log(str(POSTFIX))
    progress = Progress(log.size, out, interval=0.0)
    for n, _ in enumerate(log.lines(), 1):
        progress.tick(n, log)
    progress.finish()
    text = out.getvalue()
    assert text.startswith("\restimate: ")
    assert re.search(r"\d+% 0 MB, 177 lines, [\d,]+ lines/s\n$", text)


_LINES = POSTFIX.read_text().splitlines() + EXIM.read_text().splitlines()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_LINES),
            st.builds(lambda line, cut: line[:cut], st.sampled_from(_LINES), st.integers(0, 200)),
            st.text(max_size=120),
        ),
        max_size=60,
    )
)
def test_no_line_is_fatal(lines: list[str]) -> None:
    """Shuffled, cut and random lines: both parsers count every line and never raise."""
    for make in (
        lambda emit: PostfixParser(emit, year=2026, max_sessions=5, max_messages=5),
        lambda emit: EximParser(emit, max_sessions=5),
    ):
        est = Estimator()
        parser = make(est.add)
        for line in lines:
            parser.feed(line)
        parser.finish()
        assert parser.stats.lines == len(lines)
        parse_document(est.document("test", 1, parser.stats).to_json())
