"""The ``mxgate`` command: check-config, and ``mxgate dev`` end to end with swaks."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import signal
import sys
import uuid
from pathlib import Path

import aiosmtplib
import pytest

from mtapeers.ports import free_port
from mtapeers.postfix import Postfix
from mtapeers.procs import run
from mxgate_gateway.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("gateway-*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_gateway_example_is_valid(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config accepts each examples/gateway-*.yaml with exit code 0."""
    assert main(["check-config", str(example)]) == 0
    assert ": ok (" in capsys.readouterr().out


def test_check_config_lists_every_error_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 and one line per problem, each starting with the field path."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "hostname: mx.test\ndomains: [ok.test, 'no way']\nupstreams: [{address: nope}]\n"
        "limits: {max_recipients: 5}\nsmtp: {bare_line_endings: allow}\n"
    )
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    for path in (
        "domains[1]",
        "upstreams[0].address",
        "limits.max_recipients",
        "smtp.bare_line_endings",
    ):
        assert re.search(rf"^  {re.escape(path)}: ", err, re.MULTILINE), err
    assert "Traceback" not in err


def test_check_config_on_a_missing_file_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file is reported as such with exit code 1."""
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


async def read_until(stream: asyncio.StreamReader, needle: str, timeout: float = 20) -> str:
    seen = ""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"mxgate dev exited early:\n{seen}")
            seen += line.decode()
    return seen


@pytest.mark.slow
async def test_mxgate_dev_relays_a_swaks_message_into_the_maildir(tmp_path: Path) -> None:
    """The README's first command: the printed swaks line delivers over STARTTLS into
    the Maildir, byte-identical apart from our Received header; Ctrl-C exits 0."""
    state = tmp_path / "dev"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mxgate_gateway.cli",
        "dev",
        "--dir",
        str(state),
        "--smtp",
        f"127.0.0.1:{free_port()}",
        "--http",
        f"127.0.0.1:{free_port()}",
        "--public",
        f"127.0.0.1:{free_port()}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        banner = await read_until(proc.stdout, "Press Ctrl-C to stop.")
        swaks_line = next(
            line.strip() for line in banner.splitlines() if line.strip().startswith("swaks ")
        )
        assert "--tls" in swaks_line
        curl_line = next(
            line.strip() for line in banner.splitlines() if "mta-sts.txt" in line and "curl" in line
        )
        policy = await run(*shlex.split(curl_line))
        assert policy.stdout.startswith("version: STSv1"), policy.stdout  # the public listener
        done = await run(*shlex.split(swaks_line))
        assert done.returncode == 0, done.stdout
        port = int(re.search(r"--server 127\.0\.0\.1:(\d+)", swaks_line).group(1))  # type: ignore[union-attr]
        body = b"Subject: exact\r\n\r\n" + b"." + b"q" * 997 + b"\r\n" + b"tail\r\n"
        async with aiosmtplib.SMTP(
            hostname="127.0.0.1", port=port, start_tls=True, validate_certs=False
        ) as smtp:
            await smtp.sendmail("you@example.org", ["someone@mxgate.test"], body)
        new = state / "Maildir" / "new"
        files = sorted(new.iterdir(), key=lambda p: p.stat().st_mtime)
        assert len(files) == 2
        stored = files[1].read_bytes()
        assert stored.startswith(b"Received: from ")
        assert b"with ESMTPS tls TLS_" in stored.split(b"\r\n\r\n", 1)[0]
        assert stored.endswith(body)
        header_end = len(stored) - len(body)
        assert stored[:header_end].count(b"\r\n") == stored[:header_end].count(b"\r\n\t") + 1
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0


@pytest.mark.postfix
async def test_mxgate_gateway_process_logs_json_events_without_bodies(
    tmp_path: Path, postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """``mxgate gateway --config``: JSON log lines per transaction and session end, with
    session id, client IP and TLS facts; never the message body; SIGTERM exits 0."""
    smtp_port, http_port = free_port(), free_port()
    config = tmp_path / "gateway.yaml"
    cert, key = tls_files["cert"], tls_files["key"]
    config.write_text(
        "hostname: mx.test\n"
        f"listen: {{smtp: '127.0.0.1:{smtp_port}', http: '127.0.0.1:{http_port}'}}\n"
        "domains: [accepted.test]\n"
        f"tls: {{cert: '{cert}', key: '{key}'}}\n"
        f"upstreams: [{{address: '127.0.0.1:{postfix_upstream.port}'}}]\n"
        "limits: {drain_timeout: 1}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mxgate_gateway.cli",
        "gateway",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        await read_until(proc.stderr, "gateway_started")
        secret = f"body-secret-{uuid.uuid4().hex}"
        done = await run(
            "swaks",
            "--server",
            f"127.0.0.1:{smtp_port}",
            "--tls",
            "--to",
            "alice@accepted.test",
            "--from",
            "s@example.org",
            "--body",
            secret,
        )
        assert done.returncode == 0, done.stdout
        postfix_upstream.wait_for(secret.encode(), "alice")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    events = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    by_name = {e["event"]: e for e in events}
    relayed, ended = by_name["message_relayed"], by_name["session_ended"]
    assert relayed["session_id"] == ended["session_id"]
    assert (relayed["client_ip"], relayed["tls"]) == ("127.0.0.1", "TLSv1.3")
    assert ended["relayed"] == 1
    assert secret not in err.decode()
    # A postmaster follows the message: our queue id (what the client was told), the
    # upstream it went to and the upstream's reply, which names Postfix's own queue id.
    assert f"Queued as {relayed['queue_id']}" in done.stdout
    assert relayed["queue_id"] != relayed["session_id"]
    assert relayed["upstream"] == f"127.0.0.1:{postfix_upstream.port}"
    postfix_id = relayed["upstream_reply"].rsplit("queued as ", 1)[1]
    assert f"{postfix_id}: " in postfix_upstream.log()
    assert (relayed["recipients"], relayed["verdict"]) == (1, "accept")
    assert relayed["size"] > len(secret)
    assert by_name["starttls_completed"]["client_ip"] == "127.0.0.1"
    assert "cipher" in relayed
    assert all(e.get("cipher", "") is not None for e in events)  # absent, never null


def test_check_config_merges_the_operator_policy_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--policy merges the operator's file; a rule id clashing with the main file is refused."""
    main_file = tmp_path / "gateway.yaml"
    main_file.write_text(
        "hostname: mx.test\ndomains: [a.test]\nupstreams: [{address: '127.0.0.1:25'}]\n"
        "policy: {rules: [{id: dup, mode: audit, scope: {sender_domains: [x.test]}}]}\n"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nrules: [{id: ok, mode: audit, scope: {sender_domains: [y.test]}}]\n"
    )
    assert main(["check-config", str(main_file), "--policy", str(policy)]) == 0
    assert "2 rule(s)" in capsys.readouterr().out
    policy.write_text(
        "version: 1\nrules: [{id: dup, mode: require, scope: {sender_domains: [z.test]}}]\n"
    )
    assert main(["check-config", str(main_file), "--policy", str(policy)]) == 1
    assert "policy.rules: duplicate rule id 'dup'" in capsys.readouterr().err
