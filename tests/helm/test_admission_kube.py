"""The chart's ValidatingAdmissionPolicy in a real kube-apiserver: with action Deny a TLSPolicy
requiring STARTTLS on the public MX is refused (RFC 3207 §4), with Warn it is stored with a
warning, and policies that do not require TLS on public-mx pass silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from eventually import eventually

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "helm/mxgate/files/crds/tlspolicies.mxgate.io.yaml"


def _policy(mode: str, listener: str | None) -> str:
    spec: dict[str, object] = {"mode": mode, "scope": {"senderDomains": ["bank.example"]}}
    if listener is not None:
        spec["listener"] = listener
    if mode == "require":
        spec["certificate"] = {
            "issuerRef": {"name": "ca", "kind": "Issuer"},
            "dnsNames": ["mx1.example.com"],
        }
    doc = {
        "apiVersion": "mxgate.io/v1alpha1",
        "kind": "TLSPolicy",
        "metadata": {"name": f"p-{uuid.uuid4().hex[:8]}"},
        "spec": spec,
    }
    return yaml.safe_dump(doc)


@pytest.fixture(scope="module")
def crd(kubectl) -> Iterator[None]:
    """The TLSPolicy CRD (reused if a release already installed it; removed if we added it)."""
    existed = kubectl("get", "crd", "tlspolicies.mxgate.io", check=False).returncode == 0
    if not existed:
        kubectl("create", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/tlspolicies.mxgate.io")
    yield
    if not existed:
        kubectl("delete", "crd", "tlspolicies.mxgate.io", "--wait=true", check=False)


@pytest.fixture(params=["Warn", "Deny"])
def admission(request, crd, kubectl, helm_cli, kube_namespace, values_file) -> Iterator[str]:
    """The chart's admission policy and binding, rendered for a fresh namespace and applied."""
    values = values_file({"admissionPolicy": {"action": request.param}})
    args = helm_cli.template_args(values)
    args[args.index("--namespace") + 1] = kube_namespace
    manifest = helm_cli.run(*args, "--show-only", "templates/admission-policy.yaml").stdout
    kubectl("apply", "-f", "-", stdin=manifest)
    try:
        _wait_until_enforced(kubectl, kube_namespace)
        yield request.param
    finally:
        kubectl("delete", "-f", "-", stdin=manifest, check=False)


def _wait_until_enforced(kubectl, namespace: str) -> None:
    """The API server loads new admission policies asynchronously: probe with a dry run."""

    def refused() -> bool:
        done = kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-",
            stdin=_policy("require", "public-mx"), check=False,
        )  # fmt: skip
        return "RFC 3207" in done.stderr

    eventually(refused, 30, "the admission policy to take effect", interval=0.5)


@pytest.mark.parametrize("listener", ["public-mx", None], ids=["explicit", "defaulted"])
def test_require_on_public_mx_is_warned_about_or_refused(
    admission: str, kubectl, kube_namespace: str, listener: str | None
) -> None:
    """mode require on public-mx (also when listener is left to its default) warns or is denied."""
    done = kubectl(
        "create", "-n", kube_namespace, "-f", "-", stdin=_policy("require", listener), check=False
    )
    assert "RFC 3207" in done.stderr
    if admission == "Deny":
        assert done.returncode != 0
        assert "denied" in done.stderr
    else:
        assert done.returncode == 0
        assert "Warning" in done.stderr


@pytest.mark.parametrize(
    ("mode", "listener"),
    [("audit", "public-mx"), ("opportunistic", None), ("require", "internal")],
    ids=["audit-public-mx", "opportunistic", "require-internal"],
)
def test_other_policies_pass_without_a_word(
    admission: str, kubectl, kube_namespace: str, mode: str, listener: str | None
) -> None:
    """Audit, opportunistic, and require on a non-public listener draw no warning."""
    done = kubectl("create", "-n", kube_namespace, "-f", "-", stdin=_policy(mode, listener))
    assert "RFC 3207" not in done.stderr
