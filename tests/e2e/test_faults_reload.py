"""Config and certificate swapped kubelet-style (``..data`` symlink) while mail flows.

A broken config is refused (last good keeps serving, readiness stays true, the error
shows in /readyz and the reload metric); a rotated certificate reaches new STARTTLS
sessions. The load's ledger proves no message was lost meanwhile. Runtime ~15 s.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import trustme
import yaml

from eventually import eventually_async
from mtapeers.load import Load, check
from mtapeers.scenario import scenario

pytestmark = [pytest.mark.slow]


def pair(ca: trustme.CA, name: str) -> dict[str, bytes]:
    cert = ca.issue_cert(name, common_name=name)
    return {
        "tls.crt": b"".join(b.bytes() for b in cert.cert_chain_pems),
        "tls.key": cert.private_key_pem.bytes(),
    }


async def served_cn(port: int, ca: trustme.CA) -> str:
    """STARTTLS with a real client; the CN of the certificate the gateway presented."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.check_hostname = False
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    await smtp.connect()
    await smtp.starttls(tls_context=context)
    cert = smtp.get_transport_info("peercert")
    await smtp.quit()
    return str(dict(x[0] for x in cert["subject"])["commonName"])


def reload_count(metrics: str, result: str) -> float:
    m = re.search(rf'^mxgate_config_reload_total{{result="{result}"}} (\S+)$', metrics, re.M)
    return float(m.group(1)) if m else 0.0


async def wait_for_metric(sc: Any, result: str, at_least: float, within: float = 10) -> None:
    async def reloads() -> bool:
        return reload_count(await sc.gateway.metrics(), result) >= at_least

    await eventually_async(reloads, within, f"{at_least:g} {result} reload(s)", interval=0.1)


async def test_config_and_certificate_swaps_under_load(tmp_path: Path, kubelet_mount: Any) -> None:
    """Good swap applies, broken swap is refused with the pod still ready, cert rotates."""
    ca = trustme.CA()
    secret = kubelet_mount.__class__(tmp_path / "secret")
    secret.update(pair(ca, "old.mx.test"))
    tls = {"cert": str(secret.path("tls.crt")), "key": str(secret.path("tls.key"))}
    written: dict[str, Any] = {}

    def place(cfg: dict[str, Any]) -> Path:
        written.update(cfg)
        kubelet_mount.update({"gateway.yaml": yaml.safe_dump(cfg)})
        return Path(kubelet_mount.path("gateway.yaml"))

    async with scenario(tmp_path, place=place, tls=tls) as sc:
        load = Load("127.0.0.1", sc.smtp_port, total=300, concurrency=10, pause=0.05, deadline=90)
        task = asyncio.create_task(load.run())
        assert await served_cn(sc.smtp_port, ca) == "old.mx.test"

        good = {**written, "domains": ["accepted.test", "second.test"]}
        kubelet_mount.update({"gateway.yaml": yaml.safe_dump(good)})
        await wait_for_metric(sc, "success", 1)

        kubelet_mount.update({"gateway.yaml": "hostname: [broken\n"})
        await wait_for_metric(sc, "failure", 1)
        status, detail = await sc.gateway.readyz()
        assert status == 200, detail
        assert "not valid YAML" in str(detail)

        secret.update(pair(ca, "new.mx.test"))

        async def rotated() -> bool:
            return await served_cn(sc.smtp_port, ca) == "new.mx.test"

        await eventually_async(rotated, 10, "the rotated certificate to be served", interval=0.1)

        second = await aiosmtplib.send(
            b"Subject: t\r\nX-Test-Id: second\r\n\r\nhi\r\n",
            sender="a@sender.test",
            recipients=["b@second.test"],
            hostname="127.0.0.1",
            port=sc.smtp_port,
            start_tls=False,
        )
        sent = await task
        ledger = check(sent, [i for i in sc.upstream.message_ids() if i != "second"])
        print("ledger:", ledger)  # shown with -s / on failure
        metrics = await sc.gateway.metrics()
    assert second[1].startswith("2.0.0"), "the good reload (new domain) was not applied"
    assert ledger.problems == (), ledger
    assert ledger.accepted == 300, ledger
    assert "mxgate_tls_certificate_not_after_seconds" in metrics


async def test_starts_before_operator_and_cert_manager_then_picks_files_up(
    tmp_path: Path, kubelet_mount: Any
) -> None:
    """Empty optional mounts: live but not ready; the pair arriving makes it ready and
    STARTTLS serve it; the policy file arriving is loaded by the watcher."""
    ca = trustme.CA()
    secret = kubelet_mount.__class__(tmp_path / "secret")
    tls = {"cert": str(secret.path("tls.crt")), "key": str(secret.path("tls.key"))}
    policy = kubelet_mount.path("policy.json")
    async with scenario(tmp_path, tls=tls, policy_path=policy, ready=False) as sc:
        status, detail = await sc.gateway.readyz()
        assert status == 503, detail
        assert detail["checks"]["tls"]["ok"] is False
        secret.update(pair(ca, "late.mx.test"))
        await sc.gateway.wait_ready(within=10)
        assert await served_cn(sc.smtp_port, ca) == "late.mx.test"
        rule = {"id": "late", "mode": "audit", "scope": {"sender_domains": ["x.test"]}}
        kubelet_mount.update({"policy.json": json.dumps({"version": 1, "rules": [rule]})})
        await wait_for_metric(sc, "success", 2)
        metrics = await sc.gateway.metrics()
    assert 'mxgate_config_reload_total{result="failure"} 1.0' in metrics  # the missing pair
