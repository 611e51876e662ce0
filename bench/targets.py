"""The things being measured, each started fresh per workload and pointed at the sink.

``direct`` is the sink itself (the limit of this box); ``mxgate`` the gateway as
users run it (the default production config: upstream TLS opportunistic to a
Postfix that offers STARTTLS, JSON logs at info, the policy engine in audit with
a rule, the loss report); ``mxgate-plain`` the same process with ``tls: none`` to
smtp-sink and warning-level logs; ``mxgate-untuned`` that without uvloop and
pooled upstream sessions (the two defaults it measures); ``haraka`` the peer;
``blackhole`` a second smtp-sink that is NOT the counted upstream (it proves a run
whose 250s never reach the sink fails). This module starts and stops targets; it
must not generate load or judge results.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import haraka
from bench.certs import HOSTNAME, CertPair
from bench.procs import Child, free_port, wait_smtp_banner
from bench.tls_upstream import PostfixTLSUpstream
from mtapeers.smtpsink import SmtpSink

START_TIMEOUT = 30.0


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Running:
    """A started target: where to send load and which process tree to measure."""

    name: str
    pid: int
    port: int
    tls: bool  # offers STARTTLS
    stop: Callable[[], Awaitable[None]]
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class TargetSpec:
    name: str
    tls: bool  # can be measured on STARTTLS workloads
    upstream: str = "sink"  # "sink" (smtp-sink, plaintext) | "postfix-tls" (offers STARTTLS)


TARGETS: dict[str, TargetSpec] = {
    "direct": TargetSpec("direct", tls=False),
    "mxgate": TargetSpec("mxgate", tls=True, upstream="postfix-tls"),  # the headline row
    "mxgate-plain": TargetSpec("mxgate-plain", tls=True),  # tls: none upstream, warning logs
    "mxgate-untuned": TargetSpec("mxgate-untuned", tls=True),  # plain, no uvloop, no pool
    "haraka": TargetSpec("haraka", tls=True),
    "blackhole": TargetSpec("blackhole", tls=False),
}


def mxgate_config(
    port: int, http_port: int, upstream_port: int, cert: CertPair, production: bool = True
) -> dict[str, object]:
    """The gateway config used for the bench: one upstream, connection limits opened up.

    ``production``: what examples/gateway-production.yaml and the defaults give a user
    (upstream TLS opportunistic, JSON logs at info, the policy engine in audit with a
    scoped rule, default message size); otherwise the lean variant (``tls: none``,
    warning-level logs, no rules).
    """
    upstream: dict[str, object] = {"address": f"127.0.0.1:{upstream_port}"}
    policy: dict[str, object] = {"mode": "opportunistic"}
    level = "warning"
    if production:
        upstream["tls"] = "opportunistic"
        policy = {
            "mode": "audit",
            "rules": [
                {
                    "id": "partners",
                    "mode": "require",
                    "priority": 100,
                    "scope": {"sender_domains": ["bank.example", "*.bank.example"]},
                }
            ],
        }
        level = "info"
    else:
        upstream["tls"] = "none"
    return {
        "hostname": HOSTNAME,
        "listen": {"smtp": f"127.0.0.1:{port}", "http": f"127.0.0.1:{http_port}"},
        "domains": ["accepted.test"],
        "tls": {"cert": str(cert.cert), "key": str(cert.key)},
        "upstreams": [upstream],
        "policy": policy,
        "limits": {
            "max_connections": 5000,  # workload (e) holds 1,000 idle connections from one IP
            "max_connections_per_ip": 5000,
        },
        "log": {"format": "json", "level": level},
    }


def mxgate_argv(config: Path) -> list[str]:
    script = Path(sys.executable).parent / "mxgate"
    exe = str(script) if script.exists() else shutil.which("mxgate")
    if not exe:
        raise RuntimeError("the `mxgate` command is not installed (pip install -e .)")
    return [exe, "gateway", "--config", str(config)]


async def start_target(
    name: str, sink: SmtpSink | PostfixTLSUpstream, workdir: Path, cert: CertPair
) -> Running:
    """Start target ``name`` relaying to ``sink``; return once it greets with 220."""
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "direct":
        return Running(name, sink.pid, sink.port, tls=False, stop=_nothing)
    if name == "blackhole":
        hole = await SmtpSink.start(workdir, name="blackhole", max_conns=4096)
        return Running(name, hole.pid, hole.port, tls=False, stop=hole.stop)
    port = free_port()
    if name.startswith("mxgate"):
        config = workdir / "mxgate.yaml"
        production = name == "mxgate"
        data = mxgate_config(port, free_port(), sink.port, cert, production)
        config.write_text(yaml.safe_dump(data))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("MXGATE_UVLOOP", None)  # the defaults (on), unless measuring without them
        env.pop("MXGATE_UPSTREAM_POOL", None)
        if name == "mxgate-untuned":
            env["MXGATE_UVLOOP"] = env["MXGATE_UPSTREAM_POOL"] = "0"
        child = await Child.start(name, mxgate_argv(config), workdir / "mxgate.log", env)
    elif name == "haraka":
        binary = await haraka.ensure_installed()
        home = haraka.write_config(workdir / "haraka", port, sink.port, cert)
        node = shutil.which("node") or "node"
        child = await Child.start(
            name, [node, str(binary), "-c", str(home)], workdir / "haraka.log"
        )
    else:
        raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGETS)})")
    try:
        await wait_smtp_banner("127.0.0.1", port, START_TIMEOUT, child)
    except BaseException:
        await child.stop()
        raise
    return Running(name, child.pid, port, tls=True, stop=child.stop)
