"""Edge rules on the wire: never an open relay, limits, enhanced codes, no exception text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mtapeers.gwconfig import gateway_config
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix

RELAY_TRICKS = [
    ("<@evil.test:user@accepted.test>", 550),  # source route
    ("<@accepted.test:user@evil.test>", 550),  # source route through us
    ("<user%evil.test@accepted.test>", 550),  # percent hack
    ("<evil.test!user@accepted.test>", 550),  # bang path
    ('<"user@evil.test"@accepted.test>', 550),  # quoted local part
    ("<user@[127.0.0.1]>", 550),  # IP literal
    ("<user@[IPv6:::1]>", 550),  # IPv6 literal
    ("<user@accepted.test.>", 553),  # trailing dot
    ("<user@evil.test>", 550),  # plainly not ours
    ("<user@sub.accepted.test>", 550),  # subdomain is not the domain
    ("<user@accepted.test@evil.test>", 553),  # two at-signs
    ("<user@accepted.test.evil.test>", 550),  # our name as a prefix
    ("user@evil.test", 501),  # no angle brackets
    ("<>", 553),  # null recipient
]


async def test_open_relay_tricks_are_refused_and_no_upstream_is_contacted(
    gateway: Gateway,
) -> None:
    """Every trick gets a 5xx at RCPT; the gateway never even connects to the upstream."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
    got = {}
    for rcpt, _ in RELAY_TRICKS:
        got[rcpt] = (await client.cmd(f"RCPT TO:{rcpt}")).code
    assert got == dict(RELAY_TRICKS)
    assert (await client.cmd("DATA")).code == 554  # no valid recipients
    await client.close()
    exposition = gateway.metrics.exposition().decode()
    connects = re.findall(
        r'mxgate_upstream_latency_seconds_count\{phase="connect",upstream="[^"]+"\} (\S+)',
        exposition,
    )
    assert connects, "the configured upstream has its (zero) series"
    assert set(connects) == {"0.0"}  # no upstream was ever contacted


async def test_domain_case_does_not_matter(gateway: Gateway, postfix_upstream: Postfix) -> None:
    """ALICE@ACCEPTED.TEST is one of ours and is relayed."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    await client.cmd("MAIL FROM:<s@example.org>")
    assert (await client.cmd("RCPT TO:<alice@ACCEPTED.Test>")).code == 250
    await client.close()


REPLY_WITH_CODE = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3} ")


async def test_every_reply_carries_an_enhanced_status_code(gateway: Gateway) -> None:
    """All replies but the greeting, EHLO/HELO and 354 have an RFC 3463 code."""
    client = await RawClient.connect(gateway.smtp_port)
    ehlo = await client.greet()
    assert "ENHANCEDSTATUSCODES" in ehlo.text
    assert "PIPELINING" in ehlo.text
    commands = [
        "NOOP",
        "HELP",
        "VRFY alice",
        "EXPN list",
        "AUTH PLAIN",
        "BOGUS",
        "RSET",
        "RSET x",
        "RCPT TO:<alice@accepted.test>",
        "DATA",
        "MAIL FROM:bad",
        "MAIL FROM:<s@example.org> X=1",
        "MAIL FROM:<s@example.org> SIZE=999999999999",
        "MAIL FROM:<s@example.org>",
        "MAIL FROM:<again@example.org>",
        "RCPT TO:<alice@accepted.test> NOTIFY=NEVER",
        "RCPT TO:<x@evil.test>",
        "RCPT TO:<alice@accepted.test>",
        "STARTTLS x",
        "QUIT",
    ]
    for command in commands:
        reply = await client.cmd(command)
        assert REPLY_WITH_CODE.match(reply.lines[-1]), (command, reply)
    await client.close()


async def test_handler_exception_becomes_451_without_its_text(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside the handler is answered 451 4.3.0; its text never leaves."""

    async def broken(*_: object) -> None:
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr(gateway.handler, "on_mail", broken)
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    reply = await client.cmd("MAIL FROM:<s@example.org>")
    assert (reply.code, reply.enhanced) == (451, "4.3.0")
    assert "secret" not in reply.text
    assert "RuntimeError" not in reply.text
    assert (await client.cmd("NOOP")).code == 250  # the session survives
    await client.close()


