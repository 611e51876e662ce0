"""Run cert-manager's own certificate controllers (built from its Go module at the pinned
release by scripts/build-control-plane.sh) against the test control plane, one namespace at
a time, and give a namespace a CA Issuer the way a cluster admin would.

It must not issue anything itself: every certificate and Secret comes from cert-manager.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubeplane.runner import Runner
from kubeplane.workloads import Workload

CA_ISSUER = """
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {{name: {name}-selfsigned}}
spec: {{selfSigned: {{}}}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {{name: {name}-root}}
spec:
  isCA: true
  commonName: mxgate test CA {name}
  secretName: {name}-root
  privateKey: {{algorithm: ECDSA, size: 256}}
  issuerRef: {{name: {name}-selfsigned, kind: Issuer}}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {{name: {name}}}
spec: {{ca: {{secretName: {name}-root}}}}
"""


@dataclass(frozen=True)
class CertManager:
    """cert-manager's controllers for one namespace at a time (admin credentials)."""

    binary: Path
    kubectl: Runner
    kubeconfig: Path
    workdir: Path

    @contextmanager
    def running(self, namespace: str) -> Iterator[Workload]:
        """cert-manager's controllers watching ``namespace`` until the block ends."""
        controller = Workload(
            name="cert-manager",
            argv=[str(self.binary), f"--kubeconfig={self.kubeconfig}", f"--namespace={namespace}"],
            env={},
            log_path=self.workdir / f"cert-manager-{namespace}.log",
            health_url="",
            ready_text="cert-manager-controller: running",
        )
        controller.start()
        try:
            yield controller
        finally:
            controller.stop()

    def ca_issuer(self, namespace: str, name: str = "ca") -> bytes:
        """A self-signed root and a CA Issuer ``name`` on it; returns the root's PEM.

        cert-manager must be running in ``namespace`` (see ``running``).
        """
        self.kubectl("apply", "-n", namespace, "-f", "-", stdin=CA_ISSUER.format(name=name))
        self.kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s",
                     f"issuer/{name}")  # fmt: skip
        secret = self.kubectl.json("get", "secret", f"{name}-root", "-n", namespace)
        return base64.b64decode(secret["data"]["tls.crt"])
