"""Helpers for the operator's `kube` tests: install and remove the canonical TLSPolicy CRD."""

from __future__ import annotations

from pathlib import Path

from kubeplane.plugin import Runner

CRD = Path(__file__).resolve().parents[2] / "helm/mxgate/files/crds/tlspolicies.mxgate.io.yaml"


def install_crd(kubectl: Runner) -> bool:
    """Apply the canonical CRD server-side and wait until Established; True if we created it."""
    existed = kubectl("get", "crd", "tlspolicies.mxgate.io", check=False).returncode == 0
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=mxgate-tests",
        "-f",
        str(CRD),
    )
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/tlspolicies.mxgate.io")
    return not existed


def remove_crd(kubectl: Runner) -> None:
    """Delete the CRD again so a later `helm install` in this session can own it."""
    kubectl("delete", "crd", "tlspolicies.mxgate.io", "--wait=true", "--timeout=60s", check=False)
