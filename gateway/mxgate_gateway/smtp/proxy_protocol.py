"""PROXY protocol v1 (text) and v2 (binary) headers: a pure, bounded parser and a reader.

``parse`` turns bytes into a ``ProxyHeader``, a ``Malformed`` value saying why, or
``INCOMPLETE``; ``read_proxy_header`` reads exactly one header from a stream. Neither
decides trust (``is_trusted`` does, from config), logs, or writes to the client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import struct
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final

V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX: Final = 107  # the spec's worst case, CRLF included
V2_MAX_PAYLOAD: Final = 4096  # addresses plus TLVs; HAProxy sends far less

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V1_RE = re.compile(
    rb"PROXY (?:(TCP4|TCP6) ([0-9A-Fa-f:.]{1,45}) ([0-9A-Fa-f:.]{1,45}) (\d{1,5}) (\d{1,5})"
    rb"|UNKNOWN[^\r\n]*)\r\n"
)
_PORT_RE = re.compile(rb"0|[1-9]\d{0,4}")


class Reason(StrEnum):
    """Why a header was refused; bounded, so it may label a metric."""

    BAD_SIGNATURE = "bad_signature"
    BAD_SYNTAX = "bad_syntax"
    BAD_ADDRESS = "bad_address"
    BAD_PORT = "bad_port"
    BAD_VERSION = "bad_version"
    BAD_COMMAND = "bad_command"
    BAD_FAMILY = "bad_family"
    TOO_LONG = "too_long"
    TRUNCATED = "truncated"
    TIMEOUT = "timeout"


class _Incomplete(Enum):
    INCOMPLETE = "incomplete"


INCOMPLETE: Final = _Incomplete.INCOMPLETE


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A valid header. ``source`` is None for v1 UNKNOWN, v2 LOCAL and non-IP families:
    the connection is then treated as coming from the TCP peer itself."""

    version: int
    source: tuple[IPAddress, int] | None
    destination: tuple[IPAddress, int] | None
    length: int  # bytes consumed from the stream


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: Reason


ParseResult = ProxyHeader | Malformed | _Incomplete


def parse(buf: bytes) -> ParseResult:
    """Parse one header at the start of ``buf`` (pure; never reads past the header)."""
    if buf[:1] == b"P":
        return _parse_v1(buf)
    if buf[:1] == b"\r":
        return _parse_v2(buf)
    return Malformed(Reason.BAD_SIGNATURE) if buf else INCOMPLETE


def _parse_v1(buf: bytes) -> ParseResult:
    if b"PROXY "[: len(buf)] != buf[:6]:
        return Malformed(Reason.BAD_SIGNATURE)
    end = buf.find(b"\n", 0, V1_MAX)
    if end < 0:
        return Malformed(Reason.TOO_LONG) if len(buf) >= V1_MAX else INCOMPLETE
    line = buf[: end + 1]
    m = _V1_RE.fullmatch(line)
    if m is None:
        return Malformed(Reason.BAD_SYNTAX)
    if m.group(1) is None:  # UNKNOWN: the balancer could not tell; use the peer
        return ProxyHeader(1, None, None, len(line))
    want = ipaddress.IPv4Address if m.group(1) == b"TCP4" else ipaddress.IPv6Address
    try:
        src, dst = want(m.group(2).decode()), want(m.group(3).decode())
    except ValueError:
        return Malformed(Reason.BAD_ADDRESS)
    ports = m.group(4), m.group(5)
    if not all(_PORT_RE.fullmatch(p) and int(p) <= 65535 for p in ports):
        return Malformed(Reason.BAD_PORT)
    return ProxyHeader(1, (src, int(ports[0])), (dst, int(ports[1])), len(line))


def _parse_v2(buf: bytes) -> ParseResult:
    sig = buf[:12]
    if sig != V2_SIGNATURE[: len(sig)]:
        return Malformed(Reason.BAD_SIGNATURE)
    if len(buf) < 16:
        return INCOMPLETE
    ver_cmd, fam, length = buf[12], buf[13], struct.unpack("!H", buf[14:16])[0]
    if ver_cmd >> 4 != 2:
        return Malformed(Reason.BAD_VERSION)
    command = ver_cmd & 0x0F
    if command > 1:
        return Malformed(Reason.BAD_COMMAND)
    if length > V2_MAX_PAYLOAD:
        return Malformed(Reason.TOO_LONG)
    if len(buf) < 16 + length:
        return INCOMPLETE
    payload, total = buf[16 : 16 + length], 16 + length
    family, transport = fam >> 4, fam & 0x0F
    if family > 3 or transport > 2:
        return Malformed(Reason.BAD_FAMILY)
    if command == 0 or family in (0, 3) or transport != 1:
        # LOCAL (health check), UNSPEC, UNIX or UDP: no usable TCP client address.
        return ProxyHeader(2, None, None, total)
    size, cls = (4, ipaddress.IPv4Address) if family == 1 else (16, ipaddress.IPv6Address)
    if length < 2 * size + 4:
        return Malformed(Reason.TRUNCATED)
    src = cls(payload[:size])
    dst = cls(payload[size : 2 * size])
    sport, dport = struct.unpack("!HH", payload[2 * size : 2 * size + 4])
    return ProxyHeader(2, (src, sport), (dst, dport), total)


def is_trusted(peer: str, networks: tuple[str, ...]) -> bool:
    """True if ``peer`` (an IP string) lies in one of the trusted CIDR ``networks``."""
    try:
        addr = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in ipaddress.ip_network(net) for net in networks)


async def read_proxy_header(reader: asyncio.StreamReader) -> ProxyHeader | Malformed:
    """Read one header from ``reader``; consume nothing after it.

    v1 is read byte-bounded up to LF, v2 by its length field, so the client's first
    SMTP bytes stay in the reader. Bound the wait with ``asyncio.timeout`` (a
    timeout is ``Reason.TIMEOUT``).
    """
    try:
        return await _read(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        return Malformed(Reason.TRUNCATED)


async def _read(reader: asyncio.StreamReader) -> ProxyHeader | Malformed:
    buf = await reader.readexactly(1)
    if buf == b"\r":
        buf += await reader.readexactly(15)
        first = parse(buf)
        if first is INCOMPLETE:
            (length,) = struct.unpack("!H", buf[14:16])
            buf += await reader.readexactly(length)
    else:
        while not buf.endswith(b"\n") and len(buf) < V1_MAX:
            buf += await reader.readexactly(1)
            if buf.endswith(b"\n") or parse(buf) is not INCOMPLETE:
                break
    result = parse(buf)
    if result is INCOMPLETE:
        return Malformed(Reason.TRUNCATED)
    return result
