"""End to end: the traffic generator's known mix through a real gateway to a real Postfix.

The gateway (in this test's event loop, with a LossReport) relays to a private Postfix
that refuses messages carrying the generator's reject marker at end of DATA. The
generator runs as its own process from 127.x.y.z addresses, and `mxgate report`
fetches /report over HTTP; every number in the report must equal the generator's
ledger. Runtime: about 10 s (Postfix start-up is most of it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trustme

from mxgate_gateway.app import Gateway
from mxgate_gateway.config.model import Config
from mxgate_gateway.report import LossReport

ROOT = Path(__file__).resolve().parents[2]
MASTER = Path("/usr/lib/postfix/sbin/master")
pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(not MASTER.exists(), reason="Postfix not installed (make test installs it)"),
]
REJECT_LINE = "/^X-Mxgate-Traffic: reject/ REJECT 5.7.1 refused by the upstream (marker)\n"
MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = upstream.test
mydestination =
relay_domains = accepted.test
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
default_transport = discard:upstream
relay_transport = discard:upstream
header_checks = regexp:{d}/conf/header_checks
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
smtputf8_enable = no
biff = no
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postfix_upstream() -> Iterator[int]:
    """A private Postfix on 127.0.0.1 that discards what it accepts and refuses marked mail."""
    # Outside pytest's 0700 tmp dirs: Postfix's daemons run as user postfix.
    d = Path(tempfile.mkdtemp(prefix="mxgate-pf-"))
    d.chmod(0o755)
    port = free_port()
    (d / "conf").mkdir()
    (d / "queue").mkdir()
    (d / "data").mkdir()
    shutil.chown(d / "data", "postfix")
    (d / "conf" / "main.cf").write_text(MAIN_CF.format(d=d))
    (d / "conf" / "header_checks").write_text(REJECT_LINE)
    master_cf = Path("/etc/postfix/master.cf").read_text().splitlines()
    smtp_line = f"127.0.0.1:{port} inet n - n - - smtpd"
    lines = [smtp_line if ln.startswith("smtp ") and " inet " in ln else ln for ln in master_cf]
    (d / "conf" / "master.cf").write_text("\n".join(lines) + "\n")
    subprocess.run(["postfix", "-c", str(d / "conf"), "check"], check=True, capture_output=True)
    master = subprocess.Popen([str(MASTER), "-c", str(d / "conf"), "-d"])
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if master.poll() is not None:
                pytest.fail(f"Postfix master exited: {(d / 'maillog').read_text()[-2000:]}")
            time.sleep(0.1)
        yield port
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(30)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert = trustme.CA().issue_cert("mx.gateway.test")
    cert.private_key_and_cert_chain_pem.write_to_path(d / "chain.pem")
    cert.private_key_pem.write_to_path(d / "key.pem")
    return d / "chain.pem", d / "key.pem"


def config(upstream: int, tls: tuple[Path, Path], policy: dict[str, Any]) -> Config:
    return Config.model_validate(
        {
            "hostname": "mx.gateway.test",
            "listen": {"smtp": "127.0.0.1:0", "http": "127.0.0.1:0"},
            "domains": ["accepted.test"],
            "tls": {"cert": str(tls[0]), "key": str(tls[1])},
            "upstreams": [{"address": f"127.0.0.1:{upstream}", "tls": "none"}],
            "policy": policy,
        }
    )


async def python(*args: str) -> dict[str, Any]:
    """Run a module of this repository as a process; parse its JSON stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, args
    result: dict[str, Any] = json.loads(out)
    return result


MIX = ["--tls13", "12", "--tls12", "8", "--plaintext", "10"]
MIX += ["--sender-domains", "4", "--client-networks", "3", "--reject-every", "3"]


async def run_mix(gw: Gateway, report: LossReport, sessions: int) -> tuple[dict[str, Any], Any]:
    ledger = await python("bench.traffic", "--smtp", f"127.0.0.1:{gw.smtp_port}", *MIX, "--json")
    # Sessions are counted when the server side closes, just after the client's QUIT.
    for _ in range(100):
        if sum(report.snapshot()["since_start"]["sessions"].values()) >= sessions:
            break
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{gw.http_port}"
    merged = await python("mxgate_gateway.report.cli", "--url", url, "--json")
    return ledger, merged


