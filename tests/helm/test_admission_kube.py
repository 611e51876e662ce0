"""The chart's ValidatingAdmissionPolicy in a real kube-apiserver: with action Deny a TLSPolicy
or ClusterTLSPolicy requiring STARTTLS on the public MX is refused (RFC 3207 §4), with Warn it
is stored with a warning naming its kind, and policies that do not require TLS on public-mx
pass silently. A ClusterTLSPolicy has no namespace: the binding's namespaceSelector never
skips it, so the release's admission policy judges it too.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from eventually import eventually

REPO = Path(__file__).resolve().parents[2]
CRDS = {
    "tlspolicies.mxgate.io": REPO / "helm/mxgate/files/crds/tlspolicies.mxgate.io.yaml",
    "clustertlspolicies.mxgate.io": REPO
    / "helm/mxgate/files/crds/clustertlspolicies.mxgate.io.yaml",
}
KINDS = ["TLSPolicy", "ClusterTLSPolicy"]
Created = tuple[str, subprocess.CompletedProcess[str]]
Create = Callable[[str, str | None, str], Created]


def _policy(mode: str, listener: str | None, kind: str = "TLSPolicy") -> tuple[str, str]:
    """(name, YAML) of one policy of ``kind``, scoped to one sender domain."""
    spec: dict[str, object] = {"mode": mode, "scope": {"senderDomains": ["bank.example"]}}
    if listener is not None:
        spec["listener"] = listener
    if mode == "require" and kind == "TLSPolicy":
        spec["certificate"] = {
            "issuerRef": {"name": "ca", "kind": "Issuer"},
            "dnsNames": ["mx1.example.com"],
        }
    name = f"p-{uuid.uuid4().hex[:8]}"
    doc = {"apiVersion": "mxgate.io/v1alpha1", "kind": kind, "metadata": {"name": name}}
    return name, yaml.safe_dump({**doc, "spec": spec})


@pytest.fixture(scope="module")
def crd(kubectl) -> Iterator[None]:
    """The TLSPolicy and ClusterTLSPolicy CRDs (reused if a release already installed them;
    removed if we added them)."""
    added = []
    for name, path in CRDS.items():
        if kubectl("get", "crd", name, check=False).returncode != 0:
            kubectl("create", "-f", str(path))
            added.append(name)
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    yield
    for name in added:
        kubectl("delete", "crd", name, "--wait=true", check=False)


@pytest.fixture
def create(kubectl, kube_namespace: str) -> Iterator[Create]:
    """``create(mode, listener, kind) -> (name, kubectl result)``; ClusterTLSPolicies it made
    are deleted afterwards (they outlive the test's namespace)."""
    made: list[str] = []

    def run(mode: str, listener: str | None, kind: str) -> Created:
        name, manifest = _policy(mode, listener, kind)
        where = ["-n", kube_namespace] if kind == "TLSPolicy" else []
        done = kubectl("create", *where, "-f", "-", stdin=manifest, check=False)
        if kind == "ClusterTLSPolicy" and done.returncode == 0:
            made.append(name)
        return name, done

    yield run
    for name in made:
        kubectl("delete", "clustertlspolicy", name, "--wait=false", check=False)


@pytest.fixture(params=["Warn", "Deny"])
def admission(request, crd, kubectl, helm_cli, kube_namespace, values_file) -> Iterator[str]:
    """The chart's admission policy and binding, rendered for a fresh namespace and applied;
    removed afterwards, and waited for until ClusterTLSPolicies are free of it again."""
    values = values_file({"admissionPolicy": {"action": request.param}})
    args = helm_cli.template_args(values)
    args[args.index("--namespace") + 1] = kube_namespace
    manifest = helm_cli.run(*args, "--show-only", "templates/admission-policy.yaml").stdout
    policy = next(
        d["metadata"]["name"]
        for d in yaml.safe_load_all(manifest)
        if d and d["kind"] == "ValidatingAdmissionPolicy"
    )
    kubectl("apply", "-f", "-", stdin=manifest)
    try:
        for kind in KINDS:
            _wait_for(kubectl, kube_namespace, kind, policy, enforced=True)
        yield request.param
    finally:
        kubectl("delete", "-f", "-", stdin=manifest, check=False)
        # Cluster-scoped: a policy left loaded would judge other tests' ClusterTLSPolicies.
        _wait_for(kubectl, kube_namespace, "ClusterTLSPolicy", policy, enforced=False)


def _wait_for(kubectl, namespace: str, kind: str, policy: str, *, enforced: bool) -> None:
    """The API server loads (and drops) admission policies asynchronously: probe with a dry
    run. Judged by ``policy``'s name in the answer: another release's admission policy
    (left by other tests) judges every ClusterTLSPolicy too, as it should."""

    def settled() -> bool:
        _, manifest = _policy("require", "public-mx", kind)
        where = ["-n", namespace] if kind == "TLSPolicy" else []
        done = kubectl("create", "--dry-run=server", *where, "-f", "-", stdin=manifest, check=False)
        return (f"'{policy}'" in done.stderr) is enforced

    what = f"the admission policy to {'take effect on' if enforced else 'leave'} {kind}"
    eventually(settled, 30, what, interval=0.5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("listener", ["public-mx", None], ids=["explicit", "defaulted"])
def test_require_on_public_mx_is_warned_about_or_refused(
    admission: str, create: Create, kind: str, listener: str | None
) -> None:
    """mode require on public-mx (also when listener is left to its default) warns or is
    denied, for a TLSPolicy and a ClusterTLSPolicy alike, scoped or not; the message names
    the object by its own kind and points to that kind's Would-Refuse column."""
    name, done = create("require", listener, kind)
    assert "RFC 3207" in done.stderr
    assert f"{kind} {name}:" in done.stderr
    assert f"Cluster{kind} " not in done.stderr
    short = {"TLSPolicy": "tlsp", "ClusterTLSPolicy": "ctlsp"}[kind]
    assert f"`kubectl get {short}`" in " ".join(done.stderr.split())
    if admission == "Deny":
        assert done.returncode != 0
        assert "denied" in done.stderr
    else:
        assert done.returncode == 0
        assert "Warning" in done.stderr


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("mode", "listener"),
    [("audit", "public-mx"), ("opportunistic", None), ("require", "internal")],
    ids=["audit-public-mx", "opportunistic", "require-internal"],
)
def test_other_policies_pass_without_a_word(
    admission: str, create: Create, kind: str, mode: str, listener: str | None
) -> None:
    """Audit, opportunistic, and require on a non-public listener draw no warning."""
    _, done = create(mode, listener, kind)
    assert done.returncode == 0, done.stderr
    assert "RFC 3207" not in done.stderr
