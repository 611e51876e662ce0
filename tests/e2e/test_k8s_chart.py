"""`helm install` of helm/mxgate into a real kube-apiserver, and server-side validation of
every manifest the chart renders over a matrix of values.

Only the API server runs (no scheduler or kubelet): objects are stored, pods never start.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubeplane.plugin import CommandFailed, Runner
from kubeplane.release import CHART, REQUIRED_VALUES, Release, by_namespace, install, new_namespace


@pytest.fixture(scope="module")
def release(kubectl: Runner, helm: Runner, cert_manager_crds: Path) -> Iterator[Release]:
    """The chart installed with only its required values (cert-manager CRDs present)."""
    installed = install(helm, kubectl, own_crds=True)
    yield installed
    helm("uninstall", installed.name, "-n", installed.namespace, check=False)


def test_install_stores_every_object_helm_rendered(release: Release, kubectl: Runner) -> None:
    """Every object in the release's manifest exists in the API server afterwards."""
    stored = set()
    for ns, objects in by_namespace(release.objects, release.namespace).items():
        manifest = "\n---\n".join(yaml.safe_dump(o) for o in objects)
        got = json.loads(kubectl("get", "-n", ns, "-f", "-", "-o", "json", stdin=manifest).stdout)
        stored |= {(i["kind"], i["metadata"]["name"]) for i in got["items"]}
    rendered = {(str(o["kind"]), str(o["metadata"]["name"])) for o in release.objects}
    assert stored == rendered


def test_install_creates_the_core_kinds(release: Release) -> None:
    """The release holds the CRD, RBAC, both Deployments, Services and the admission policy."""
    assert {
        "CustomResourceDefinition",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "Deployment",
        "Service",
        "ConfigMap",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    } <= release.kinds()


def test_tlspolicy_crd_is_established_with_its_names(release: Release, kubectl: Runner) -> None:
    """The server accepted the TLSPolicy CRD: Established, names accepted, short name tlsp."""
    crd = kubectl.json("get", "crd", "tlspolicies.mxgate.io")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert "tlsp" in crd["status"]["acceptedNames"]["shortNames"]
    assert crd["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep"


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("watch", "tlspolicies.mxgate.io", True),
        ("patch", "tlspolicies.mxgate.io/status", True),
        ("create", "certificates.cert-manager.io", True),
        ("patch", "configmaps", True),
        ("create", "events", True),
        ("list", "pods", True),
        ("get", "secrets", False),
        ("list", "secrets", False),
        ("delete", "tlspolicies.mxgate.io", False),
        ("create", "deployments.apps", False),
    ],
)
def test_operator_service_account_role(
    release: Release, kubectl: Runner, verb: str, resource: str, allowed: bool
) -> None:
    """The operator's ServiceAccount may do exactly its job in its namespace, and no Secrets."""
    sa = f"system:serviceaccount:{release.namespace}:{release.fullname}-operator"
    done = kubectl(
        "auth", "can-i", verb, resource, "-n", release.namespace, f"--as={sa}", check=False
    )
    assert done.stdout.strip() == ("yes" if allowed else "no"), done.stderr


def test_operator_has_nothing_cluster_wide(release: Release, kubectl: Runner) -> None:
    """The operator's ServiceAccount can read nothing in another namespace."""
    sa = f"system:serviceaccount:{release.namespace}:{release.fullname}-operator"
    done = kubectl(
        "auth", "can-i", "list", "tlspolicies.mxgate.io", "-n", "default", f"--as={sa}", check=False
    )
    assert done.stdout.strip() == "no"


VALUE_MATRIX = {
    "defaults": (),
    "proxy-protocol": (
        "--set",
        "gateway.proxyProtocol.enabled=true",
        "--set",
        "gateway.proxyProtocol.trustedNetworks={10.0.0.0/8}",
    ),
    "hpa": ("--set", "gateway.autoscaling.enabled=true"),
    "crds-disabled": ("--set", "crds.enabled=false"),
    "admission-deny": ("--set", "admissionPolicy.action=Deny"),
    "operator-disabled": ("--set", "operator.enabled=false"),
    "cluster-ip": ("--set", "gateway.service.type=ClusterIP"),
}