@pytest.mark.parametrize(
    ("line", "code", "enhanced"),
    [
        (b"NOOP " + b"x" * 600, 500, "5.5.2"),  # over 512 octets
        (b"NOOP " + b"x" * 5000, 500, "5.5.2"),  # over the reader's limit
        (b"NOOP a\x00b", 500, "5.5.2"),  # NUL
        (b"NOOP \xff\xfe", 500, "5.5.2"),  # invalid UTF-8
        (b"NOOP a\rb", 500, "5.5.2"),  # bare CR in a command
        (b"", 500, "5.5.2"),  # empty line
        ("MAIL FROM:<j\u00f6rg@example.org>".encode(), 553, "5.6.7"),  # UTF-8 without SMTPUTF8
    ],
    ids=["long", "very-long", "nul", "bad-utf8", "bare-cr", "empty", "utf8-no-smtputf8"],
)
async def test_malformed_command_lines_are_refused_and_the_session_goes_on(
    gateway: Gateway, line: bytes, code: int, enhanced: str
) -> None:
    """Bad command bytes get a 5xx with an enhanced code; the next command works."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    reply = await client.cmd(line)
    assert (reply.code, reply.enhanced) == (code, enhanced)
    assert (await client.cmd("NOOP")).code == 250
    await client.close()


async def test_utf8_addresses_need_and_work_with_smtputf8(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """MAIL ... SMTPUTF8 with a UTF-8 sender is accepted and relayed."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    assert (await client.cmd("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8".encode())).code == 250
    assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
    assert (await client.cmd("DATA")).code == 354
    assert (await client.cmd(b"Subject: utf8 sender\r\n\r\nhi\r\n.")).code == 250
    await client.close()


async def test_size_is_enforced_at_mail_and_during_data(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """SIZE= over the limit → 552 5.3.4 at MAIL; a bigger body → 552 5.3.4 after the dot."""
    cfg = gateway_config(postfix_upstream.port, tls_files, limits={"max_message_size": 20_000})
    async with Gateway(cfg) as gw:
        client = await RawClient.connect(gw.smtp_port)
        ehlo = await client.greet()
        assert "SIZE 20000" in ehlo.text
        big = await client.cmd("MAIL FROM:<s@example.org> SIZE=20001")
        assert (big.code, big.enhanced) == (552, "5.3.4")
        assert (await client.cmd("MAIL FROM:<s@example.org> SIZE=100")).code == 250
        assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
        assert (await client.cmd("DATA")).code == 354
        body = b"Subject: oversize-marker\r\n\r\n" + (b"y" * 78 + b"\r\n") * 300
        over = await client.cmd(body + b".")
        assert (over.code, over.enhanced) == (552, "5.3.4")
        assert (await client.cmd("NOOP")).code == 250
        await client.close()
    assert not postfix_upstream.holds(b"oversize-marker")


async def test_a_text_line_over_1000_octets_is_refused_after_the_dot(
    gateway: Gateway, postfix_upstream: Postfix
) -> None:
    """998 octets + CRLF pass (see the 5 MB test); 999+ are refused with 500 5.6.0."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    await client.cmd("MAIL FROM:<s@example.org>")
    await client.cmd("RCPT TO:<alice@accepted.test>")
    assert (await client.cmd("DATA")).code == 354
    reply = await client.cmd(b"Subject: longline-marker\r\n\r\n" + b"z" * 999 + b"\r\n.")
    assert (reply.code, reply.enhanced) == (500, "5.6.0")
    await client.close()
    assert not postfix_upstream.holds(b"longline-marker")


async def test_too_many_recipients_get_452(gateway: Gateway) -> None:
    """Recipient 101 (limit 100) gets 452 4.5.3 so the sender retries it later."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    await client.cmd("MAIL FROM:<s@example.org>")
    lines = b"".join(b"RCPT TO:<alice@accepted.test>\r\n" for _ in range(101))
    await client.send(lines)  # PIPELINING: all at once, replies in order
    codes = [(await client.reply()).code for _ in range(101)]
    assert codes == [250] * 100 + [452]
    await client.close()


async def test_ten_unknown_commands_close_the_session(gateway: Gateway) -> None:
    """A client that only speaks nonsense gets 421 4.7.0 and is disconnected."""
    client = await RawClient.connect(gateway.smtp_port)
    await client.greet()
    for _ in range(9):
        assert (await client.cmd("XYZZY")).code == 500
    final = await client.cmd("XYZZY")
    assert (final.code, final.enhanced) == (421, "4.7.0")
    assert await client.closed()


@pytest.mark.parametrize("phase", ["greeting_timeout", "command_timeout"])
async def test_idle_client_is_timed_out_with_421(
    postfix_upstream: Postfix, tls_files: dict[str, Path], phase: str
) -> None:
    """Every wait is bounded: silent before the first command or between commands →
    421 4.4.2 and close."""
    cfg = gateway_config(postfix_upstream.port, tls_files, limits={phase: 0.5})
    async with Gateway(cfg) as gw:
        client = await RawClient.connect(gw.smtp_port)
        if phase == "command_timeout":
            await client.greet()
        else:
            assert (await client.reply()).code == 220
        reply = await client.reply(timeout=10)
        assert (reply.code, reply.enhanced) == (421, "4.4.2")
        assert await client.closed()
