"""HTTP endpoints and the policy/report wiring, seen from a real SMTP session."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from eventually import eventually_async
from mtapeers.gwconfig import gateway_config
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway

pytestmark = pytest.mark.postfix


async def get(gw: Gateway, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{gw.http_port}{path}") as resp,
    ):
        body = await (resp.json() if resp.content_type == "application/json" else resp.text())
        return resp.status, body


async def send_plaintext(gw: Gateway, sender: str, rcpt: str = "alice@accepted.test") -> list[int]:
    client = await RawClient.connect(gw.smtp_port)
    await client.greet()
    codes = [(await client.cmd(f"MAIL FROM:<{sender}>")).code]
    if codes[0] == 250:
        codes.append((await client.cmd(f"RCPT TO:<{rcpt}>")).code)
        if codes[-1] == 250:
            await client.cmd("DATA")
            codes.append((await client.cmd(f"Subject: {uuid.uuid4().hex}\r\n\r\nx\r\n.")).code)
    await client.cmd("QUIT")
    await client.close()
    return codes


async def test_health_endpoints_report_readiness_with_detail(gateway: Gateway) -> None:
    """/livez is 200; /readyz is 200 with per-check JSON detail once the listener is bound."""
    assert (await get(gateway, "/livez"))[0] == 200
    status, body = await get(gateway, "/readyz")
    assert status == 200
    assert body["ready"] is True
    assert set(body["checks"]) >= {"config", "smtp_listener", "tls"}
    gateway.health.draining = True
    status, body = await get(gateway, "/readyz")
    assert (status, body["ready"], body["draining"]) == (503, False, True)


async def test_metrics_and_report_count_a_plaintext_message(gateway: Gateway) -> None:
    """One plaintext message shows in /metrics (bounded labels) and /report (JSON)."""
    assert await send_plaintext(gateway, "someone@plain.example") == [250, 250, 250]

    async def session_counted() -> tuple[int, str] | None:  # it ends asynchronously after QUIT
        status, text = await get(gateway, "/metrics")
        return (status, text) if 'mxgate_sessions_total{tls="none"} 1.0' in text else None

    status, text = await eventually_async(session_counted, 5, "the session to be counted")
    assert status == 200
    assert 'mxgate_messages_total{outcome="relayed",tls="none"} 1.0' in text
    assert (
        'mxgate_policy_decisions_total{action="accept",mode="opportunistic",rule="(default)"}'
        in text
    )
    (upstream,) = (u.address for u in gateway.config.upstreams)
    assert (
        f'mxgate_upstream_latency_seconds_count{{phase="data",upstream="{upstream}"}} 1.0' in text
    )
    assert "plain.example" not in text  # no raw domains in metric labels
    # nor IPs: the one address allowed is the configured upstream's, as its label value
    assert "127.0.0.1" not in text.replace(f'upstream="{upstream}"', "")
    status, report = await get(gateway, "/report")
    assert status == 200
    since = report["since_start"]
    assert since["messages"]["none"] == 1
    assert since["upstream"]["none"]["accepted"] == 1
    assert since["top_plaintext_sender_domains"][0]["name"] == "plain.example"


@pytest.mark.parametrize(
    ("mode", "codes", "action"),
    [("require", [530], "refuse"), ("audit", [250, 250, 250], "would_refuse")],
)
async def test_policy_rule_refuses_or_would_refuse_plaintext(
    postfix_upstream: Postfix, tls_files: dict[str, Path], mode: str, codes: list[int], action: str
) -> None:
    """A sender-scoped rule: require → 530 5.7.0 at MAIL; audit → delivered but counted."""
    policy = {
        "rules": [{"id": "bank", "mode": mode, "scope": {"sender_domains": ["bank.example"]}}]
    }
    async with Gateway(gateway_config(postfix_upstream.port, tls_files, policy=policy)) as gw:
        assert await send_plaintext(gw, "alerts@bank.example") == codes
        _, text = await get(gw, "/metrics")
        assert (
            f'mxgate_policy_decisions_total{{action="{action}",mode="{mode}",rule="bank"}}' in text
        )
        _, report = await get(gw, "/report")
        (bank,) = [r for r in report["since_start"]["rules"] if r["rule"] == "bank"]
        assert bank[action] == 1


async def test_trace_header_names_the_tls_state(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """policy.trace_header adds one header with the session's TLS version (or none)."""
    policy = {"trace_header": "X-Mxgate-TLS"}
    mark = uuid.uuid4().hex
    async with Gateway(gateway_config(postfix_upstream.port, tls_files, policy=policy)) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        await client.cmd("MAIL FROM:<s@example.org>")
        await client.cmd("RCPT TO:<bob@accepted.test>")
        await client.cmd("DATA")
        assert (await client.cmd(f"Subject: {mark}\r\n\r\nx\r\n.")).code == 250
        await client.close()
    message = postfix_upstream.wait_for(mark.encode(), "bob")
    assert b"\nX-Mxgate-TLS: none\n" in message


async def test_recipient_scoped_rule_refuses_only_that_recipient(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """require for partner.test recipients: 530 5.7.0 at that RCPT, other recipients go on."""
    policy = {
        "rules": [
            {"id": "partner", "mode": "require", "scope": {"recipient_domains": ["partner.test"]}}
        ]
    }
    cfg = gateway_config(
        postfix_upstream.port, tls_files, policy=policy, domains=["accepted.test", "partner.test"]
    )
    async with Gateway(cfg) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
        refused = await client.cmd("RCPT TO:<ops@partner.test>")
        assert (refused.code, refused.enhanced) == (530, "5.7.0")
        assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
        await client.close()
        _, text = await get(gw, "/metrics")
    assert (
        'mxgate_policy_decisions_total{action="refuse",mode="require",rule="partner"} 1.0' in text
    )
    assert 'mxgate_recipients_total{outcome="policy"} 1.0' in text


async def test_a_floor_refuses_despite_a_more_specific_opportunistic_rule(
    postfix_upstream: Postfix, tls_files: dict[str, Path]
) -> None:
    """Issue 18 item 6 in a real session: an opportunistic rule for partner.test from every
    network wins the precedence, a require floor for partner.test still answers 530 5.7.0
    at that RCPT (other recipients go on), and metrics and /report name the floor."""
    policy = {
        "rules": [
            {"id": "ns/author", "mode": "opportunistic",
             "scope": {"recipient_domains": ["partner.test"],
                       "client_cidrs": ["0.0.0.0/0", "::/0"]}},
        ],
        "floors": [
            {"id": "cluster.mxgate.io/admin", "mode": "require",
             "scope": {"recipient_domains": ["partner.test"]}},
        ],
    }  # fmt: skip
    cfg = gateway_config(
        postfix_upstream.port, tls_files, policy=policy, domains=["accepted.test", "partner.test"]
    )
    async with Gateway(cfg) as gw:
        client = await RawClient.connect(gw.smtp_port)
        await client.greet()
        assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
        refused = await client.cmd("RCPT TO:<ops@partner.test>")
        assert (refused.code, refused.enhanced) == (530, "5.7.0")
        assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
        await client.close()
        _, text = await get(gw, "/metrics")
        assert (
            'mxgate_policy_decisions_total{action="refuse",mode="require",'
            'rule="cluster.mxgate.io/admin"} 1' in text
        )
        _, report = await get(gw, "/report")
        (row,) = [r for r in report["since_start"]["rules"] if r["rule"].startswith("cluster")]
        assert row["refuse"] == 1
