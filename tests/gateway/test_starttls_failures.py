"""Every way a STARTTLS handshake can fail releases the connection's slots exactly once.

A TLS 1.0/1.1-only client, garbage instead of a ClientHello, a client that stalls or
hangs up mid-handshake: after a storm of each, the connections gauge is 0, the per-IP
and total admission counts are 0, and a new client from the same address is served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from mtapeers.gwconfig import gateway_config
from mtapeers.observe import metric, settled
from mtapeers.postfix import Postfix
from mtapeers.procs import run
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix

PER_IP = 3  # a storm of more failures than this from one address must not lock it out


async def legacy_tls_client(port: int, flag: str) -> None:
    """openssl s_client speaking only an old TLS version: the handshake fails."""
    done = await run(
        "openssl",
        "s_client",
        "-starttls",
        "smtp",
        "-connect",
        f"127.0.0.1:{port}",
        flag,
        "-cipher",
        "DEFAULT@SECLEVEL=0",
        "-quiet",
        stdin=b"QUIT\r\n",
    )
    assert done.returncode != 0


async def after_starttls(port: int, then: Callable[[RawClient], Awaitable[None]]) -> None:
    client = await RawClient.connect(port)
    await client.greet()
    assert (await client.cmd("STARTTLS")).code == 220
    await then(client)


async def garbage_hello(client: RawClient) -> None:
    await client.send(b"\x16\x03\x01\x00\x05garbage-that-is-no-client-hello\r\n" * 4)
    assert await client.closed()
    await client.close()


async def truncated_hello(client: RawClient) -> None:
    await client.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # then EOF
    client.writer.write_eof()
    assert await client.closed()
    await client.close()


async def reset_mid_handshake(client: RawClient) -> None:
    await client.send(b"\x16\x03\x01\x02\x00\x01")
    await client.reset()


async def stall(client: RawClient) -> None:
    assert await client.closed(timeout=10)  # cut off after handshake_timeout
    await client.close()


FAILURES: dict[str, Callable[[int], Awaitable[None]]] = {
    "tls1.0 only": lambda port: legacy_tls_client(port, "-tls1"),
    "tls1.1 only": lambda port: legacy_tls_client(port, "-tls1_1"),
    "garbage hello": lambda port: after_starttls(port, garbage_hello),
    "truncated hello then EOF": lambda port: after_starttls(port, truncated_hello),
    "reset mid-handshake": lambda port: after_starttls(port, reset_mid_handshake),
    "stalled handshake": lambda port: after_starttls(port, stall),
}


@pytest.fixture
async def strict_gateway(postfix_upstream: Postfix, tls_files: dict[str, Path]) -> Gateway:  # type: ignore[misc]
    tls = {"cert": str(tls_files["cert"]), "key": str(tls_files["key"]), "handshake_timeout": 0.5}
    limits = {"max_connections_per_ip": PER_IP, "max_connections": 50, "drain_timeout": 0}
    config = gateway_config(postfix_upstream.port, tls_files, tls=tls, limits=limits)
    async with Gateway(config) as gw:
        yield gw


@pytest.mark.parametrize("kind", FAILURES)
async def test_failed_handshakes_release_their_slot(strict_gateway: Gateway, kind: str) -> None:
    """More failures than the per-IP limit, then the address is still served; gauge 0."""
    for _ in range(PER_IP + 2):
        await FAILURES[kind](strict_gateway.smtp_port)
    await settled(strict_gateway)
    client = await RawClient.connect(strict_gateway.smtp_port)
    assert (await client.greet()).code == 250
    assert (await client.cmd("QUIT")).code == 221
    await client.close()
    await settled(strict_gateway)
    failures = sum(
        metric(strict_gateway, "mxgate_starttls_failures_total", reason=reason)
        for reason in ("handshake_error", "timeout")
    )
    assert failures == PER_IP + 2


async def test_a_storm_of_every_failure_kind_at_once_leaves_nothing_held(
    strict_gateway: Gateway,
) -> None:
    """The kinds concurrently, PER_IP at a time (within the limit): back to baseline after."""
    kinds = list(FAILURES.values()) * 2
    for start in range(0, len(kinds), PER_IP):
        group = kinds[start : start + PER_IP]
        await asyncio.gather(*(fail(strict_gateway.smtp_port) for fail in group))
        await settled(strict_gateway)
    await settled(strict_gateway)
    client = await RawClient.connect(strict_gateway.smtp_port)
    assert (await client.greet()).code == 250
    await client.close()
    await settled(strict_gateway)
