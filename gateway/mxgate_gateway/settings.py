"""Process settings: what the command line says, read once at start.

Paths and output format for this process. It must not hold policy or any
value that can change on reload (that lives in the ``Config`` snapshot).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

LogFormat = Literal["json", "console"]

DEV_DIR = Path(".mxgate-dev")
DEV_DOMAIN = "mxgate.test"
DEV_HOSTNAME = "mx.mxgate.test"
DEV_SMTP = "127.0.0.1:2525"
DEV_HTTP = "127.0.0.1:8025"
DEV_PUBLIC = "127.0.0.1:8026"


@dataclass(frozen=True)
class GatewaySettings:
    """``mxgate gateway``: the config file, the optional operator policy file."""

    config_path: Path
    policy_path: Path | None = None
    log_format: LogFormat | None = None  # None: use the config file's ``log.format``


@dataclass(frozen=True)
class DevSettings:
    """``mxgate dev``: where the sink and certificate live, and the addresses."""

    directory: Path = DEV_DIR
    smtp: str = DEV_SMTP
    http: str = DEV_HTTP  # admin: health, metrics, report
    public: str = DEV_PUBLIC  # public: MTA-STS policy, TLS-RPT intake
    domain: str = DEV_DOMAIN
    hostname: str = DEV_HOSTNAME


_OFF = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Tuning:
    """Process-wide speed-ups, on by default; ``MXGATE_UVLOOP=0`` / ``MXGATE_UPSTREAM_POOL=0``
    turn them off (bench/README.md measures both ways)."""

    uvloop: bool = True  # the uvloop event loop, when installed
    upstream_pool: bool = True  # reuse upstream sessions that finished a message cleanly

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Tuning:
        env = os.environ if env is None else env
        return cls(
            uvloop=env.get("MXGATE_UVLOOP", "1").strip().lower() not in _OFF,
            upstream_pool=env.get("MXGATE_UPSTREAM_POOL", "1").strip().lower() not in _OFF,
        )
