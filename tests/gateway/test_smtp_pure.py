"""Pure SMTP pieces as tables: path parsing, the relay check, replies, Received, DATA framing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from mxgate_gateway.config.model import BareLineEndings
from mxgate_gateway.replies import Reply, from_upstream, with_enhanced
from mxgate_gateway.smtp.addresses import (
    Path,
    canonical_domain,
    parse_path,
    relay_refusal,
    relay_target,
)
from mxgate_gateway.smtp.data import DataStatus, read_data
from mxgate_gateway.smtp.received import TraceFacts, received_header

DOMAINS = ("accepted.test",)


@pytest.mark.parametrize(
    ("arg", "relayed"),
    [
        ("TO:<alice@accepted.test>", True),
        ("to:<alice@Accepted.TEST>", True),
        ("TO: <alice@accepted.test>", True),
        ("TO:<a.b+c@accepted.test>", True),
        ("TO:<alice@other.test>", False),
        ("TO:<@other.test:alice@accepted.test>", False),
        ("TO:<alice%other.test@accepted.test>", False),
        ("TO:<other.test!alice@accepted.test>", False),
        ('TO:<"alice@other.test"@accepted.test>', False),
        ("TO:<alice@[192.0.2.1]>", False),
        ("TO:<alice@accepted.test.>", False),
        ("TO:<alice@accepted.test@other.test>", False),
        ("TO:<>", False),
        ("TO:alice@accepted.test", False),
        ("TO:<alice@accepted.test", False),
        ("TO:<alice@accepted.test>junk", False),
    ],
)
def test_only_plain_addresses_in_our_domains_are_relayed(arg: str, relayed: bool) -> None:
    """parse_path + relay_refusal accept exactly plain local@our-domain."""
    path = parse_path(arg, "TO:")
    ok = isinstance(path, Path) and relay_refusal(path, DOMAINS) is None
    assert ok is relayed


KELVIN = "\u212a"  # KELVIN SIGN: str.lower() folds it to "k"


@pytest.mark.parametrize(
    ("domain", "canonical"),
    [
        ("bank.test", "bank.test"),
        ("BANK.Test", "bank.test"),
        (f"ban{KELVIN}.test", "bank.test"),  # UTS #46 maps it to k
        ("\uff42ank.test", "bank.test"),  # fullwidth b
        ("b\u00fccher.test", "xn--bcher-kva.test"),  # U-label -> A-label
        ("XN--BCHER-KVA.test", "xn--bcher-kva.test"),
        ("xn--zz.test", None),  # not a valid A-label
        ("\u200d.test", None),  # a lone ZWJ does not map
        ("a..test", None),
    ],
)
def test_domains_are_compared_in_their_idna_a_label_form(
    domain: str, canonical: str | None
) -> None:
    """UTS #46 mapping then IDNA A-label, lower case; what does not map is None."""
    assert canonical_domain(domain) == canonical


@pytest.mark.parametrize(
    ("arg", "target"),
    [
        ("TO:<u@bank.test>", "u@bank.test"),
        ("TO:<u@BANK.test>", "u@bank.test"),
        (f"TO:<u@ban{KELVIN}.test>", "u@bank.test"),  # never relayed with the Kelvin sign
        ("TO:<u@\uff42ank.test>", "u@bank.test"),
        ("TO:<u@b\u00fccher.test>", "u@xn--bcher-kva.test"),
        ("TO:<u@xn--zz.test>", None),
        ("TO:<u@other.test>", None),
    ],
)
def test_recipients_are_relayed_with_the_spelling_that_matched(
    arg: str, target: str | None
) -> None:
    """The relayed address carries our canonical domain, never the client's spelling."""
    path = parse_path(arg, "TO:")
    assert isinstance(path, Path)
    got = relay_target(path, ("bank.test", "xn--bcher-kva.test"))
    assert (got if isinstance(got, str) else None) == target


