"""The operator, run out of cluster exactly as the chart configures it but authenticated with
the chart's ServiceAccount token (TokenRequest), reconciles TLSPolicies applied with kubectl
into the gateway's policy ConfigMap, cert-manager Certificates and truthful status.

cert-manager's CRDs are installed but its controllers are not started here, so this module
also sees the state before cert-manager reports (CertificateReady Unknown); the issuing
path with the real controllers is in test_k8s_gateway.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventually import eventually
from kubeplane.plugin import CommandFailed, Runner, TokenMinter
from kubeplane.release import Release, install, uninstall
from kubeplane.workloads import Workload, operator_workload
from mxgate_gateway.config.loader import parse_text, validate
from mxgate_gateway.config.model import PolicyDocument

CONVERGE_S = 30.0
POLICIES = """
apiVersion: mxgate.io/v1alpha1
kind: TLSPolicy
metadata: {name: partners}
spec:
  mode: require
  listener: public-mx
  minTLSVersion: "1.2"
  priority: 100
  scope: {senderDomains: [bank.example]}
  certificate:
    issuerRef: {name: ca, kind: Issuer}
    dnsNames: [mx1.example.test]
---
apiVersion: mxgate.io/v1alpha1
kind: TLSPolicy
metadata: {name: measure}
spec:
  mode: audit
  listener: public-mx
  priority: 10
  scope: {recipientDomains: [accepted.test]}
"""
POLICY_NAMES = ("partners", "measure")


@dataclass(frozen=True)
class Stack:
    release: Release
    operator: Workload
    sa_kubeconfig: Path
    kubectl: Runner

    @property
    def ns(self) -> str:
        return self.release.namespace

    def policy(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.kubectl.json("get", "tlspolicy", name, "-n", self.ns)
        return obj

    def conditions(self, name: str) -> dict[str, tuple[str, str]]:
        status = self.policy(name).get("status") or {}
        return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}

    def policy_configmap_name(self) -> str:
        """The ConfigMap the chart's gateway Deployment mounts as its policy directory."""
        vol = next(v for v in self.release.pod_spec("gateway")["volumes"] if v["name"] == "policy")
        return str(vol["configMap"]["name"])

    def tls_secret_name(self) -> str:
        """The Secret the chart's gateway Deployment mounts as its TLS directory."""
        vol = next(v for v in self.release.pod_spec("gateway")["volumes"] if v["name"] == "tls")
        return str(vol["secret"]["secretName"])

    def configmap(self) -> dict[str, Any] | None:
        done = self.kubectl(
            "get",
            "configmap",
            self.policy_configmap_name(),
            "-n",
            self.ns,
            "-o",
            "json",
            check=False,
        )
        return json.loads(done.stdout) if done.returncode == 0 else None

    def rendered(self) -> dict[str, Any] | None:
        """The ConfigMap once it holds both policies' rules. It exists, empty, from the
        operator's start; the policies, applied after that, land one debounced render later."""
        cm = self.configmap()
        if cm is None:
            return None
        return (
            cm
            if all(f'"{self.ns}/{n}"' in cm["data"]["policy.json"] for n in POLICY_NAMES)
            else None
        )


