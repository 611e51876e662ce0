"""Admission before the greeting: limits, PROXY only from trusted peers, the real client."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from mxgate_gateway.config.model import Config
from mxgate_gateway.smtp.gatekeeper import Gatekeeper, refusal_labels

LB = ipaddress.ip_address("10.0.0.5")
CLIENT = ipaddress.ip_address("203.0.113.7")


def config(enabled: bool = True, per_ip: int = 2, total: int = 10) -> Config:
    return Config.model_validate(
        {
            "hostname": "mx.test",
            "domains": ["accepted.test"],
            "upstreams": [{"address": "127.0.0.1:25"}],
            "listen": {
                "proxy_protocol": {
                    "enabled": enabled,
                    "trusted_networks": ["10.0.0.0/8"],
                    "timeout": 0.2,
                }
            },
            "limits": {"max_connections_per_ip": per_ip, "max_connections": total},
        }
    )


def reader(data: bytes = b"", eof: bool = False) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    if eof:
        r.feed_eof()
    return r


V1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 25\r\n"


async def test_trusted_balancer_names_the_real_client() -> None:
    """From a trusted peer the header is read and the client is the address it names."""
    keeper = Gatekeeper(config().limits)
    r = reader(V1 + b"EHLO x\r\n")
    gate = await keeper.admit(config(), LB, r)
    assert gate.admitted
    assert gate.client_ip == CLIENT
    assert await r.readline() == b"EHLO x\r\n"
    assert keeper.limiter.count(str(CLIENT)) == 1


async def test_untrusted_peer_is_not_read_and_keeps_its_own_address() -> None:
    """An untrusted peer's bytes are left alone: it is greeted as itself."""
    keeper = Gatekeeper(config().limits)
    r = reader(V1)
    gate = await keeper.admit(config(), CLIENT, r)
    assert gate.client_ip == CLIENT
    assert await r.readline() == V1  # not consumed; the server will treat it as a command


@pytest.mark.parametrize(
    ("data", "eof", "label"),
    [
        (b"EHLO x\r\n", False, "proxy_bad_signature"),
        (b"PROXY TCP4 1.2.3.4", True, "proxy_truncated"),
        (b"", False, "proxy_timeout"),
    ],
)
async def test_bad_or_missing_header_from_balancer_closes_without_reply(
    data: bytes, eof: bool, label: str
) -> None:
    """Malformed, cut-short or absent headers close the connection and free its slot."""
    refused: list[str] = []
    keeper = Gatekeeper(config().limits, on_refused=refused.append)
    gate = await keeper.admit(config(), LB, reader(data, eof))
    assert not gate.admitted
    assert gate.reply is None
    assert refused == [label]
    assert label in refusal_labels()
    assert keeper.limiter.total == 0


async def test_per_client_limit_counts_the_real_client_behind_the_balancer() -> None:
    """Many connections from the balancer pass; the third from one real client gets 421."""
    keeper = Gatekeeper(config(per_ip=2).limits)
    gates = [await keeper.admit(config(per_ip=2), LB, reader(V1)) for _ in range(3)]
    assert [g.admitted for g in gates] == [True, True, False]
    assert gates[2].reply is not None
    assert gates[2].reply.startswith("421 4.7.0 ")
    other = await keeper.admit(config(), LB, reader(V1.replace(b"203.0.113.7", b"203.0.113.8")))
    assert other.admitted


async def test_total_limit_and_release() -> None:
    """At the total limit everyone gets 421 4.7.0; releasing a gate makes room."""
    cfg = config(enabled=False, total=1)
    keeper = Gatekeeper(cfg.limits)
    first = await keeper.admit(cfg, CLIENT, reader())
    second = await keeper.admit(cfg, ipaddress.ip_address("198.51.100.1"), reader())
    assert second.refused == "total_limit"
    keeper.release(first)
    assert (await keeper.admit(cfg, CLIENT, reader())).admitted


async def test_proxy_disabled_trusts_nobody() -> None:
    """With proxy_protocol off even a 'trusted' network is just a client."""
    cfg = config(enabled=False)
    gate = await Gatekeeper(cfg.limits).admit(cfg, LB, reader(V1))
    assert gate.client_ip == LB