@pytest.mark.parametrize(
    ("arg", "address", "params"),
    [
        ("FROM:<>", "", {}),
        (
            "FROM:<s@example.org> SIZE=100 BODY=8BITMIME",
            "s@example.org",
            {"SIZE": "100", "BODY": "8BITMIME"},
        ),
        ("FROM:<s@example.org> SMTPUTF8", "s@example.org", {"SMTPUTF8": None}),
        ('FROM:<"odd > local"@example.org>', '"odd > local"@example.org', {}),
    ],
)
def test_mail_paths_parse_with_parameters(
    arg: str, address: str, params: dict[str, str | None]
) -> None:
    """MAIL paths: null sender, ESMTP parameters, quoted local parts with '>'."""
    path = parse_path(arg, "FROM:")
    assert isinstance(path, Path)
    assert (path.address, path.params) == (address, params)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("250 OK", "250 2.0.0 OK"),
        ("250 2.1.0 Sender OK", "250 2.1.0 Sender OK"),
        ("552 Error: too much", "552 5.3.4 Error: too much"),
        ("421 closing", "421 4.3.0 closing"),
        ("354 go ahead", "354 go ahead"),
        ("220 Ready to start TLS", "220 2.0.0 Ready to start TLS"),
    ],
)
def test_replies_get_a_default_enhanced_code(line: str, expected: str) -> None:
    """with_enhanced adds a code by reply class and leaves 354 and coded lines alone."""
    assert with_enhanced(line) == expected


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (
            550,
            "5.1.1 <x@a.test>: Recipient address rejected",
            Reply(550, "5.1.1", "upstream: <x@a.test>: Recipient address rejected"),
        ),
        (450, "4.2.0 busy\x00\x1b[31m", Reply(450, "4.2.0", "upstream: busy??[31m")),
        (421, "4.3.2 shutting down", Reply(451, "4.3.2", "upstream: shutting down")),
        (554, "2.0.0 wrong class", Reply(554, "5.0.0", "upstream: 2.0.0 wrong class")),
    ],
)
def test_upstream_replies_are_sanitised(code: int, message: str, expected: Reply) -> None:
    """Upstream code and class-matching enhanced code kept; text printable; 421 becomes 451."""
    assert from_upstream(code, message) == expected


def test_received_header_names_tls_and_is_folded() -> None:
    """ESMTPS + TLS version and cipher (RFC 3848/8314), folded lines, CRLF-terminated."""
    header = received_header(
        TraceFacts(
            helo="client.example\r\nX-Evil: 1",
            client_ip="192.0.2.7",
            hostname="mx.test",
            session_id="ABC",
            esmtp=True,
            tls_version="TLSv1.3",
            tls_cipher="TLS_AES_128_GCM_SHA256",
            tls_bits=128,
            recipient="a@accepted.test",
            when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        )
    )
    assert header == (
        b"Received: from client.example??X-Evil:?1 ([192.0.2.7])\r\n"
        b"\t(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128 bits))\r\n"
        b"\tby mx.test (mxgate) with ESMTPS tls TLS_AES_128_GCM_SHA256 id ABC\r\n"
        b"\tfor <a@accepted.test>; Fri, 02 Jan 2026 03:04:05 +0000\r\n"
    )


async def read(
    raw: bytes, bare: BareLineEndings = BareLineEndings.REJECT, max_size: int = 10_000
) -> tuple[DataStatus, bytes, bytes]:
    reader = asyncio.StreamReader(limit=1001)
    reader.feed_data(raw)
    reader.feed_eof()
    result = await read_data(reader, max_size, bare)
    return result.status, result.content, await reader.read()


@pytest.mark.parametrize(
    ("raw", "status", "content"),
    [
        (b"a\r\n..b\r\n.\r\nNEXT", DataStatus.OK, b"a\r\n.b\r\n"),
        (b"a\nb\r\n.\r\nNEXT", DataStatus.BARE_LINE_ENDING, b""),
        (b"a\rb\r\n.\r\nNEXT", DataStatus.BARE_LINE_ENDING, b""),
        (b"a\n.\nb\r\n.\r\nNEXT", DataStatus.BARE_LINE_ENDING, b""),
        (b"x" * 998 + b"\r\n.\r\nNEXT", DataStatus.OK, b"x" * 998 + b"\r\n"),
        (b"." + b"x" * 998 + b"\r\n.\r\nNEXT", DataStatus.OK, b"x" * 998 + b"\r\n"),
        (b"x" * 999 + b"\r\n.\r\nNEXT", DataStatus.LINE_TOO_LONG, b""),
        (b"x" * 5000 + b"\r\n.\r\nNEXT", DataStatus.LINE_TOO_LONG, b""),
        (b"x" * 1000 + b"\r\n" + b".\r\nNEXT", DataStatus.LINE_TOO_LONG, b""),
        ((b"y" * 98 + b"\r\n") * 200 + b".\r\nNEXT", DataStatus.TOO_BIG, b""),
    ],
    ids=[
        "dot-unstuffed",
        "bare-lf",
        "bare-cr",
        "lf-dot-lf",
        "998",
        "998+stuffed",
        "999",
        "5000",
        "1000",
        "too-big",
    ],
)
async def test_data_framing(raw: bytes, status: DataStatus, content: bytes) -> None:
    """Only CRLF.CRLF ends DATA; violations are read to the end, leaving the stream in sync."""
    got_status, got_content, rest = await read(raw)
    assert (got_status, got_content, rest) == (status, content, b"NEXT")


async def test_normalize_turns_bare_endings_into_crlf() -> None:
    """bare_line_endings=normalize: every bare CR or LF becomes CRLF."""
    status, content, _ = await read(b"a\nb\rc\r\n.\r\n", BareLineEndings.NORMALIZE)
    assert (status, content) == (DataStatus.OK, b"a\r\nb\r\nc\r\n")
