"""Liveness and readiness state: named checks, each ok or not, with a detail.

Pure state the composition root updates (listener bound, config loaded, TLS
loaded, draining) and ``/readyz`` renders. It must not probe anything
itself or import aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = ""


@dataclass
class Health:
    """Readiness is the AND of all checks; a draining gateway is never ready."""

    checks: dict[str, Check] = field(default_factory=dict)
    draining: bool = False
    live: bool = True

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks[name] = Check(ok, detail)

    @property
    def ready(self) -> bool:
        return (
            self.live
            and not self.draining
            and bool(self.checks)
            and all(c.ok for c in self.checks.values())
        )

    def readiness(self) -> dict[str, Any]:
        """The JSON body of ``/readyz``."""
        return {
            "ready": self.ready,
            "draining": self.draining,
            "checks": {
                name: {"ok": c.ok, "detail": c.detail} for name, c in sorted(self.checks.items())
            },
        }