@pytest.fixture(scope="module")
def stack(
    helm: Runner,
    kubectl: Runner,
    kube_token: TokenMinter,
    cert_manager_crds: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Chart installed; its operator running locally with the operator ServiceAccount's token."""
    release = install(helm, kubectl, ["--set", "operator.reportInterval=2"])
    sa_kubeconfig = kube_token.kubeconfig(release.namespace, f"{release.fullname}-operator")
    operator = operator_workload(release, sa_kubeconfig, tmp_path_factory.mktemp("operator"))
    operator.start()
    try:
        kubectl("apply", "-n", release.namespace, "-f", "-", stdin=POLICIES)
        yield Stack(release, operator, sa_kubeconfig, kubectl)
    finally:
        operator.stop()
        uninstall(helm, release)


def test_operator_token_is_the_charts_service_account(stack: Stack) -> None:
    """The operator's credentials are the chart's operator ServiceAccount, not the admin."""
    who = json.loads(
        stack.kubectl("auth", "whoami", "-o", "json", kubeconfig=stack.sa_kubeconfig).stdout
    )
    user = who["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{stack.ns}:{stack.release.fullname}-operator"
    assert "system:masters" not in user.get("groups", [])
    assert stack.operator.env["KUBECONFIG"] == str(stack.sa_kubeconfig)


def test_operator_token_cannot_read_secrets(stack: Stack) -> None:
    """The operator's token is refused Secrets, including the gateway's TLS Secret."""
    with pytest.raises(CommandFailed, match=r"[Ff]orbidden"):
        stack.kubectl("get", "secrets", "-n", stack.ns, kubeconfig=stack.sa_kubeconfig)
    with pytest.raises(CommandFailed, match=r"[Ff]orbidden"):
        stack.kubectl(
            "get", "secret", stack.tls_secret_name(), "-n", stack.ns, kubeconfig=stack.sa_kubeconfig
        )


def test_policy_configmap_is_rendered_under_the_name_the_gateway_mounts(stack: Stack) -> None:
    """Both policies land in the ConfigMap the chart mounts into the gateway, loadable by it."""
    cm = eventually(stack.rendered, CONVERGE_S, f"both rules in {stack.policy_configmap_name()}")
    doc = validate(PolicyDocument, parse_text(cm["data"]["policy.json"], "policy.json"), "cm")
    modes = {rule.id: rule.mode.value for rule in doc.rules}
    assert modes == {f"{stack.ns}/partners": "require", f"{stack.ns}/measure": "audit"}


def test_status_conditions_tell_the_truth(stack: Stack) -> None:
    """Accepted, StandardsCompliant (RFC 3207 §4 on require+public-mx), CertificateReady, Ready."""

    def settled() -> dict[str, dict[str, tuple[str, str]]] | None:
        got = {name: stack.conditions(name) for name in POLICY_NAMES}
        return got if all(len(c) == 4 for c in got.values()) else None

    got = eventually(settled, CONVERGE_S, "four conditions on both policies")
    assert got["partners"]["Accepted"] == ("True", "Accepted")
    assert got["partners"]["StandardsCompliant"] == ("False", "RequireOnPublicMX")
    assert got["partners"]["CertificateReady"][0] == "Unknown"  # no cert-manager controller
    assert got["partners"]["Ready"][0] == "False"
    assert got["measure"]["StandardsCompliant"] == ("True", "Compliant")
    assert got["measure"]["Ready"] == ("True", "Ready")


def test_require_on_public_mx_posts_a_warning_event(stack: Stack) -> None:
    """A Warning event on the policy points at RFC 3207 §4."""

    def warning() -> list[dict[str, Any]] | None:
        events = stack.kubectl.json(
            "get", "events", "-n", stack.ns, "--field-selector", "involvedObject.name=partners"
        )["items"]
        found = [e for e in events if e["type"] == "Warning" and "RFC 3207" in e["message"]]
        return found or None

    assert eventually(warning, CONVERGE_S, "a Warning event on partners")


def test_certificate_is_owned_and_writes_the_secret_the_gateway_mounts(stack: Stack) -> None:
    """One Certificate for public-mx, owned by its policy, with the Secret name the chart mounts."""

    def certificate() -> dict[str, Any] | None:
        items = stack.kubectl.json("get", "certificates", "-n", stack.ns)["items"]
        return items[0] if items else None

    cert = eventually(certificate, CONVERGE_S, "a Certificate")
    partners = stack.policy("partners")
    owners = {(o["kind"], o["name"], o["uid"]) for o in cert["metadata"]["ownerReferences"]}
    assert owners == {("TLSPolicy", "partners", partners["metadata"]["uid"])}
    assert cert["spec"]["dnsNames"] == ["mx1.example.test"]
    assert cert["spec"]["secretName"] == stack.tls_secret_name()


def test_configmap_changes_only_when_the_rendered_policy_changes(stack: Stack) -> None:
    """A spec change rendering the same policy leaves the ConfigMap alone; a real one updates it."""
    before = eventually(stack.rendered, CONVERGE_S, "both rules in the policy ConfigMap")
    rv = before["metadata"]["resourceVersion"]

    # Not part of the rendered gateway policy: only the Certificate changes.
    stack.kubectl(
        "patch",
        "tlspolicy",
        "partners",
        "-n",
        stack.ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"certificate": {"duration": "2160h"}}}),
    )
    generation = stack.policy("partners")["metadata"]["generation"]

    def reconciled() -> bool | None:
        certs = stack.kubectl.json("get", "certificates", "-n", stack.ns)["items"]
        cert_done = bool(certs) and certs[0]["spec"].get("duration") in ("2160h", "2160h0m0s")
        seen = stack.policy("partners")["status"].get("observedGeneration") == generation
        return True if cert_done and seen else None

    eventually(reconciled, CONVERGE_S, "the duration change reconciled")
    after_noop = stack.configmap()
    assert after_noop is not None
    assert after_noop["metadata"]["resourceVersion"] == rv

    # Part of the rendered policy: the ConfigMap is re-applied with a new hash.
    stack.kubectl(
        "patch",
        "tlspolicy",
        "measure",
        "-n",
        stack.ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"minTLSVersion": "1.3"}}),
    )

    def changed() -> dict[str, Any] | None:
        cm = stack.configmap()
        return cm if cm and cm["metadata"]["resourceVersion"] != rv else None

    after = eventually(changed, CONVERGE_S, "the ConfigMap to change")
    assert '"1.3"' in after["data"]["policy.json"]
    new_hash = after["metadata"]["annotations"]["mxgate.io/config-hash"]
    eventually(
        lambda: True if stack.policy("measure")["status"].get("configHash") == new_hash else None,
        CONVERGE_S,
        "status.configHash to follow the ConfigMap",
    )


def test_operator_was_never_forbidden(stack: Stack) -> None:
    """Across everything above, the operator's least-privilege Role never got a 403."""
    eventually(stack.configmap, CONVERGE_S, "the policy ConfigMap")
    log = stack.operator.log_text()
    assert "namespace_reconciled" in log
    assert " 403 " not in log
    assert "Forbidden" not in log
