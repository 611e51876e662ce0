"""A gateway never fails to start because of the operator's policy file (issue 18 item 1).

The real ``mxgate gateway`` process with ``--policy``: a file past the shared limit table
(1,001 MTA-STS policies, as 16 policies x 64 domains once rendered) is refused, the
gateway serves its own config's default policy, says why in ``/readyz`` and
``mxgate_policy_file_refused``, and takes the next good file without a restart.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from eventually import eventually_async
from mtapeers.ports import free_port
from mxgate_gateway.config.model import MAX_MTA_STS_POLICIES


def policy_file(mta_sts_domains: int) -> str:
    policies = [
        {"domain": f"d{i}.accepted.test", "mode": "testing", "mx": ["mx.test"]}
        for i in range(mta_sts_domains)
    ]
    rule = {"id": "ns/p", "mode": "audit", "scope": {"sender_domains": ["bank.test"]}}
    return json.dumps({"version": 1, "rules": [rule], "mta_sts_policies": policies})


async def wait_http(url: str, timeout: float = 20) -> tuple[int, str]:
    async def get() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()

    return await eventually_async(
        get, timeout, f"{url} to answer", interval=0.1, ignore=(aiohttp.ClientError,)
    )


def refused_gauge(metrics: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith("mxgate_policy_file_refused "))
    return float(line.split()[1])


async def test_a_policy_file_past_the_limits_never_stops_a_gateway_from_starting(
    tmp_path: Path,
) -> None:
    """Start with an over-limit policy file: ready on the default policy, refusal visible,
    the next good file loads and the gauge returns to 0."""
    smtp_port, http_port = free_port(), free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "hostname: mx.test\n"
        f"listen: {{smtp: '127.0.0.1:{smtp_port}', http: '127.0.0.1:{http_port}'}}\n"
        "domains: [accepted.test]\n"
        f"upstreams: [{{address: '127.0.0.1:{free_port()}'}}]\n"
        "limits: {drain_timeout: 1}\n"
    )
    policy = tmp_path / "policy.json"
    policy.write_text(policy_file(MAX_MTA_STS_POLICIES + 1))
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "mxgate_gateway.cli", "gateway"),
        *("--config", str(config), "--policy", str(policy)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        status, body = await wait_http(f"{base}/readyz")
        assert status == 200, body
        check: dict[str, Any] = json.loads(body)["checks"]["policy_file"]
        assert check["ok"] is True
        assert check["detail"].startswith("refused, serving without it")
        assert "mta_sts_policies" in check["detail"]
        assert refused_gauge((await wait_http(f"{base}/metrics"))[1]) == 1

        policy.write_text(policy_file(MAX_MTA_STS_POLICIES))

        async def accepted() -> bool:
            return refused_gauge((await wait_http(f"{base}/metrics"))[1]) == 0

        await eventually_async(accepted, 20, "the refused gauge back to 0", interval=0.2)
        detail = json.loads((await wait_http(f"{base}/readyz"))[1])["checks"]["policy_file"]
        assert detail == {"ok": True, "detail": "loaded"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b'"event": "policy_file_refused"' in err or b"policy_file_refused" in err
