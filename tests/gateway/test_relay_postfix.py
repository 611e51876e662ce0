"""In-line relay against a real Postfix upstream: 250 only after the upstream's 250."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import aiosmtplib
import pytest

from eventually import eventually_async
from mtapeers.gwconfig import gateway_config
from mtapeers.ports import free_port
from mtapeers.postfix import Postfix
from mtapeers.procs import run
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix


def marker() -> str:
    return f"mxgate-test-{uuid.uuid4().hex}"


async def transaction(
    port: int, sender: str, rcpts: list[str], body: bytes | None
) -> tuple[list[int], int | None, RawClient]:
    """Run MAIL/RCPT(/DATA) on a raw session; return RCPT codes and the final DATA code."""
    client = await RawClient.connect(port)
    await client.greet()
    assert (await client.cmd(f"MAIL FROM:<{sender}>")).code == 250
    codes = [(await client.cmd(f"RCPT TO:<{r}>")).code for r in rcpts]
    final = None
    if body is not None and 250 in codes:
        assert (await client.cmd("DATA")).code == 354
        final = (await client.cmd(body + b".")).code
    return codes, final, client


async def test_swaks_over_starttls_delivers_with_our_received_header(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """swaks --tls through the gateway lands in Postfix with an ESMTPS Received header."""
    mark = marker()
    done = await run(
        "swaks",
        "--server",
        f"127.0.0.1:{gateway.smtp_port}",
        "--tls",
        "--to",
        "alice@accepted.test",
        "--from",
        "sender@example.org",
        "--header",
        f"Subject: {mark}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "250 2.0.0 Queued as" in done.stdout
    message = postfix_upstream.wait_for(mark.encode(), "alice")
    ours = message.split(b"\nReceived: from ", 2)
    assert b"by mx.test (mxgate) with ESMTPS" in message
    assert b"(using TLSv1.3 with cipher" in ours[-1] or b"(using TLSv1.2" in ours[-1]


async def test_unknown_user_is_refused_at_rcpt_with_the_upstreams_code(gateway: Gateway) -> None:
    """Postfix's 550 5.1.1 for an unknown mailbox reaches the client at RCPT time."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    await client.cmd("MAIL FROM:<s@example.org>")
    refused = await client.cmd("RCPT TO:<nobody@accepted.test>")
    assert (refused.code, refused.enhanced) == (550, "5.1.1")
    await client.close()


async def test_upstream_4xx_at_rcpt_stays_4xx(gateway: Gateway) -> None:
    """A 450 from the upstream at RCPT is passed on as 450 with its enhanced code."""
    codes, _, client = await transaction(
        gateway.smtp_port, "s@example.org", ["tempfail@accepted.test"], None
    )
    assert codes == [450]
    await client.close()


