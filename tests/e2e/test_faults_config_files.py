"""Config files that are not what they seem, against the real ``mxgate gateway`` process.

Issue 12.9: a config path that is a FIFO (or any non-regular file) is refused with a clear
error at start and on reload, and SIGTERM still ends the process promptly: no reader may
hang on it. Runtime ~10 s.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from eventually import eventually_async
from mtapeers.gatewayproc import MXGATE, GatewayProcess
from mtapeers.ports import free_port

pytestmark = [pytest.mark.slow]


def write_config(path: Path, http_port: int, smtp_port: int) -> None:
    path.write_text(
        f"""
hostname: mx.example.test
listen: {{smtp: "127.0.0.1:{smtp_port}", http: "127.0.0.1:{http_port}"}}
domains: [accepted.test]
upstreams: [{{address: "127.0.0.1:{free_port()}"}}]
log: {{format: json}}
"""
    )


async def test_fifo_as_config_is_refused_at_start(tmp_path: Path) -> None:
    """``--config`` naming a FIFO: exit 1 at once, saying it is not a regular file."""
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    proc = await asyncio.create_subprocess_exec(
        str(MXGATE),
        "gateway",
        "--config",
        str(fifo),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("mxgate gateway hung reading a FIFO config")
    assert proc.returncode == 1
    assert b"not a regular file" in err


async def test_config_swapped_for_a_fifo_is_refused_and_sigterm_still_exits(
    tmp_path: Path,
) -> None:
    """A running gateway whose config becomes a FIFO keeps serving the last good config,
    reports the refusal, and exits promptly on SIGTERM (no reload thread holds it up)."""
    config = tmp_path / "config.yaml"
    gw = GatewayProcess(config, http_port=free_port())
    write_config(config, gw.http_port, free_port())
    await gw.start()
    try:
        os.mkfifo(tmp_path / "fifo")
        (tmp_path / "fifo").replace(config)

        async def refused_reload() -> bool:
            return 'mxgate_config_reload_total{result="failure"} 1.0' in await gw.metrics()

        await eventually_async(refused_reload, 10, lambda: f"a refused reload: {gw.tail()}")
        status, body = await gw.readyz()
        assert status == 200
        assert "not a regular file" in body["checks"]["config"]["detail"]
        gw.signal(signal.SIGTERM)
        assert await gw.wait(15) == 0
    finally:
        await gw.stop()
