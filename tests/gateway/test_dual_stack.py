"""Dual-stack listening: one ``[::]:port`` gateway serves IPv4 and IPv6 clients."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import aiohttp
import pytest

from mtapeers.gwconfig import gateway_config
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this host"),
]


async def test_ipv6_wildcard_serves_127_0_0_1_and_loopback_v6(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """listen.smtp "[::]:0": SMTP and HTTP answer on 127.0.0.1 and ::1; an IPv4 client
    is seen (Received, limits, policy) as its IPv4 address, not ::ffff:127.0.0.1."""
    listen = {"smtp": "[::]:0", "http": "[::]:0"}
    async with Gateway(gateway_config(postfix_upstream.port, tls_files, listen=listen)) as gw:
        for host, seen in (("127.0.0.1", b"[127.0.0.1]"), ("::1", b"[IPv6:::1]")):
            mark = f"dual-{uuid.uuid4().hex}"
            client = await RawClient.connect(gw.smtp_port, host=host)
            await client.greet()
            await client.cmd("MAIL FROM:<s@example.org>")
            assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
            assert (await client.cmd("DATA")).code == 354
            assert (await client.cmd(f"Subject: {mark}\r\n\r\nx\r\n.")).code == 250
            await client.cmd("QUIT")
            await client.close()
            message = postfix_upstream.wait_for(mark.encode(), "alice")
            assert b"from client.test (" + seen + b")" in message
        async with aiohttp.ClientSession() as http:
            for host in ("127.0.0.1", "[::1]"):
                async with http.get(f"http://{host}:{gw.http_port}/livez") as resp:
                    assert resp.status == 200
