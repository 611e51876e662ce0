"""The operator against a real kube-apiserver: examples in, ConfigMap, Certificates, status out.

`mxgate-operator` runs as a real subprocess (the console script, kopf --standalone) with
the admin kubeconfig; cert-manager's real CRDs are installed (no cert-manager controller
runs, so the test writes a Certificate's status the way cert-manager would). Gateway
reports come from FakeGatewayReports: the gateway's real LossReport served over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import Deployed, FakeGatewayReports, install_crd, reconciled, remove_crd

from kubeplane.plugin import Runner
from mtapeers.procs import terminate
from mxgate_gateway.config.loader import load_policy_document
from mxgate_gateway.config.model import Mode
from mxgate_gateway.policy.decisions import Action, Decision

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OPERATOR = Path(sys.executable).parent / "mxgate-operator"
EXAMPLES_GOOD = sorted(EXAMPLES.glob("tlspolicy-*.yaml"))


@pytest.fixture(scope="module")
def deployed(
    kubectl: Runner,
    kubeconfig: Path,
    cert_manager_crds: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    """CRDs installed, the good examples applied, the operator running for this namespace."""
    created = install_crd(kubectl)
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", namespace)
    reports = FakeGatewayReports()
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "MXGATE_KUBECONFIG": str(kubeconfig),
        "MXGATE_REPORT_URLS": reports.url,
        "MXGATE_REPORT_INTERVAL": "2",
        "MXGATE_NAMESPACE": namespace,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(OPERATOR), "--standalone", f"--namespace={namespace}", "--verbose"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    d = Deployed(namespace, kubectl, reports, log)
    try:
        d.wait("the empty policy ConfigMap", lambda: has_configmap(d))
        d.initial_policy = json.loads(configmap(d)["data"]["policy.json"])
        for path in EXAMPLES_GOOD:
            kubectl("apply", "-n", namespace, "-f", str(path))
        for name in example_names():
            d.wait(f"{name} reconciled", lambda n=name: reconciled(d, n))
        yield d
    finally:
        terminate(proc)
        reports.close()
        if created:
            remove_crd(kubectl)


def example_names() -> list[str]:
    """metadata.name of every examples/tlspolicy-*.yaml (all are applied)."""
    return [yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES_GOOD]


def has_configmap(d: Deployed) -> bool:
    return (
        d.kubectl("get", "configmap", "mxgate-policy", "-n", d.namespace, check=False).returncode
        == 0
    )


def configmap(d: Deployed) -> dict[str, Any]:
    return d.get("configmap", "mxgate-policy")  # type: ignore[no-any-return]


def test_a_namespace_without_policies_gets_an_empty_policy_file(deployed: Deployed) -> None:
    """Before any TLSPolicy exists, the operator writes an empty policy the gateway can mount."""
    assert deployed.initial_policy == {"rules": [], "version": 1}


def test_examples_render_a_configmap_the_gateway_loads(deployed: Deployed, tmp_path: Path) -> None:
    """The ConfigMap holds one rule per example and loads in the gateway; no per-policy
    ownerReferences on the shared object (issue 18 item 2)."""
    cm = configmap(deployed)
    path = tmp_path / "policy.json"
    path.write_text(cm["data"]["policy.json"])
    doc = load_policy_document(path)
    ns = deployed.namespace
    assert sorted(r.id for r in doc.rules) == sorted(f"{ns}/{n}" for n in example_names())
    assert "ownerReferences" not in cm["metadata"]
    fields = deployed.kubectl.json(
        "get", "configmap", "mxgate-policy", "-n", deployed.namespace, "--show-managed-fields"
    )["metadata"]["managedFields"]
    managers = {(m["manager"], m["operation"]) for m in fields}
    assert ("mxgate-operator", "Apply") in managers
    status = deployed.policy("audit-inbound")["status"]
    assert status["configHash"].startswith("sha256:")  # the document it was rendered into
    assert cm["metadata"]["annotations"]["mxgate.io/config-hash"].startswith("sha256:")
    assert status["ruleId"] == f"{ns}/audit-inbound"


def test_policies_carry_no_finalizer_and_no_kopf_state_in_status(deployed: Deployed) -> None:
    """Deleting a policy never waits for the operator; status holds only our schema's fields."""
    body = deployed.policy("require-partners")
    assert not body["metadata"].get("finalizers")
    assert set(body["status"]) <= {
        "observedGeneration",
        "ruleId",
        "configHash",
        "conditions",
        "certificate",
        "observed",
    }
    assert {"observedGeneration", "ruleId", "configHash", "conditions", "certificate"} <= set(
        body["status"]
    )