async def test_partial_acceptance_is_reported_per_recipient(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """Good, unknown and good recipients get 250, 550, 250; both good ones receive the mail."""
    mark = marker()
    body = f"Subject: {mark}\r\n\r\nhello\r\n".encode()
    codes, final, client = await transaction(
        gateway.smtp_port,
        "s@example.org",
        ["alice@accepted.test", "nobody@accepted.test", "bob@accepted.test"],
        body,
    )
    assert codes == [250, 550, 250]
    assert final == 250
    postfix_upstream.wait_for(mark.encode(), "alice")
    postfix_upstream.wait_for(mark.encode(), "bob")
    await client.close()


@pytest.mark.parametrize(
    ("sender", "code"),
    [("eodtemp@sender.test", 451), ("eodreject@sender.test", 554)],
    ids=["4xx-at-dot", "5xx-at-dot"],
)
async def test_upstream_verdict_at_the_dot_is_the_clients_verdict(
    gateway: Gateway, postfix_upstream: Postfix, sender: str, code: int
) -> None:
    """Upstream 4xx/5xx after the final dot: the client gets that class, never 250, and
    the upstream holds no copy."""
    mark = marker()
    body = f"Subject: {mark}\r\n\r\nhello\r\n".encode()
    codes, final, client = await transaction(
        gateway.smtp_port, sender, ["alice@accepted.test"], body
    )
    assert codes == [250]
    assert final == code
    await client.close()
    assert not postfix_upstream.holds(mark.encode())


async def test_upstream_down_means_451_at_rcpt(tls_files: dict[str, Path]) -> None:
    """No upstream listening: RCPT gets 451 4.4.1, so the sender keeps the mail."""
    async with Gateway(gateway_config(free_port(), tls_files)) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        refused = await client.cmd("RCPT TO:<alice@accepted.test>")
        assert (refused.code, refused.enhanced) == (451, "4.4.1")
        assert (await client.cmd("DATA")).code in (503, 554)
        await client.close()


async def test_next_upstream_is_tried_when_the_first_refuses(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """Upstreams are tried in order on connection failure."""
    upstreams = [
        {"address": f"127.0.0.1:{free_port()}"},
        {"address": f"127.0.0.1:{postfix_upstream.port}"},
    ]
    mark = marker()
    async with Gateway(gateway_config(0, tls_files, upstreams=upstreams)) as gw:
        body = f"Subject: {mark}\r\n\r\nhi\r\n".encode()
        codes, final, client = await transaction(
            gw.smtp_port, "s@example.org", ["bob@accepted.test"], body
        )
        assert (codes, final) == ([250], 250)
        await client.close()
    postfix_upstream.wait_for(mark.encode(), "bob")


@pytest.mark.parametrize(
    ("tls", "use_ca", "delivered"),
    [
        ("required", True, True),
        ("required", False, False),
        ("opportunistic", False, True),
        ("none", False, True),
    ],
)
async def test_upstream_starttls_modes(
    postfix_upstream: Postfix, tls_files: dict[str, Path], tls: str, use_ca: bool, delivered: bool
) -> None:
    """required verifies against ca_file (unknown CA → 451); opportunistic and none deliver."""
    upstream: dict[str, object] = {"address": f"127.0.0.1:{postfix_upstream.port}", "tls": tls}
    if use_ca:
        upstream["ca_file"] = str(tls_files["ca"])
    mark = marker()
    async with Gateway(gateway_config(0, tls_files, upstreams=[upstream])) as gw:
        body = f"Subject: {mark}\r\n\r\nhi\r\n".encode()
        codes, final, client = await transaction(
            gw.smtp_port, "s@example.org", ["bob@accepted.test"], body
        )
        await client.close()
    if not delivered:
        assert codes == [451]
        return
    assert (codes, final) == ([250], 250)
    message = postfix_upstream.wait_for(mark.encode(), "bob")
    upstream_hop = message.split(b"by upstream.test", 1)[0].rsplit(b"Received:", 1)[-1]
    assert (b"(using TLS" in upstream_hop) is (tls != "none")


def big_message(mark: str) -> bytes:
    """About 5 MB: 998-octet lines, lines starting with dots, 8-bit bytes, CRLF throughout."""
    head = (
        f"Subject: {mark}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    lines = [head.encode()]
    for i in range(5200):
        if i % 7 == 0:
            lines.append(b"." + b"d" * 997 + b"\r\n")
        elif i % 11 == 0:
            lines.append(("\u00e9" * 499).encode() + b"\r\n")
        else:
            lines.append((f"{i:06d}" + "x" * 992).encode() + b"\r\n")
    lines.append(b"..\r\n.end\r\n")
    return b"".join(lines)


@pytest.mark.slow
async def test_5mb_message_with_998_octet_lines_arrives_byte_identical(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """The upstream stores exactly the client's bytes after the trace headers (sha256)."""
    mark = marker()
    message = big_message(mark)
    assert len(message) > 5_000_000
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=gateway.smtp_port, start_tls=False
    ) as smtp:
        await smtp.sendmail("s@example.org", ["big@accepted.test"], message)
    stored = postfix_upstream.wait_for(mark.encode(), "big", timeout=30)
    expected = message.replace(b"\r\n", b"\n")  # the virtual agent stores LF line ends
    head, tail = stored[: len(stored) - len(expected)], stored[len(stored) - len(expected) :]
    assert hashlib.sha256(tail).hexdigest() == hashlib.sha256(expected).hexdigest()
    names = {
        line.split(b":", 1)[0] for line in head.split(b"\n") if line and line[:1] not in b" \t"
    }
    assert names == {b"Return-Path", b"Delivered-To", b"X-Original-To", b"Received"}  # Postfix's
    assert head.count(b"by mx.test (mxgate) with ESMTP id ") == 1  # and our one trace header


async def test_rset_abandons_the_upstream_transaction(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """RSET after RCPT drops that upstream transaction; the next one is delivered alone."""
    mark = marker()
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    await client.cmd("MAIL FROM:<first@example.org>")
    assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
    assert (await client.cmd("RSET")).code == 250
    await client.cmd("MAIL FROM:<second@example.org>")
    assert (await client.cmd("RCPT TO:<bob@accepted.test>")).code == 250
    await client.cmd("DATA")
    assert (await client.cmd(f"Subject: {mark}\r\n\r\nx\r\n.".encode())).code == 250
    await client.close()
    message = postfix_upstream.wait_for(mark.encode(), "bob")
    assert b"Return-Path: <second@example.org>" in message
    assert not postfix_upstream.find(mark.encode(), "alice")


async def test_client_vanishing_mid_data_leaves_nothing_upstream(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """A client that disconnects inside DATA was never told 250; the upstream has no copy."""
    mark = marker()
    offset = postfix_upstream.log_offset()
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    await client.cmd("MAIL FROM:<s@example.org>")
    assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
    assert (await client.cmd("DATA")).code == 354
    await client.send(f"Subject: {mark}\r\n\r\nhalf a message\r\n".encode())
    await client.close()
    await eventually_async(  # the session ends and releases its upstream transaction
        lambda: 'mxgate_sessions_total{tls="none"} 1.0' in gateway.metrics.exposition().decode(),
        2,
        "the session to end",
    )
    await eventually_async(
        lambda: postfix_upstream.finished_since(offset), 5, "Postfix to finish the transaction"
    )
    assert "lost connection after DATA" in postfix_upstream.log()[offset:]  # no final dot
    assert not postfix_upstream.holds(mark.encode())


async def test_ipv6_listener_relays_and_names_the_ipv6_client(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """listen.smtp '[::1]:0' serves IPv6; the Received header carries [IPv6:::1]."""
    mark = marker()
    listen = {"smtp": "[::1]:0", "http": "127.0.0.1:0"}
    async with Gateway(gateway_config(postfix_upstream.port, tls_files, listen=listen)) as gw:
        client = await RawClient.connect(gw.smtp_port, host="::1")
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        assert (await client.cmd("RCPT TO:<bob@accepted.test>")).code == 250
        await client.cmd("DATA")
        assert (await client.cmd(f"Subject: {mark}\r\n\r\nx\r\n.".encode())).code == 250
        await client.close()
    message = postfix_upstream.wait_for(mark.encode(), "bob")
    assert b"Received: from client.test ([IPv6:::1])" in message
