"""Every way a STARTTLS handshake can fail releases the connection's slots exactly once.

A TLS 1.0/1.1-only client, garbage instead of a ClientHello, a client that stalls or
hangs up mid-handshake: after a storm of each, the connections gauge is 0, the per-IP
and total admission counts are 0, and a new client from the same address is served.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mtapeers.gwconfig import gateway_config
from mtapeers.hostile import FAILURES
from mtapeers.observe import metric, settled
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix

PER_IP = 3  # a storm of more failures than this from one address must not lock it out


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