def test_one_certificate_per_listener_owned_by_its_policy(deployed: Deployed) -> None:
    """Each listener with a certificate gets one Certificate, deterministic Secret, owner set."""
    certs = {c["metadata"]["name"]: c for c in deployed.get("certificates")["items"]}
    assert set(certs) == {"mxgate-public-mx", "mxgate-internal"}
    public = certs["mxgate-public-mx"]
    assert public["spec"]["secretName"] == "mxgate-public-mx-tls"
    assert public["spec"]["dnsNames"] == ["mx1.example.com", "mx2.example.com"]
    owner = public["metadata"]["ownerReferences"]
    assert ("TLSPolicy", "require-partners") in [(o["kind"], o["name"]) for o in owner]
    status = deployed.policy("require-partners")["status"]
    assert status["certificate"]["secretName"] == "mxgate-public-mx-tls"


def test_require_on_public_mx_is_marked_not_standards_compliant(deployed: Deployed) -> None:
    """require on public-mx: StandardsCompliant=False (RFC 3207 §4) and a Warning event."""
    conds = deployed.conditions("require-partners")
    assert conds["StandardsCompliant"]["status"] == "False"
    assert "RFC 3207" in conds["StandardsCompliant"]["message"]
    assert conds["Accepted"]["status"] == "True"
    assert deployed.conditions("internal-require")["StandardsCompliant"]["status"] == "True"
    deployed.wait(
        "the RFC 3207 warning event",
        lambda: ("Warning", "RequireOnPublicMX") in deployed.events("require-partners"),
    )


def test_certificate_ready_mirrors_cert_manager(deployed: Deployed) -> None:
    """When cert-manager marks the Certificate Ready, CertificateReady and Ready follow."""
    assert deployed.conditions("internal-require")["CertificateReady"]["status"] == "Unknown"
    status = {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Ready",
                    "message": "Certificate is up to date and has not expired",
                    "lastTransitionTime": "2026-11-28T12:00:00Z",
                }
            ],
            "notAfter": "2027-02-26T12:00:00Z",
        }
    }
    deployed.kubectl(
        "patch",
        "certificate",
        "mxgate-internal",
        "-n",
        deployed.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    deployed.wait(
        "CertificateReady=True",
        lambda: deployed.conditions("internal-require")["CertificateReady"]["status"] == "True",
    )
    body = deployed.policy("internal-require")["status"]
    assert body["certificate"]["notAfter"] == "2027-02-26T12:00:00Z"
    assert deployed.conditions("internal-require")["Ready"]["status"] == "True"
    deployed.wait(  # issue 16 item 7: Normal events, not only Warnings
        "the Normal CertificateIssued and Ready events",
        lambda: (
            {("Normal", "CertificateIssued"), ("Normal", "Ready")}
            <= set(deployed.events("internal-require"))
        ),
    )
    wide = deployed.kubectl(
        "get", "tlsp", "internal-require", "-n", deployed.namespace, "-o", "wide"
    )
    header, row = wide.stdout.splitlines()
    assert header.split()[-4:] == ["REASON", "MESSAGE", "SECRET", "NOTAFTER"]
    assert "mxgate-internal-tls" in row
    # A future instant in a `date` column prints as <invalid>: the expiry shows as itself.
    assert row.split()[-1] == "2027-02-26T12:00:00Z"


def test_configmap_is_applied_once_per_hash(deployed: Deployed) -> None:
    """A change that renders the same policy leaves the ConfigMap alone; a real change applies."""
    before = configmap(deployed)["metadata"]
    deployed.kubectl(
        "patch",
        "tlspolicy",
        "internal-require",
        "-n",
        deployed.namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"certificate": {"renewBefore": "300h"}}}),
    )
    deployed.wait(
        "the Certificate to follow the new renewBefore",
        lambda: (
            deployed.get("certificate", "mxgate-internal")["spec"].get("renewBefore") == "300h"
            and reconciled(deployed, "internal-require")
        ),
    )
    assert configmap(deployed)["metadata"]["resourceVersion"] == before["resourceVersion"]
    deployed.kubectl(
        "patch",
        "tlspolicy",
        "audit-inbound",
        "-n",
        deployed.namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"priority": 7}}),
    )
    deployed.wait(
        "a new ConfigMap hash",
        lambda: (
            configmap(deployed)["metadata"]["annotations"]["mxgate.io/config-hash"]
            != before["annotations"]["mxgate.io/config-hash"]
        ),
    )
    rules = json.loads(configmap(deployed)["data"]["policy.json"])["rules"]
    assert {r["id"].split("/")[1]: r["priority"] for r in rules}["audit-inbound"] == 7