@pytest.fixture
async def gateway_factory(
    postfix_upstream: int, tls_files: tuple[Path, Path]
) -> AsyncIterator[Any]:
    async def start(policy: dict[str, Any]) -> tuple[Gateway, LossReport]:
        report = LossReport()
        gw = Gateway(config(postfix_upstream, tls_files, policy), report=report)
        gw.report_snapshot = report.snapshot
        await stack.enter_async_context(gw)
        return gw, report

    async with AsyncExitStack() as stack:
        yield start


async def test_audit_report_equals_what_was_sent(gateway_factory: Any) -> None:
    """In audit mode all mail flows, and /report counts exactly what the generator sent."""
    gw, report = await gateway_factory({"mode": "audit"})
    ledger, merged = await run_mix(gw, report, 30)
    out = ledger["outcomes"]
    assert ledger["sent"] == {"TLSv1.3": 12, "TLSv1.2": 8, "none": 10}
    # every third message of each class carries the reject marker
    assert out == {
        "TLSv1.3": {"upstream_rejected": 4, "accepted": 8},
        "TLSv1.2": {"upstream_rejected": 3, "accepted": 5},
        "none": {"upstream_rejected": 4, "accepted": 6},
    }
    assert merged["gateways"] == 1
    for period in ("since_start", "window"):
        s = merged[period]
        assert s["sessions"] == ledger["sent"]
        assert s["messages"] == ledger["sent"]
        for tls, outcomes in out.items():
            assert s["upstream"][tls] == {
                "accepted": outcomes.get("accepted", 0),
                "rejected": outcomes.get("upstream_rejected", 0),
                "unknown": 0,
            }
        assert s["rules"] == [
            {"rule": "(default)", "mode": "audit", "accept": 20, "refuse": 0, "would_refuse": 10}
        ]
        assert s["if_starttls_required"] == {
            "refused_messages": 10,
            "of_messages": 30,
            "percent": 33.3,
            "sender_domains": len(ledger["plaintext_sender_domains"]),
            "client_networks": len(ledger["plaintext_client_networks"]),
            "exact": True,
            "upstream": {"accepted": 6, "rejected": 4, "unknown": 0},
        }
        top = s["top_plaintext_sender_domains"]
        assert sorted(e["name"] for e in top) == ledger["plaintext_sender_domains"]
        assert sum(e["messages"] for e in top) == 10
        nets = s["top_plaintext_client_networks"]
        assert sorted(e["name"] for e in nets) == ledger["plaintext_client_networks"]


async def test_require_refuses_exactly_what_audit_predicted(gateway_factory: Any) -> None:
    """Switching the default to require refuses the plaintext mail audit counted, nothing else."""
    gw, report = await gateway_factory({"mode": "require"})
    ledger, merged = await run_mix(gw, report, 30)
    assert ledger["outcomes"]["none"] == {"refused_mail": 10}
    assert ledger["refusal_replies"] == {"530 5.7.0": 10}
    assert sum(ledger["outcomes"]["TLSv1.3"].values()) == 12
    assert "refused_mail" not in ledger["outcomes"]["TLSv1.2"]
    s = merged["since_start"]
    assert s["rules"] == [
        {"rule": "(default)", "mode": "require", "accept": 20, "refuse": 10, "would_refuse": 0}
    ]
    assert s["sessions"]["none"] == 10
    assert s["messages"] == {"TLSv1.3": 12, "TLSv1.2": 8, "none": 0}
    assert s["if_starttls_required"]["refused_messages"] == 0


async def test_a_tls13_rule_refuses_tls12_with_5_7_10(gateway_factory: Any) -> None:
    """A sender-scoped rule with min TLS 1.3 refuses its TLS 1.2 senders at MAIL with 550 5.7.10."""
    rule = {
        "id": "tls13-only",
        "mode": "require",
        "min_tls_version": "1.3",
        "scope": {"sender_domains": ["*.traffic.test"]},
    }
    gw, report = await gateway_factory({"mode": "opportunistic", "rules": [rule]})
    ledger, merged = await run_mix(gw, report, 30)
    assert ledger["refusal_replies"] == {"530 5.7.0": 10, "550 5.7.10": 8}
    rows = merged["since_start"]["rules"]
    assert rows == [
        {"rule": "tls13-only", "mode": "require", "accept": 12, "refuse": 18, "would_refuse": 0}
    ]
