"""Drive the one-node cluster of scripts/kube-node.sh (real kubelet, containerd, kube-proxy,
CNI bridge) for the ``pods`` tests: say why it cannot run here, start it, stop it.

The shell script is the only owner of the node's processes and host changes (``make kube-up``
runs the same); this module must not start or kill anything itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from eventually import eventually

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kube-node.sh"
STATE = Path(os.environ.get("MXGATE_KUBE_STATE", "/tmp/mxgate-kube"))
NO_TOOL_EXIT = 3  # the build scripts' "cannot build here" (no Go, buildah, root)
UP_TIMEOUT_S = 1800  # a cold machine builds four Go binaries and three images first


class NodeFailed(RuntimeError):
    """The machine can run the node, yet it did not come up: a real defect."""


@dataclass(frozen=True)
class KubeNode:
    """A running node: its admin kubeconfig and the image references it has loaded."""

    kubeconfig: Path
    images: dict[str, str]  # "mxgate" | "mxgate-postfix" | ... -> "localhost/name:key"
    state: Path
    startup_seconds: float

    @property
    def node_ip(self) -> str:
        return "198.19.240.1"


def unavailable() -> str | None:
    """One line saying why this machine cannot run the node, or None when it can."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "check"], capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return None
    return (done.stdout.strip() or done.stderr.strip() or f"exit {done.returncode}").splitlines()[0]


def prepare() -> subprocess.CompletedProcess[str]:
    """Build (or reuse) the node's binaries and images, outside any test's timeout."""
    return subprocess.run(
        [
            "bash",
            "-c",
            "bash scripts/build-control-plane.sh node && bash scripts/build-images.sh all",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=UP_TIMEOUT_S,
    )


def owned_by_live_session(state: Path) -> bool:
    """True while another test session that started the node in ``state`` still runs."""
    try:
        pid = int((state / "owner").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return pid != os.getpid() and Path(f"/proc/{pid}").exists()


def wait_for_other_session(state: Path, timeout: float = UP_TIMEOUT_S) -> None:
    """One node per machine: wait until another session's node is stopped (bounded)."""
    with contextlib.suppress(AssertionError):  # still owned after that: go on, as before
        eventually(lambda: not owned_by_live_session(state), timeout, "the other node", interval=2)


def running(state: Path) -> KubeNode | None:
    """The node ``make kube-up`` left running in ``state``, if its API server answers."""
    if not (state / "env").is_file() or owned_by_live_session(state):
        return None
    kubeconfig = state / "admin.kubeconfig"
    probe = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "--raw=/readyz"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return _node(state, 0.0) if probe.returncode == 0 else None


def up(state: Path) -> KubeNode:
    """``kube-node.sh up`` with its state in ``state``; raises NodeFailed with the log tail."""
    begin = time.monotonic()
    done = subprocess.run(
        ["bash", str(SCRIPT), "up"],
        env=_env(state),
        capture_output=True,
        text=True,
        check=False,
        timeout=UP_TIMEOUT_S,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-30:])
        raise NodeFailed(f"scripts/kube-node.sh up failed (exit {done.returncode}):\n{tail}")
    (state / "owner").write_text(str(os.getpid()), encoding="utf-8")
    return _node(state, time.monotonic() - begin)


def _node(state: Path, seconds: float) -> KubeNode:
    images: dict[str, str] = {}
    for line in (state / "images").read_text(encoding="utf-8").splitlines():
        name, ref, *_ = line.split()
        images[name] = ref
    return KubeNode(state / "admin.kubeconfig", images, state, seconds)


def down(state: Path) -> str:
    """``kube-node.sh down``: stops the node by PID and restores the host; returns its log."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "down"],
        env=_env(state),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise NodeFailed(f"scripts/kube-node.sh down failed:\n{done.stderr}")
    return done.stderr


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "MXGATE_KUBE_STATE": str(state)}
