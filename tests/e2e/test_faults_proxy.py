"""PROXY protocol v1 and v2 through a real HAProxy; connection floods against the limits.

HAProxy (Debian's, loopback, ``send-proxy`` / ``send-proxy-v2``) forwards clients that
connect from distinct 127.x addresses; the upstream's Received header must name the
original client, not HAProxy. Floods are bounded in count and time. Runtime ~10 s.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiosmtplib
import pytest

from eventually import eventually_async
from mtapeers.haproxy import HAProxy
from mtapeers.load import message
from mtapeers.scenario import scenario

pytestmark = [pytest.mark.slow]


async def send_from(source: str, port: int, test_id: str) -> None:
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=False, source_address=(source, 0)
    )
    await smtp.connect()
    await smtp.sendmail("a@sender.test", ["b@accepted.test"], message(test_id, "b@accepted.test"))
    await smtp.quit()


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs Debian haproxy (make test)")
async def test_proxy_v1_and_v2_through_haproxy_name_the_real_client(tmp_path: Path) -> None:
    """The upstream's Received header shows 127.0.0.77 / 127.0.0.78, the real clients."""
    proxy = {"proxy_protocol": {"enabled": True, "trusted_networks": ["127.0.0.1/32"]}}
    async with scenario(tmp_path, listen=proxy) as sc:
        haproxy = HAProxy(tmp_path, f"127.0.0.1:{sc.smtp_port}")
        await haproxy.start()
        try:
            await send_from("127.0.0.77", haproxy.v1_port, "via-v1")
            await send_from("127.0.0.78", haproxy.v2_port, "via-v2")
        finally:
            await haproxy.stop()
        got = {str(m["X-Test-Id"]): str(m["Received"]) for m in sc.upstream.messages()}
    assert "127.0.0.77" in got["via-v1"], got["via-v1"]
    assert "127.0.0.78" in got["via-v2"], got["via-v2"]
    assert all("127.0.0.1]" not in r for r in got.values()), got


async def first_line(port: int, source: str = "127.0.0.1", send: bytes = b"") -> bytes:
    """Connect (from ``source``), optionally send bytes, return the first line (b'' = closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        if send:
            writer.write(send)
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def test_proxy_header_rules_for_trusted_and_untrusted_peers(tmp_path: Path) -> None:
    """Trusted peer: garbage header → closed. Untrusted peer: PROXY line → closed too."""
    proxy = {"proxy_protocol": {"enabled": True, "trusted_networks": ["127.0.0.1/32"]}}
    async with scenario(tmp_path, listen=proxy) as sc:
        assert await first_line(sc.smtp_port, send=b"EHLO no-header\r\n") == b""
        ok = b"PROXY TCP4 192.0.2.9 127.0.0.1 5555 25\r\n"
        assert (await first_line(sc.smtp_port, send=ok)).startswith(b"220 ")
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", sc.smtp_port, local_addr=("127.0.0.9", 0)
        )
        assert (await reader.readline()).startswith(b"220 ")
        writer.write(ok)
        line = await asyncio.wait_for(reader.readline(), 10)
        assert line == b"" or line.startswith(b"421 ")
        writer.close()


async def hold(port: int, source: str) -> tuple[bytes, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return await asyncio.wait_for(reader.readline(), 10), writer


async def test_flood_from_one_address_hits_the_per_ip_limit(tmp_path: Path) -> None:
    """30 connections from one address: 5 greeted, 25 told 421 4.7.0; slots come back."""
    limits = {"max_connections_per_ip": 5, "max_connections": 100}
    async with scenario(tmp_path, limits=limits) as sc:
        held = await asyncio.gather(*(hold(sc.smtp_port, "127.0.0.1") for _ in range(30)))
        lines = [line for line, _ in held]
        assert sum(line.startswith(b"220 ") for line in lines) == 5
        assert sum(line.startswith(b"421 4.7.0 ") for line in lines) == 25
        other = await first_line(sc.smtp_port, source="127.0.0.2")
        assert other.startswith(b"220 "), "another address must not be limited"
        for _, writer in held:
            writer.close()

        async def greeted() -> bool:  # once the gateway notices the closes
            return (await first_line(sc.smtp_port)).startswith(b"220 ")

        await eventually_async(greeted, 5, "the held slots to be released", interval=0.1)


async def test_flood_from_many_addresses_hits_the_total_limit(tmp_path: Path) -> None:
    """60 clients from 60 addresses against a total of 40: 40 greeted, 20 told 421 4.7.0."""
    limits = {"max_connections_per_ip": 5, "max_connections": 40}
    async with scenario(tmp_path, limits=limits) as sc:
        sources = [f"127.0.{1 + i // 200}.{1 + i % 200}" for i in range(60)]
        held = await asyncio.gather(*(hold(sc.smtp_port, s) for s in sources))
        lines = [line for line, _ in held]
        for _, writer in held:
            writer.close()
    assert sum(line.startswith(b"220 ") for line in lines) == 40
    assert sum(line.startswith(b"421 4.7.0 ") for line in lines) == 20


async def test_silent_client_is_cut_after_the_greeting_timeout(tmp_path: Path) -> None:
    """A client that never speaks does not hold its slot past limits.greeting_timeout."""
    async with scenario(tmp_path, limits={"greeting_timeout": 1}) as sc:
        reader, writer = await asyncio.open_connection("127.0.0.1", sc.smtp_port)
        assert (await reader.readline()).startswith(b"220 ")
        rest = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert rest == b"" or rest.startswith(b"421 ")


async def test_slow_drip_data_is_cut_at_the_data_timeout(tmp_path: Path) -> None:
    """A client dripping one DATA line per 0.3 s cannot hold its slot past data_timeout."""
    async with scenario(tmp_path, limits={"data_timeout": 1.5}) as sc:
        reader, writer = await asyncio.open_connection("127.0.0.1", sc.smtp_port)
        await reader.readline()
        writer.write(b"EHLO drip.test\r\nMAIL FROM:<a@sender.test>\r\n")
        writer.write(b"RCPT TO:<b@accepted.test>\r\n")
        await writer.drain()
        while not (await reader.readline()).startswith(b"250 2.1.5"):
            pass
        writer.write(b"DATA\r\n")
        assert (await reader.readline()).startswith(b"354 ")
        closed = False
        for n in range(30):  # would take 9 s; the timeout must end it after ~1.5 s
            try:
                writer.write(f"line {n}\r\n".encode())
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 0.3)
            except TimeoutError:
                continue
            except ConnectionError:
                line = b""
            assert not line.startswith(b"250"), line
            closed = True
            break
        writer.close()
        ids = sc.upstream.message_ids()
    assert closed, "the dripping client was never cut off"
    assert ids == []
