"""Against a real kube-apiserver: a TLSPolicy with mtaSts is stored and its status survives."""

from __future__ import annotations

import json
import uuid
from typing import Any

from kube_helpers import install_crd, remove_crd

from kubeplane.plugin import Runner
from mxgate_operator.render.certificates import plan_certificates
from mxgate_operator.render.gateway_config import PolicyInput, render_policies
from mxgate_operator.render.status import policy_status
from mxgate_operator.spec import parse_policy

SPEC: dict[str, Any] = {
    "mode": "audit",
    "scope": {"recipientDomains": ["example.com"]},
    "certificate": {"issuerRef": {"name": "le"}, "dnsNames": ["mx1.example.com"]},
    "mtaSts": {"mode": "testing", "mx": ["mx1.example.com"]},
    "tlsRpt": {"rua": ["mailto:tlsrpt@example.com"]},
}


def test_rendered_mta_sts_status_is_not_pruned(kubectl: Runner) -> None:
    """The operator's status.mtaSts and its two conditions fit the CRD's status schema."""
    created = install_crd(kubectl)
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", namespace)
    try:
        manifest = {
            "apiVersion": "mxgate.io/v1alpha1",
            "kind": "TLSPolicy",
            "metadata": {"name": "p", "namespace": namespace},
            "spec": SPEC,
        }
        kubectl("create", "-f", "-", stdin=json.dumps(manifest))
        stored = json.loads(kubectl("get", "tlspolicy", "p", "-n", namespace, "-o", "json").stdout)
        assert stored["spec"]["mtaSts"]["maxAge"] == 604800  # the CRD's default
        p = PolicyInput(namespace, "p", "uid", 1, parse_policy("p", stored["spec"]))
        result = render_policies([p])
        status = policy_status(
            generation=1,
            rule_id=p.rule_id,
            admission=result.admission(p.rule_id),
            spec=p.parsed.spec,
            config_hash=result.config_hash,
            plan=plan_certificates("mxgate", result.accepted)[0],
            cert_state=None,
            effect=None,
            previous={},
            now="2026-11-28T12:00:00Z",
        ).status
        kubectl(
            "patch", "tlspolicy", "p", "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}),
        )  # fmt: skip
        back = json.loads(kubectl("get", "tlspolicy", "p", "-n", namespace, "-o", "json").stdout)
        assert back["status"]["mtaSts"] == status["mtaSts"]
        types = {c["type"] for c in back["status"]["conditions"]}
        assert {"MTASTSRecordsRendered", "MXCoveredByCertificate"} <= types
    finally:
        if created:
            remove_crd(kubectl)