@pytest.mark.parametrize("case", sorted(VALUE_MATRIX))
def test_rendered_manifests_pass_server_side_dry_run(
    case: str, helm: Runner, kubectl: Runner, release: Release
) -> None:
    """`helm template` output for each values case passes `kubectl apply --dry-run=server`."""
    namespace = new_namespace(kubectl)
    rendered = helm(
        "template", "dry", str(CHART), "-n", namespace, *REQUIRED_VALUES, *VALUE_MATRIX[case]
    ).stdout
    assert rendered.count("\nkind: ") >= 5
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    for ns, group in by_namespace(objects, namespace).items():
        stdin = "\n---\n".join(yaml.safe_dump(o) for o in group)
        done = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", stdin=stdin, check=False)
        assert done.returncode == 0, done.stderr
        assert "(server dry run)" in done.stdout


def test_dry_run_refuses_a_broken_manifest(kubectl: Runner, release: Release) -> None:
    """The dry-run check can fail: a Deployment without containers is refused by the server."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broken"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}},
        },
    }
    with pytest.raises(CommandFailed, match="containers"):
        kubectl(
            "apply", "--dry-run=server", "-n", release.namespace, "-f", "-", stdin=json.dumps(bad)
        )


EXAMPLES = CHART.parents[1] / "examples"
GOOD = sorted(EXAMPLES.glob("tlspolicy-*.yaml"))
BAD = sorted(EXAMPLES.glob("invalid-tlspolicy-*.yaml"))


def expected_refusal(path: Path) -> str:
    """The message an invalid example names in its ``# expect:`` comment."""
    for line in path.read_text().splitlines():
        if line.startswith("# expect:"):
            return line.removeprefix("# expect:").strip()
    raise AssertionError(f"{path.name} has no '# expect:' comment")


def test_examples_exist_both_good_and_bad() -> None:
    """There are example TLSPolicies to accept and invalid ones to refuse (no empty tables)."""
    assert GOOD
    assert BAD


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_example_policy_is_accepted(path: Path, kubectl: Runner, release: Release) -> None:
    """Each example TLSPolicy is stored by the server; require on public-mx only draws a warning."""
    done = kubectl("apply", "-n", release.namespace, "-f", str(path))
    assert "created" in done.stdout or "configured" in done.stdout
    spec = yaml.safe_load(path.read_text())["spec"]
    require_on_mx = (
        spec.get("mode") == "require" and spec.get("listener", "public-mx") == "public-mx"
    )
    assert ("RFC 3207" in done.stderr) == require_on_mx


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_invalid_example_is_refused_with_its_message(
    path: Path, kubectl: Runner, release: Release
) -> None:
    """Each invalid example is refused by the API server with the message its comment names."""
    done = kubectl(
        "apply", "--dry-run=server", "-n", release.namespace, "-f", str(path), check=False
    )
    assert done.returncode != 0
    assert expected_refusal(path) in done.stderr


def test_upgrade_changes_values_and_uninstall_keeps_crd_and_policies(
    helm: Runner, kubectl: Runner, cert_manager_crds: Path
) -> None:
    """helm upgrade applies changed values; helm uninstall removes the release, keeps the CRD."""
    up = install(helm, kubectl, name="up", own_crds=True)
    ns = up.namespace
    helm("upgrade", "up", str(CHART), "-n", ns, *REQUIRED_VALUES,
         "--set", "gateway.replicaCount=3", "--set", "gateway.policy.mode=audit")  # fmt: skip
    deploy = kubectl.json("get", "deployment", f"{up.fullname}-gateway", "-n", ns)
    assert deploy["spec"]["replicas"] == 3
    config = kubectl.json("get", "configmap", f"{up.fullname}-gateway-config", "-n", ns)
    assert yaml.safe_load(config["data"]["config.yaml"])["policy"]["mode"] == "audit"
    history = json.loads(helm("history", "up", "-n", ns, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]

    example = CHART.parents[1] / "examples" / "tlspolicy-audit-inbound.yaml"
    kubectl("apply", "-n", ns, "-f", str(example))
    helm("uninstall", "up", "-n", ns)
    gone = kubectl("get", "deployment", f"{up.fullname}-gateway", "-n", ns, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr
    crd = kubectl.json("get", "crd", "tlspolicies.mxgate.io")
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"
    policies = kubectl.json("get", "tlspolicies", "-n", ns)["items"]
    assert [p["metadata"]["name"] for p in policies] == [
        yaml.safe_load(example.read_text())["metadata"]["name"]
    ]
