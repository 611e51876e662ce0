"""Find the control plane's binaries: helm, kube-apiserver and cert-manager's CRDs (built or
fetched and cached by scripts/build-control-plane.sh), etcd (Debian etcd-server), kubectl.

This module decides between "ready", "skip with one clear reason" and "broken" (raise);
it must not start servers. A missing Go toolchain or unreachable module proxy is a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-control-plane.sh"
NO_GO_EXIT = 3


@dataclass(frozen=True)
class Tools:
    """Absolute paths of every binary the control plane fixtures run."""

    helm: Path
    kube_apiserver: Path
    etcd: Path
    kubectl: Path
    cert_manager_crds: Path
    cert_manager_controller: Path


@dataclass(frozen=True)
class Unavailable:
    """Why the control plane cannot run here: one line, shown as the skip reason."""

    reason: str


class BuildFailed(RuntimeError):
    """The Go toolchain and module proxy work, yet the build failed: a real defect."""


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def _parse_build_output(stdout: str) -> dict[str, Path]:
    """Map tool name to binary path from lines like ``helm v3.20.2 cached /path``."""
    paths: dict[str, Path] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in {"built", "cached", "fetched"}:
            paths[parts[0]] = Path(parts[3])
    return paths


def _proxy_reachable() -> str | None:
    """Return None when the Go module proxy answers, else its first error line."""
    mod = (REPO / "tools/k8s/kube-apiserver/go.mod").read_text(encoding="utf-8")
    version = next(
        line.split()[-1]
        for line in mod.splitlines()
        if line.startswith("require k8s.io/kubernetes")
    )
    probe = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO / "tools/k8s/kube-apiserver",
    )
    if probe.returncode == 0:
        return None
    try:
        return str(json.loads(probe.stdout)["Error"]).splitlines()[0]
    except (ValueError, KeyError, IndexError):
        lines = probe.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit {probe.returncode}"


def ensure_tools(report: list[str]) -> Tools | Unavailable:
    """Build or reuse helm and kube-apiserver; find etcd and kubectl.

    Appends one human-readable line per step to ``report``. Raises BuildFailed only when
    Go and its module proxy work but the build still fails.
    """
    etcd = _which("etcd")
    kubectl = _which("kubectl")
    if etcd is None:
        return Unavailable("no etcd binary (Debian etcd-server; `make system-deps` installs it)")
    if kubectl is None:
        return Unavailable("no kubectl binary on PATH")
    if os.environ.get("MXGATE_KUBE_SKIP"):
        return Unavailable(f"MXGATE_KUBE_SKIP={os.environ['MXGATE_KUBE_SKIP']} set by the caller")
    run = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "all"],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode == NO_GO_EXIT:
        return Unavailable(run.stderr.strip() or "no Go toolchain")
    if run.returncode != 0:
        proxy_error = _proxy_reachable() if _which("go") else "no Go toolchain"
        if proxy_error is not None:
            return Unavailable(f"Go module proxy unreachable: {proxy_error}")
        tail = "\n".join(run.stderr.strip().splitlines()[-20:])
        raise BuildFailed(f"scripts/build-control-plane.sh failed:\n{tail}")
    paths = _parse_build_output(run.stdout)
    report.extend(run.stdout.strip().splitlines())
    return Tools(
        helm=paths["helm"],
        kube_apiserver=paths["kube-apiserver"],
        etcd=etcd,
        kubectl=kubectl,
        cert_manager_crds=paths["cert-manager-crds"],
        cert_manager_controller=paths["cert-manager-controller"],
    )