def test_conflicting_policy_is_skipped_and_the_rest_still_apply(deployed: Deployed) -> None:
    """A newer policy contradicting an older one gets Accepted=False/Conflict and a Warning."""
    twin = {
        "apiVersion": "mxgate.io/v1alpha1",
        "kind": "TLSPolicy",
        "metadata": {"name": "audit-inbound-twin"},
        "spec": {
            "mode": "opportunistic",
            "priority": 7,
            "scope": {"recipientDomains": ["*.example.com", "example.com"]},
        },
    }
    deployed.kubectl("apply", "-n", deployed.namespace, "-f", "-", stdin=json.dumps(twin))
    deployed.wait("the twin's status", lambda: reconciled(deployed, "audit-inbound-twin"))
    accepted = deployed.conditions("audit-inbound-twin")["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "Conflict")
    assert "audit-inbound" in accepted["message"]
    rules = json.loads(configmap(deployed)["data"]["policy.json"])["rules"]
    assert sorted(r["id"].split("/")[1] for r in rules) == sorted(example_names())
    deployed.wait(
        "the Conflict event",
        lambda: ("Warning", "Conflict") in deployed.events("audit-inbound-twin"),
    )


def test_status_shows_the_observed_effect_from_gateway_reports(deployed: Deployed) -> None:
    """After the report timer, status and `kubectl get tlsp` show the policy's Would-Refuse %
    over the gateways' last 60 minutes, and status says so."""
    rule = f"{deployed.namespace}/audit-inbound"
    for action, n in ((Action.ACCEPT, 3), (Action.WOULD_REFUSE, 1)):
        for _ in range(n):
            deployed.reports.loss.record_decision(Decision(action, rule, Mode.AUDIT, None))

    def observed() -> dict[str, Any]:
        return (deployed.policy("audit-inbound").get("status") or {}).get("observed") or {}

    deployed.wait("the observed effect", lambda: observed().get("matched") == 4)
    got = observed()
    assert (got["wouldRefuse"], got["wouldRefusePercent"], got["gateways"]) == (1, 25.0, 1)
    assert got["windowMinutes"] == 60  # issue 16 item 7: the gateways' window, stated
    assert got["message"] == "last 60 minutes, summed over the 1 gateway(s) that answered"
    table = deployed.kubectl("get", "tlsp", "-n", deployed.namespace).stdout
    header, *rows = table.splitlines()
    assert "WOULD-REFUSE %" in header
    assert any(r.startswith("audit-inbound ") and " 25 " in f"{r} " for r in rows), table


def test_deleting_a_policy_removes_its_rule_and_certificate(deployed: Deployed) -> None:
    """Deleting a policy drops its rule from the ConfigMap and its now-unowned Certificate."""
    deployed.kubectl("delete", "tlspolicy", "internal-require", "-n", deployed.namespace)
    deployed.wait(
        "the rule to leave the ConfigMap",
        lambda: "internal-require" not in configmap(deployed)["data"]["policy.json"],
    )
    deployed.wait(
        "the Certificate to go",
        lambda: (
            "mxgate-internal"
            not in {c["metadata"]["name"] for c in deployed.get("certificates")["items"]}
        ),
    )
