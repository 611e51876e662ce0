"""Run the chart's containers as local processes: the command, args and env the chart renders,
from this repo's venv, with only what loopback forces changed (listen ports, file paths).

Each process logs to a file, is polled until its health URL answers, and is stopped by PID.
It must not decide what a test expects; it only runs and reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eventually import eventually
from kubeplane.controlplane import die_with_parent, free_port
from kubeplane.release import Release
from mtapeers.procs import terminate

VENV_BIN = Path(sys.executable).parent


class WorkloadError(AssertionError):
    """A workload exited or never became healthy; the message carries its log tail."""


@dataclass
class Workload:
    """One local process started from a chart container spec."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    health_url: str  # polled until 200; empty: wait for ready_text in the log instead
    ready_text: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, timeout: float = 45.0) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MXGATE_", "KUBE"))}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                env={**base, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            )
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        def healthy() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise WorkloadError(f"{self.name} exited:\n{self.log_tail()}")
            if not self.health_url:
                return self.ready_text in self.log_text()
            with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                return bool(resp.status == 200)

        eventually(
            healthy,
            timeout,
            lambda: f"{self.name} to be healthy at {self.health_url}:\n{self.log_tail()}",
            interval=0.2,
            ignore=(OSError,),
        )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 15 s; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            terminate(self.proc)
        return self.proc.returncode


def venv_command(command: Sequence[str]) -> list[str]:
    """The chart's entry point (``mxgate``, ``mxgate-operator``) resolved in this venv."""
    head = VENV_BIN / command[0]
    if not head.exists():
        raise WorkloadError(f"entry point {command[0]} not installed in {VENV_BIN}")
    return [str(head), *command[1:]]


def replace_flag(args: Sequence[str], flag: str, value: str) -> list[str]:
    """Replace ``--flag=...`` (or append it) in an argument list."""
    out = [a for a in args if not a.startswith(f"{flag}=")]
    return [*out, f"{flag}={value}"]


def operator_workload(
    release: Release, kubeconfig: Path, workdir: Path, extra_env: Mapping[str, str] = {}
) -> Workload:
    """The chart's operator container as a local process authenticating with ``kubeconfig``.

    Only the liveness address moves to a free loopback port; env and args are the chart's.
    """
    container = release.container("operator")
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    args = replace_flag(container.get("args", []), "--liveness", liveness)
    env = {**release.env("operator"), "KUBECONFIG": str(kubeconfig), **extra_env}
    return Workload(
        name="operator",
        argv=[*venv_command(container["command"]), *args],
        env=env,
        log_path=workdir / "operator.log",
        health_url=liveness,
    )
