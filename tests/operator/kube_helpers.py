"""Helpers for the operator's `kube` tests: the CRD, a fake gateway report, polling status."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eventually import eventually
from kubeplane.plugin import Runner
from mtapeers.procs import terminate
from mxgate_gateway.report.loss import LossReport

CRD = Path(__file__).resolve().parents[2] / "helm/mxgate/files/crds/tlspolicies.mxgate.io.yaml"
CLUSTER_CRD = CRD.with_name("clustertlspolicies.mxgate.io.yaml")


def install_crd(kubectl: Runner, path: Path = CRD) -> bool:
    """Apply a canonical CRD server-side and wait until Established; True if we created it."""
    name = f"{path.name.removesuffix('.yaml')}"
    existed = kubectl("get", "crd", name, check=False).returncode == 0
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=mxgate-tests",
        "-f",
        str(path),
    )
    kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    return not existed


def remove_crd(kubectl: Runner, name: str = "tlspolicies.mxgate.io") -> None:
    """Delete the CRD again so a later `helm install` in this session can own it."""
    kubectl("delete", "crd", name, "--wait=true", "--timeout=60s", check=False)


class FakeGatewayReports:
    """A fake gateway HTTP endpoint: serves a real ``LossReport.snapshot()`` at /report."""

    def __init__(self) -> None:
        self.loss = LossReport(clock=lambda: 0.0)
        self.reads = 0  # /report requests served: the operator's report ticks, seen from here
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.reads += 1
                body = json.dumps(outer.loss.snapshot().to_json()).encode()
                self.send_response(200 if self.path == "/report" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/report"

    def wait_ticks(self, n: int, timeout: float = 30.0) -> None:
        """Block until ``n`` more whole report ticks are over. The operator's report loop
        is serial (read, write statuses, sleep), so the read after the ``n``-th proves
        the ``n``-th tick has written everything it was going to write."""
        target = self.reads + n + 1
        eventually(lambda: self.reads >= target, timeout, f"{n} more report ticks")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Deployed:
    namespace: str
    kubectl: Runner
    reports: FakeGatewayReports
    log: Path
    initial_policy: Any = None

    def get(self, *args: str) -> Any:
        return self.kubectl.json("get", "-n", self.namespace, *args)

    def policy(self, name: str) -> dict[str, Any]:
        return self.get("tlspolicy", name)  # type: ignore[no-any-return]

    def conditions(self, name: str) -> dict[str, dict[str, Any]]:
        status = self.policy(name).get("status") or {}
        return {c["type"]: c for c in status.get("conditions") or []}

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 45.0) -> None:
        """Poll until ``check()`` holds; fail with the operator's log tail otherwise."""

        def with_log() -> str:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
            return f"{what}\n--- operator log ---\n{tail}"

        eventually(check, timeout, with_log, interval=0.3)

    def events(self, name: str) -> list[tuple[str, str]]:
        items = self.get("events", f"--field-selector=involvedObject.name={name}")["items"]
        return [(e["type"], e["reason"]) for e in items]


def reconciled(d: Deployed, name: str) -> bool:
    body = d.policy(name)
    status = body.get("status") or {}
    return bool(status.get("observedGeneration") == body["metadata"]["generation"])


@contextlib.contextmanager
def running_operator(
    kubeconfig: Path, namespace: str, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """The real ``mxgate-operator`` console script for one namespace; stopped by PID."""
    operator = Path(sys.executable).parent / "mxgate-operator"
    full = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "MXGATE_KUBECONFIG": str(kubeconfig),
        "MXGATE_NAMESPACE": namespace,
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(operator), "--standalone", f"--namespace={namespace}"],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        terminate(proc)


def policy_manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mxgate.io/v1alpha1",
        "kind": "TLSPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def apply_all(kubectl: Runner, namespace: str, manifests: list[dict[str, Any]]) -> None:
    """Apply many objects in one kubectl call (a List)."""
    body = {"apiVersion": "v1", "kind": "List", "items": manifests}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
