"""Gateway configs for fault tests, and one context manager that runs the whole set-up.

``scenario`` starts a recording upstream and the ``mxgate gateway`` process with a
config written from ``overrides``, yields both, and stops them by PID afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mtapeers.gatewayproc import GatewayProcess
from mtapeers.ports import free_port
from mtapeers.upstream import RecordingUpstream


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def process_config(
    smtp_port: int,
    http_port: int,
    upstreams: list[str],
    upstream_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hostname": "mx.gateway.test",
        "listen": {"smtp": f"127.0.0.1:{smtp_port}", "http": f"127.0.0.1:{http_port}"},
        "domains": ["accepted.test"],
        "upstreams": [
            {"address": a, "tls": "none", "connect_timeout": 2, "timeout": 10}
            | (upstream_options or {})
            for a in upstreams
        ],
        "limits": {"drain_timeout": 10, "max_connections_per_ip": 100},
        "log": {"format": "json", "level": "info"},
    }
    return merge(base, overrides)


@dataclass
class Scenario:
    gateway: GatewayProcess
    upstream: RecordingUpstream
    smtp_port: int
    config_path: Path


@asynccontextmanager
async def scenario(
    tmp: Path,
    *,
    delay: float = 0.0,
    place: Callable[[dict[str, Any]], Path] | None = None,
    policy_path: Path | None = None,
    dead_upstreams_first: int = 0,
    ready: bool = True,
    **overrides: Any,
) -> AsyncIterator[Scenario]:
    """Upstream + gateway on loopback. ``place`` writes the config dict somewhere
    (e.g. a kubelet mount) and returns its path; by default it goes to ``tmp``."""
    upstream = RecordingUpstream(tmp / "upstream", delay=delay)
    await upstream.start()
    smtp_port, http_port = free_port(), free_port()
    dead = [f"127.0.0.1:{free_port()}" for _ in range(dead_upstreams_first)]  # nobody listens
    cfg = process_config(smtp_port, http_port, [*dead, upstream.address], **overrides)
    if place is None:
        config_path = tmp / "gateway.yaml"
        config_path.write_text(yaml.safe_dump(cfg))
    else:
        config_path = place(cfg)
    gateway = GatewayProcess(config_path, policy_path, http_port=http_port)
    try:
        await gateway.start(ready=ready)
        yield Scenario(gateway, upstream, smtp_port, config_path)
    finally:
        await gateway.stop()
        await upstream.kill()
