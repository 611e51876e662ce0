"""The test control plane is a real Kubernetes API server: pinned version, RBAC enforced,
TokenRequest-minted ServiceAccount tokens, server-side apply and OpenAPI working.

These prove the fixtures every other `kube` test stands on (tests/kubeplane).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kubeplane.controlplane import ControlPlane
from kubeplane.plugin import CommandFailed, Runner, TokenMinter

KUBE_VERSION = re.search(
    r"^require k8s\.io/kubernetes (v\S+)$",
    (Path(__file__).resolve().parents[2] / "tools/k8s/kube-apiserver/go.mod").read_text(),
    re.MULTILINE,
)


def test_server_reports_the_pinned_release(kubectl: Runner) -> None:
    """The API server says it is the k8s.io/kubernetes release pinned in the wrapper module."""
    assert KUBE_VERSION is not None
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == KUBE_VERSION.group(1)


def test_server_binds_loopback_only(kube_control_plane: ControlPlane) -> None:
    """The API server URL is on 127.0.0.1 with a per-run port."""
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+", kube_control_plane.server)


def test_admin_applies_server_side_and_reads_back(kubectl: Runner, kube_namespace: str) -> None:
    """The admin token can server-side apply a ConfigMap into the test's own namespace."""
    manifest = json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"}, "data": {"k": "v"}}
    )
    kubectl(
        "apply",
        "--server-side",
        "--field-manager=kubeplane",
        "-n",
        kube_namespace,
        "-f",
        "-",
        stdin=manifest,
    )
    got = kubectl.json("get", "configmap", "probe", "-n", kube_namespace, "--show-managed-fields")
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["managedFields"][0]["manager"] == "kubeplane"


def test_openapi_serves_schema_for_explain(kubectl: Runner) -> None:
    """`kubectl explain` works: the OpenAPI endpoints are intact (no json v2 breakage)."""
    out = kubectl("explain", "configmap.data").stdout
    assert "FIELD: data" in out or "FIELD:    data" in out


def test_namespaces_are_fresh_per_test(kubectl: Runner, kube_namespace: str) -> None:
    """Each test gets a namespace of its own that starts empty of ConfigMaps."""
    items = kubectl.json("get", "configmaps", "-n", kube_namespace)["items"]
    assert [i["metadata"]["name"] for i in items if i["metadata"]["name"] == "probe"] == []


def test_service_account_token_is_subject_to_rbac(
    kubectl: Runner, kube_namespace: str, kube_token: TokenMinter
) -> None:
    """A TokenRequest token authenticates as its ServiceAccount and gets only what a Role grants."""
    kubectl("create", "serviceaccount", "probe", "-n", kube_namespace)
    as_sa = kube_token.kubeconfig(kube_namespace, "probe")
    who = json.loads(kubectl("auth", "whoami", "-o", "json", kubeconfig=as_sa).stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{kube_namespace}:probe"

    with pytest.raises(CommandFailed, match=r"[Ff]orbidden"):
        kubectl("get", "configmaps", "-n", kube_namespace, kubeconfig=as_sa)

    kubectl(
        "create", "role", "read-cm", "--verb=list", "--resource=configmaps", "-n", kube_namespace
    )
    kubectl(
        "create",
        "rolebinding",
        "read-cm",
        "--role=read-cm",
        f"--serviceaccount={kube_namespace}:probe",
        "-n",
        kube_namespace,
    )
    kubectl("get", "configmaps", "-n", kube_namespace, kubeconfig=as_sa)
    with pytest.raises(CommandFailed, match=r"[Ff]orbidden"):
        kubectl("get", "secrets", "-n", kube_namespace, kubeconfig=as_sa)


def test_helm_is_the_pinned_build(helm: Runner) -> None:
    """The helm binary is the one built by scripts/build-control-plane.sh at its pinned version."""
    script = (Path(__file__).resolve().parents[2] / "scripts/build-control-plane.sh").read_text()
    pinned = re.search(r"^HELM_VERSION=(\S+)$", script, re.MULTILINE)
    assert pinned is not None
    assert pinned.group(1) in helm("version", "--short").stdout


def test_cert_manager_crds_accept_a_certificate(
    cert_manager_crds: Path, kubectl: Runner, kube_namespace: str
) -> None:
    """cert-manager's real Certificate CRD is served: valid Certificates stored, bad refused."""
    cert = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "mx"},
        "spec": {
            "secretName": "mx-tls",
            "dnsNames": ["mx1.example.com"],
            "issuerRef": {"name": "ca", "kind": "Issuer"},
        },
    }
    kubectl("apply", "-n", kube_namespace, "-f", "-", stdin=json.dumps(cert))
    assert kubectl.json("get", "certificate", "mx", "-n", kube_namespace)["spec"]["secretName"]
    del cert["spec"]["secretName"]  # type: ignore[attr-defined]
    cert["metadata"] = {"name": "broken"}
    with pytest.raises(CommandFailed, match="secretName"):
        kubectl("apply", "-n", kube_namespace, "-f", "-", stdin=json.dumps(cert))
