"""STARTTLS (RFC 3207) with real clients: openssl s_client, Python ssl, and Postfix itself."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

import aiosmtplib
import pytest

from eventually import eventually_async
from mtapeers.gwconfig import gateway_config
from mtapeers.postfix import Postfix
from mtapeers.procs import run
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix


async def test_openssl_s_client_starttls_smtp_gets_our_certificate(
    gateway: Gateway, tls_files: dict[str, Path]
) -> None:
    """openssl s_client -starttls smtp verifies our chain against the CA and speaks EHLO."""
    done = await run(
        "openssl",
        "s_client",
        "-starttls",
        "smtp",
        "-connect",
        f"127.0.0.1:{gateway.smtp_port}",
        "-CAfile",
        str(tls_files["ca"]),
        "-verify_return_error",
        "-verify_hostname",
        "mx.test",
        "-crlf",
        "-quiet",
        stdin=b"EHLO openssl.test\r\nQUIT\r\n",
    )
    assert done.returncode == 0, done.stderr
    assert "250-mx.test" in done.stdout
    assert "STARTTLS" not in done.stdout  # not offered a second time
    assert "221 2.0.0" in done.stdout


async def test_tls_1_1_is_refused_and_counted(gateway: Gateway) -> None:
    """TLS 1.2 is the minimum: a TLS 1.1-only client fails the handshake; a metric counts it."""
    done = await run(
        "openssl",
        "s_client",
        "-starttls",
        "smtp",
        "-connect",
        f"127.0.0.1:{gateway.smtp_port}",
        "-tls1_1",
        "-cipher",
        "DEFAULT@SECLEVEL=0",
        "-quiet",
        stdin=b"QUIT\r\n",
    )
    assert done.returncode != 0
    await eventually_async(
        lambda: (
            b'mxgate_starttls_failures_total{reason="handshake_error"} 1.0'
            in gateway.metrics.exposition()
        ),
        2.5,
        lambda: f"a handshake_error counted: {gateway.metrics.exposition().decode()}",
    )


async def test_commands_pipelined_after_starttls_are_discarded(gateway: Gateway) -> None:
    """Plaintext sent after STARTTLS before the handshake is never executed (CVE-2011-0411)."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    await client.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
    assert (await client.reply()).code == 220
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    await client.writer.start_tls(ctx)
    ehlo = await client.cmd("EHLO client.test")  # the first reply after TLS is EHLO's
    assert ehlo.lines[0] == "250-mx.test"
    assert "STARTTLS" not in ehlo.text
    assert (await client.cmd("MAIL FROM:<real@example.org>")).code == 250  # no nested MAIL
    await client.close()


async def test_session_state_resets_after_starttls(gateway: Gateway) -> None:
    """After the handshake the client must EHLO again and start a new transaction."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    assert (await client.cmd("MAIL FROM:<before@example.org>")).code == 250
    await client.starttls()
    assert (await client.cmd("MAIL FROM:<after@example.org>")).code == 503  # no EHLO yet
    await client.cmd("EHLO client.test")
    assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 503  # MAIL was reset
    again = await client.cmd("STARTTLS")
    assert (again.code, again.enhanced) == (503, "5.5.1")
    await client.close()


async def test_stalled_handshake_is_bounded_by_the_timeout(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """A client that says STARTTLS and then nothing is cut off after handshake_timeout."""
    tls = {"cert": str(tls_files["cert"]), "key": str(tls_files["key"]), "handshake_timeout": 0.5}
    async with Gateway(gateway_config(postfix_upstream.port, tls_files, tls=tls)) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        assert (await client.cmd("STARTTLS")).code == 220
        assert await client.closed(timeout=10)
        exposition = gw.metrics.exposition()
        assert b'mxgate_starttls_failures_total{reason="timeout"} 1.0' in exposition


async def test_aiosmtplib_starttls_delivery_records_tls_metrics(
    gateway: Gateway, postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """A verified STARTTLS session is counted as TLSv1.3 in sessions and messages."""
    mark = f"metrics-{uuid.uuid4().hex}"
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=gateway.smtp_port,
        start_tls=True,
        cert_bundle=str(tls_files["ca"]),
        tls_context=None,
    ) as smtp:
        await smtp.sendmail("s@example.org", ["bob@accepted.test"], f"Subject: {mark}\r\n\r\nx\r\n")
    postfix_upstream.wait_for(mark.encode(), "bob")

    def session_counted() -> str | None:
        text = gateway.metrics.exposition().decode()
        return text if 'mxgate_sessions_total{tls="TLSv1.3"} 1.0' in text else None

    text = await eventually_async(session_counted, 2.5, "the TLS session to be counted")
    assert 'mxgate_messages_total{outcome="relayed",tls="TLSv1.3"} 1.0' in text
    assert 'mxgate_sessions_total{tls="TLSv1.3"} 1.0' in text


@pytest.fixture
async def postfix_client(gateway: Gateway, tls_files: dict[str, Path]) -> Postfix:
    """A second real Postfix that relays everything to the gateway with TLS *required*."""
    pfx = Postfix(
        "client",
        {
            "relayhost": f"[127.0.0.1]:{gateway.smtp_port}",
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_CAfile": str(tls_files["ca"]),
            "smtp_tls_loglevel": "1",
            "smtp_helo_name": "client.test",
        },
    )
    await asyncio.to_thread(pfx.start)
    yield pfx  # type: ignore[misc]
    await asyncio.to_thread(pfx.stop)


async def test_postfix_with_encrypt_delivers_through_the_gateway(
    gateway: Gateway, postfix_client: Postfix, postfix_upstream: Postfix
) -> None:
    """Postfix (smtp_tls_security_level=encrypt) → gateway → Postfix: delivered over TLS."""
    mark = f"pfx-client-{uuid.uuid4().hex}"
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=postfix_client.port) as smtp:
        await smtp.sendmail(
            "s@example.org", ["alice@accepted.test"], f"Subject: {mark}\r\n\r\nx\r\n"
        )
    message = await asyncio.to_thread(postfix_upstream.wait_for, mark.encode(), "alice", 30.0)
    assert b"from client.test ([127.0.0.1])" in message
    assert b"by mx.test (mxgate) with ESMTPS" in message
    assert "TLS connection established to 127.0.0.1" in postfix_client.log()


async def test_min_version_1_3_refuses_a_tls_1_2_client(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """tls.min_version "1.3": openssl -tls1_2 fails the handshake, -tls1_3 succeeds."""
    tls = {"cert": str(tls_files["cert"]), "key": str(tls_files["key"]), "min_version": "1.3"}
    async with Gateway(gateway_config(postfix_upstream.port, tls_files, tls=tls)) as gw:
        results = {}
        for flag in ("-tls1_2", "-tls1_3"):
            done = await run(
                "openssl",
                "s_client",
                "-starttls",
                "smtp",
                "-connect",
                f"127.0.0.1:{gw.smtp_port}",
                flag,
                "-crlf",
                "-quiet",
                stdin=b"QUIT\r\n",
            )
            results[flag] = done.returncode
    assert results["-tls1_2"] != 0
    assert results["-tls1_3"] == 0
