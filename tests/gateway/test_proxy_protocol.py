"""PROXY protocol v1/v2 parsing: valid headers give the client address, bad ones say why."""

from __future__ import annotations

import asyncio
import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxgate_gateway.smtp.proxy_protocol import (
    INCOMPLETE,
    V1_MAX,
    V2_SIGNATURE,
    Malformed,
    ProxyHeader,
    Reason,
    is_trusted,
    parse,
    read_proxy_header,
)


def v2(
    src: str = "203.0.113.7",
    dst: str = "192.0.2.1",
    sport: int = 40000,
    dport: int = 25,
    *,
    ver_cmd: int = 0x21,
    fam: int | None = None,
    tlvs: bytes = b"",
) -> bytes:
    """Build a v2 header the way HAProxy's send-proxy-v2 does."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if fam is None:
        fam = 0x11 if s.version == 4 else 0x21
    payload = s.packed + d.packed + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIGNATURE + bytes([ver_cmd, fam]) + struct.pack("!H", len(payload)) + payload


@pytest.mark.parametrize(
    ("raw", "source"),
    [
        (b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n", ("203.0.113.7", 40000)),
        (b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 25\r\n", ("2001:db8::7", 65535)),
        (b"PROXY UNKNOWN\r\n", None),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
        (v2(), ("203.0.113.7", 40000)),
        (v2("2001:db8::7", "2001:db8::1", 1, 2), ("2001:db8::7", 1)),
        (v2(tlvs=b"\x04\x00\x01\x00"), ("203.0.113.7", 40000)),
        (v2(ver_cmd=0x20), None),  # LOCAL: a health check from the balancer itself
        (v2(fam=0x12), None),  # UDP: no TCP client address
    ],
)
def test_valid_headers_name_the_original_client(raw: bytes, source: tuple[str, int] | None) -> None:
    """A valid header yields the client address (or None: use the TCP peer) and its length."""
    result = parse(raw + b"EHLO x\r\n")
    assert isinstance(result, ProxyHeader)
    assert result.length == len(raw)
    got = None if result.source is None else (str(result.source[0]), result.source[1])
    assert got == source


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"EHLO client\r\n", Reason.BAD_SIGNATURE),
        (b"PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Reason.BAD_SIGNATURE),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", Reason.BAD_SYNTAX),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", Reason.BAD_SYNTAX),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", Reason.BAD_SYNTAX),
        (b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", Reason.BAD_ADDRESS),
        (b"PROXY TCP4 ::1 ::2 1 2\r\n", Reason.BAD_ADDRESS),
        (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", Reason.BAD_ADDRESS),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", Reason.BAD_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", Reason.BAD_PORT),
        (b"PROXY UNKNOWN " + b"x" * V1_MAX + b"\r\n", Reason.TOO_LONG),
        (v2()[:11] + b"X" + v2()[12:], Reason.BAD_SIGNATURE),
        (v2(ver_cmd=0x11), Reason.BAD_VERSION),
        (v2(ver_cmd=0x22), Reason.BAD_COMMAND),
        (v2(fam=0x41), Reason.BAD_FAMILY),
        (V2_SIGNATURE + b"\x21\x11\xff\xff", Reason.TOO_LONG),
        (V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x01\x02\x03\x04", Reason.TRUNCATED),
    ],
)
def test_malformed_headers_say_why(raw: bytes, reason: Reason) -> None:
    """A malformed header is a value naming the reason, never an exception."""
    assert parse(raw) == Malformed(reason)


@pytest.mark.parametrize(
    "raw",
    [b"", b"PRO", b"PROXY TCP4 1.2.3.4", V2_SIGNATURE[:7], V2_SIGNATURE + b"\x21\x11", v2()[:-1]],
)
def test_prefixes_of_valid_headers_are_incomplete(raw: bytes) -> None:
    """A prefix of a valid header asks for more bytes instead of failing."""
    assert parse(raw) is INCOMPLETE


@given(st.binary(max_size=300))
def test_parser_never_raises_and_never_overreads(data: bytes) -> None:
    """Any bytes give a header within the input, a reason, or INCOMPLETE."""
    result = parse(data)
    if isinstance(result, ProxyHeader):
        assert 0 < result.length <= len(data)
    else:
        assert isinstance(result, Malformed) or result is INCOMPLETE


@given(
    st.ip_addresses(v=4),
    st.ip_addresses(v=4),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.binary(max_size=40),
)
def test_v1_and_v2_roundtrip_any_ipv4_address(
    src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, sp: int, dp: int, tail: bytes
) -> None:
    """Both versions decode what an encoder wrote, whatever bytes follow."""
    text = f"PROXY TCP4 {src} {dst} {sp} {dp}\r\n".encode()
    for raw in (text, v2(str(src), str(dst), sp, dp)):
        result = parse(raw + tail)
        assert isinstance(result, ProxyHeader)
        assert result.source == (src, sp)
        assert result.destination == (dst, dp)
        assert result.length == len(raw)


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),
        ("11.0.0.1", False),
        ("fd00::5", True),
        ("fe80::1%eth0", False),
        ("not-an-ip", False),
    ],
)
def test_only_configured_networks_are_trusted(peer: str, trusted: bool) -> None:
    """Trust is membership in a configured CIDR; anything unparsable is untrusted."""
    assert is_trusted(peer, ("10.0.0.0/8", "fd00::/8")) is trusted


@pytest.mark.parametrize(
    "raw", [b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n", v2(tlvs=b"\x04\x00\x00")]
)
async def test_reader_consumes_exactly_the_header(raw: bytes) -> None:
    """The reader stops at the header's end so the first SMTP command is still there."""
    reader = asyncio.StreamReader()
    reader.feed_data(raw + b"EHLO client\r\n")
    result = await read_proxy_header(reader)
    assert isinstance(result, ProxyHeader)
    assert await reader.readline() == b"EHLO client\r\n"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"PROXY TCP4 203.0.113.7", Reason.TRUNCATED),
        (v2()[:20], Reason.TRUNCATED),
        (b"EHLO client\r\n", Reason.BAD_SIGNATURE),
        (b"PROXY " + b"1" * 200, Reason.TOO_LONG),
    ],
)
async def test_reader_reports_bad_or_short_headers(raw: bytes, reason: Reason) -> None:
    """A header cut short by EOF or broken reads as a reason, never raises, reads bounded."""
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    assert await read_proxy_header(reader) == Malformed(reason)
    assert len(raw) - len(await reader.read()) <= V1_MAX
