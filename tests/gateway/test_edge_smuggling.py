"""SMTP smuggling: only <CRLF>.<CRLF> ends DATA; bare CR/LF never reach the upstream."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mtapeers.gwconfig import gateway_config
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix

# (name, the bytes that try to end DATA early)
VARIANTS = [
    ("LF.LF", b"\n.\n"),
    ("CR.CR", b"\r.\r"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CR.CRLF", b"\r.\r\n"),
    ("CRLF.LF", b"\r\n.\n"),
    ("CRLF.CR", b"\r\n.\r"),
]


def smuggling_body(legit: str, smuggled: str, trick: bytes) -> bytes:
    """A message whose body hides a second transaction (to bob) behind ``trick``."""
    return (
        f"Subject: {legit}\r\n\r\nfirst part\r\n".encode()
        + b"text"
        + trick
        + b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<bob@accepted.test>\r\nDATA\r\n"
        + f"Subject: {smuggled}\r\n\r\nsmuggled\r\n".encode()
    )


async def send_body(port: int, body: bytes) -> tuple[int, str, RawClient]:
    client = await RawClient.connect(port)
    await client.greet()
    assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
    assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
    assert (await client.cmd("DATA")).code == 354
    await client.send(body + b"\r\n.\r\n")
    final = await client.reply()
    return final.code, final.enhanced, client


@pytest.mark.parametrize(("name", "trick"), VARIANTS, ids=[v[0] for v in VARIANTS])
async def test_smuggling_variant_is_rejected_and_nothing_reaches_the_upstream(
    gateway: Gateway, postfix_upstream: Postfix, name: str, trick: bytes
) -> None:
    """Default (reject): 550 5.6.0 after the real end; neither message exists upstream."""
    legit, smuggled = f"legit-{uuid.uuid4().hex}", f"smuggled-{uuid.uuid4().hex}"
    code, enhanced, client = await send_body(
        gateway.smtp_port, smuggling_body(legit, smuggled, trick)
    )
    assert (code, enhanced) == (550, "5.6.0")
    # The session is in sync again: the next command gets exactly one reply.
    assert (await client.cmd("NOOP")).code == 250
    await client.close()
    assert not postfix_upstream.holds(legit.encode())
    assert not postfix_upstream.holds(smuggled.encode())


@pytest.mark.parametrize(("name", "trick"), VARIANTS[:3], ids=[v[0] for v in VARIANTS[:3]])
async def test_normalize_mode_keeps_the_smuggled_text_inside_one_message(
    postfix_upstream: Postfix, tls_files: dict[str, Path], name: str, trick: bytes
) -> None:
    """bare_line_endings: normalize → one message to alice (dot escaped), none to bob."""
    legit, smuggled = f"legit-{uuid.uuid4().hex}", f"smuggled-{uuid.uuid4().hex}"
    cfg = gateway_config(postfix_upstream.port, tls_files, smtp={"bare_line_endings": "normalize"})
    async with Gateway(cfg) as gw:
        code, _, client = await send_body(gw.smtp_port, smuggling_body(legit, smuggled, trick))
        await client.close()
    assert code == 250
    message = postfix_upstream.wait_for(legit.encode(), "alice")
    assert smuggled.encode() in message  # still inside alice's message body
    assert b"\r" not in message.replace(b"\r\n", b"")  # no bare CR left anywhere
    assert not postfix_upstream.find(smuggled.encode(), "bob")


async def test_commands_pipelined_after_data_are_refused(gateway: Gateway) -> None:
    """Text sent after DATA before our 354 is a protocol error: 554 5.5.0 and close."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    await client.cmd("MAIL FROM:<s@example.org>")
    await client.cmd("RCPT TO:<alice@accepted.test>")
    await client.send(b"DATA\r\nSubject: too early\r\n\r\nbody\r\n.\r\n")
    refused = await client.reply()
    assert (refused.code, refused.enhanced) == (554, "5.5.0")
    assert await client.closed()
