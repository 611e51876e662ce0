"""End to end: the traffic generator's known mix through a real gateway to a real Postfix.

`mxgate gateway --config FILE` (a process) relays to a private Postfix
that refuses messages carrying the generator's reject marker at end of DATA. The
generator runs as its own process from 127.x.y.z addresses, and `mxgate report`
fetches /report over HTTP; every number in the report must equal the generator's
ledger. Runtime: about 11 s on an idle machine (five gateway starts, one Postfix).
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
import yaml

from eventually import eventually, eventually_async
from mtapeers.gatewayproc import MXGATE, GatewayProcess
from mtapeers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
MASTER = Path("/usr/lib/postfix/sbin/master")
pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(not MASTER.exists(), reason="Postfix not installed (make test installs it)"),
]
StartGateway = Callable[[dict[str, Any]], Awaitable[tuple[int, int]]]
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

        def listens() -> bool:
            if master.poll() is not None:
                pytest.fail(f"Postfix master exited: {(d / 'maillog').read_text()[-2000:]}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        eventually(listens, 10, "Postfix to listen")
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


def write_config(
    path: Path, upstream: int, tls: tuple[Path, Path], policy: dict[str, Any]
) -> tuple[int, int]:
    """A gateway config file on fresh loopback ports; returns (smtp, http) ports."""
    smtp, http = free_port(), free_port()
    cfg = {
        "hostname": "mx.gateway.test",
        "listen": {"smtp": f"127.0.0.1:{smtp}", "http": f"127.0.0.1:{http}"},
        "domains": ["accepted.test"],
        "tls": {"cert": str(tls[0]), "key": str(tls[1])},
        "upstreams": [{"address": f"127.0.0.1:{upstream}", "tls": "none"}],
        "policy": policy,
        "log": {"format": "json", "level": "warning"},
    }
    path.write_text(yaml.safe_dump(cfg))
    return smtp, http


async def run_json(*argv: str) -> dict[str, Any]:
    """Run a command (from the repository root) as a process; parse its JSON stdout."""
    proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, argv
    result: dict[str, Any] = json.loads(out)
    return result


MIX = ["--tls13", "12", "--tls12", "8", "--plaintext", "10"]
MIX += ["--sender-domains", "4", "--client-networks", "3", "--reject-every", "3"]


async def send(smtp: int, mix: list[str]) -> dict[str, Any]:
    """Send a mix with bench.traffic (a process); return its ledger."""
    return await run_json(
        sys.executable, "-m", "bench.traffic", "--smtp", f"127.0.0.1:{smtp}", *mix, "--json"
    )


async def read_report(http_ports: list[int], sessions: int) -> Any:
    """`mxgate report --json` over these gateways, once all ``sessions`` have ended."""
    report = [str(MXGATE), "report", "--json"]
    for port in http_ports:
        report += ["--url", f"http://127.0.0.1:{port}"]

    # Sessions are counted when the server side closes, just after the client's QUIT.
    async def all_counted() -> Any:
        merged = await run_json(*report)
        seen = sum(merged["since_start"]["sessions"].values())
        assert seen <= sessions, f"{seen} sessions counted, {sessions} sent"
        return merged if seen == sessions else None

    return await eventually_async(all_counted, 30, f"all {sessions} sessions counted")


async def run_mix(smtp: int, http: int, sessions: int) -> tuple[dict[str, Any], Any]:
    """Send MIX, then read the report."""
    ledger = await send(smtp, MIX)
    return ledger, await read_report([http], sessions)


@pytest.fixture
async def gateway(
    postfix_upstream: int, tls_files: tuple[Path, Path], tmp_path: Path
) -> AsyncIterator[StartGateway]:
    """Starts `mxgate gateway --config FILE` processes with a given policy; stops them by PID."""
    procs: list[GatewayProcess] = []

    async def start(policy: dict[str, Any]) -> tuple[int, int]:
        path = tmp_path / f"gateway-{len(procs)}.yaml"
        smtp, http = write_config(path, postfix_upstream, tls_files, policy)
        proc = GatewayProcess(path, http_port=http)
        procs.append(proc)
        await proc.start()
        return smtp, http

    try:
        yield start
    finally:
        for proc in procs:
            await proc.stop()


async def test_audit_report_equals_what_was_sent(gateway: StartGateway) -> None:
    """In audit mode all mail flows, and /report counts exactly what the generator sent."""
    smtp_port, http_port = await gateway({"mode": "audit"})
    ledger, merged = await run_mix(smtp_port, http_port, 30)
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
            "sender_domains_exact": True,
            "client_networks_exact": True,
            "upstream": {"accepted": 6, "rejected": 4, "unknown": 0},
        }
        top = s["top_plaintext_sender_domains"]
        assert sorted(e["name"] for e in top) == ledger["plaintext_sender_domains"]
        assert sum(e["messages"] for e in top) == 10
        nets = s["top_plaintext_client_networks"]
        assert sorted(e["name"] for e in nets) == ledger["plaintext_client_networks"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{http_port}/metrics") as resp,
    ):
        metrics = await resp.text()
    # the metric agrees with the report: one decision per message, not one per MAIL and RCPT
    for action, n in (("accept", 20), ("would_refuse", 10)):
        line = f'mxgate_policy_decisions_total{{action="{action}",mode="audit",rule="(default)"}}'
        assert f"{line} {n}.0" in metrics


async def test_require_refuses_exactly_what_audit_predicted(gateway: StartGateway) -> None:
    """Switching the default to require refuses the plaintext mail audit counted, nothing else."""
    ledger, merged = await run_mix(*await gateway({"mode": "require"}), 30)
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


async def test_a_tls13_rule_refuses_tls12_with_5_7_10(gateway: StartGateway) -> None:
    """A sender-scoped rule with min TLS 1.3 refuses its TLS 1.2 senders at MAIL with 550 5.7.10."""
    rule = {
        "id": "tls13-only",
        "mode": "require",
        "min_tls_version": "1.3",
        "scope": {"sender_domains": ["*.traffic.test"]},
    }
    ledger, merged = await run_mix(*await gateway({"mode": "opportunistic", "rules": [rule]}), 30)
    assert ledger["refusal_replies"] == {"530 5.7.0": 10, "550 5.7.10": 8}
    rows = merged["since_start"]["rules"]
    assert rows == [
        {"rule": "tls13-only", "mode": "require", "accept": 12, "refuse": 18, "would_refuse": 0}
    ]


async def test_two_gateway_processes_merge_exactly(gateway: StartGateway) -> None:
    """`mxgate report --url A --url B` adds two gateways' traffic exactly; distinct names union."""
    (smtp_a, http_a), (smtp_b, http_b) = (
        await gateway({"mode": "audit"}),
        await gateway({"mode": "audit"}),
    )
    mix = ["--tls13", "3", "--tls12", "2", "--sender-domains", "3", "--reject-every", "2"]
    ledger_a = await send(smtp_a, [*mix, "--plaintext", "6", "--client-networks", "2"])
    ledger_b = await send(smtp_b, [*mix, "--plaintext", "4", "--client-networks", "3"])
    merged = await read_report([http_a, http_b], 20)
    assert merged["gateways"] == 2
    s = merged["since_start"]
    assert s["messages"] == {"TLSv1.3": 6, "TLSv1.2": 4, "none": 10}
    cf = s["if_starttls_required"]
    both = ledger_a["plaintext_sender_domains"] + ledger_b["plaintext_sender_domains"]
    nets = ledger_a["plaintext_client_networks"] + ledger_b["plaintext_client_networks"]
    assert (cf["refused_messages"], cf["of_messages"]) == (10, 20)
    assert (cf["sender_domains"], cf["client_networks"]) == (len(set(both)), len(set(nets)))
    rejected = sum(
        ledger["outcomes"]["none"].get("upstream_rejected", 0) for ledger in (ledger_a, ledger_b)
    )
    assert cf["upstream"]["rejected"] == rejected
    top = {e["name"]: e["messages"] for e in s["top_plaintext_sender_domains"]}
    assert sum(top.values()) == 10
    assert s["rules"] == [
        {"rule": "(default)", "mode": "audit", "accept": 10, "refuse": 0, "would_refuse": 10}
    ]
