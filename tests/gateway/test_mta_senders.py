"""Real sending MTAs through the gateway: Exim 4 (and Postfix), TLS required / opportunistic / off.

Each sender is a private instance relaying to the gateway, which relays to the private
Postfix upstream. Every combination must deliver exactly once, with our ``Received:``
line directly above the sender's (the upstream adds its own on top of both), ``ESMTPS``
when the sender used TLS. Exim pipelines QUIT after the final dot and half-closes: the
reason this file exists.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import aiosmtplib
import pytest

from eventually import eventually_async
from mtapeers import exim, opensmtpd
from mtapeers.observe import settled
from mtapeers.postfix import Postfix
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix

MODES = ("required", "opportunistic", "off")


def received_lines(message: bytes) -> list[bytes]:
    """The Received: headers top to bottom, each unfolded to one line."""
    head = message.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n")
    unfolded = re.sub(rb"\n[ \t]+", b" ", head)
    return [line for line in unfolded.split(b"\n") if line.lower().startswith(b"received:")]


def check_trace(message: bytes, sender_host: bytes, tls: bool, sender_name: bytes) -> None:
    """Upstream's line, then ours (naming the sender, ESMTPS iff TLS), then the sender's."""
    lines = received_lines(message)
    ours = [i for i, line in enumerate(lines) if b"by mx.test (mxgate)" in line]
    assert len(ours) == 1, lines
    mine = lines[ours[0]]
    assert ours[0] == 1, lines  # directly under the upstream's own line
    assert b"from " + sender_host in mine
    assert (b"with ESMTPS" in mine) is tls, mine
    assert b"by " + sender_name in lines[ours[0] + 1]  # the sender's own line comes next


@pytest.fixture
def exim_available() -> None:
    if not exim.available():
        pytest.skip("Exim is not unpacked (make test runs scripts/install-mta-senders.sh)")


@pytest.mark.usefixtures("exim_available")
@pytest.mark.parametrize("tls", MODES)
async def test_exim_delivers_exactly_once_through_the_gateway(
    gateway: Gateway, postfix_upstream: Postfix, tls_files: dict[str, Path], tls: str
) -> None:
    """Exim's smtp transport (QUIT pipelined after the dot, then SHUT_WR) gets its 250."""
    mark = f"exim-{tls}-{uuid.uuid4().hex}"
    offset = postfix_upstream.log_offset()
    sender = exim.Exim(gateway.smtp_port, tls, tls_files["ca"])
    try:
        body = f"Subject: {mark}\nFrom: s@example.org\n\nfrom exim\n".encode()
        done = await asyncio.to_thread(sender.send, "s@example.org", "alice@accepted.test", body)
        log = sender.log()
    finally:
        sender.stop()
    assert done.returncode == 0, done.stderr
    assert re.search(r"=> alice@accepted\.test .*C=\"250 2\.0\.0 Queued as \w+\"", log), log
    assert "Completed" in log, log
    assert ("X=TLS" in log) is (tls != "off"), log
    message = await asyncio.to_thread(postfix_upstream.wait_for, mark.encode(), "alice")
    await settled(gateway)  # every client session ended: the gateway relays nothing more
    await no_copy_in_flight(postfix_upstream, offset)
    assert len(postfix_upstream.find(mark.encode(), "alice")) == 1
    check_trace(message, b"exim.test", tls != "off", b"exim.test")


async def no_copy_in_flight(upstream: Postfix, offset: int) -> None:
    """The positive event before counting copies, once the sender is done and the gateway
    has no session left: Postfix finished every transaction it began since ``offset``
    (delivered or discarded), so a duplicate would be in the mailbox by now."""
    await eventually_async(
        lambda: upstream.finished_since(offset),
        15,
        lambda: f"Postfix to finish what it began: {upstream.log()[offset:][-2000:]}",
    )


def logged_result(log: str) -> str | None:
    return log if 'result="' in log else None


POSTFIX_LEVELS = {"required": "encrypt", "opportunistic": "may", "off": "none"}


@pytest.mark.parametrize("tls", MODES)
async def test_postfix_delivers_exactly_once_through_the_gateway(
    gateway: Gateway, postfix_upstream: Postfix, tls_files: dict[str, Path], tls: str
) -> None:
    """Postfix as the sender (smtp_tls_security_level encrypt / may / none)."""
    mark = f"pfx-{tls}-{uuid.uuid4().hex}"
    offset = postfix_upstream.log_offset()
    sender = Postfix(
        "sender",
        {
            "relayhost": f"[127.0.0.1]:{gateway.smtp_port}",
            "smtp_tls_security_level": POSTFIX_LEVELS[tls],
            "smtp_tls_CAfile": str(tls_files["ca"]),
            "smtp_helo_name": "postfix-sender.test",
        },
    )
    await asyncio.to_thread(sender.start)
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=sender.port) as smtp:
            await smtp.sendmail(
                "s@example.org", ["alice@accepted.test"], f"Subject: {mark}\r\n\r\nx\r\n"
            )
        message = await asyncio.to_thread(postfix_upstream.wait_for, mark.encode(), "alice", 30)
    finally:
        await asyncio.to_thread(sender.stop)
    await settled(gateway)  # every client session ended: the gateway relays nothing more
    await no_copy_in_flight(postfix_upstream, offset)
    assert len(postfix_upstream.find(mark.encode(), "alice")) == 1
    check_trace(message, b"postfix-sender.test", tls != "off", b"sender.test (Postfix)")


@pytest.fixture
def opensmtpd_available() -> None:
    if not opensmtpd.available():
        pytest.skip("OpenSMTPD is not unpacked (make test runs scripts/install-mta-senders.sh)")


@pytest.mark.usefixtures("opensmtpd_available")
@pytest.mark.parametrize("tls", MODES)
async def test_opensmtpd_delivers_exactly_once_through_the_gateway(
    gateway: Gateway, postfix_upstream: Postfix, tls_files: dict[str, Path], tls: str
) -> None:
    """OpenSMTPD as the sender (relay URL smtp+tls:// verified, smtp://, smtp+notls://)."""
    mark = f"smtpd-{tls}-{uuid.uuid4().hex}"
    offset = postfix_upstream.log_offset()
    sender = opensmtpd.OpenSMTPD(gateway.smtp_port, tls, tls_files["ca"])
    await asyncio.to_thread(sender.start)
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=sender.port) as smtp:
            await smtp.sendmail(
                "s@example.org", ["alice@accepted.test"], f"Subject: {mark}\r\n\r\nx\r\n"
            )
        message = await asyncio.to_thread(postfix_upstream.wait_for, mark.encode(), "alice", 30)
        # OpenSMTPD logs the relay's result once it has read our reply (it keeps the
        # session open until it stops, so the gateway settles only after that).
        log = await eventually_async(lambda: logged_result(sender.log()), 10, "its result")
    finally:
        await asyncio.to_thread(sender.stop)
    await settled(gateway)  # every client session ended: the gateway relays nothing more
    await no_copy_in_flight(postfix_upstream, offset)
    assert len(postfix_upstream.find(mark.encode(), "alice")) == 1
    assert 'result="Ok" stat="250 2.0.0 Queued as' in log, log[-2000:]
    if tls == "required":
        assert 'server-cert-check result="success"' in log, log[-2000:]
    check_trace(message, b"smtpd.test", tls != "off", b"smtpd.test")
