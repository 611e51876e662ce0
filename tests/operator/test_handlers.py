"""kopf wiring, by behaviour: what triggers a reconcile, no finalizers, no kopf state in status."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import pytest
from kube_helpers import (
    Deployed,
    FakeGatewayReports,
    apply_all,
    install_crd,
    policy_manifest,
    reconciled,
    remove_crd,
    running_operator,
)

from eventually import eventually_async
from kubeplane.plugin import Runner
from mxgate_operator.handlers import (
    configure,
    needs_reconcile,
    publishes_mta_sts,
    refresh_cluster_status,
)


def test_handlers_behave_against_the_real_api_server(
    kubectl: Runner, kubeconfig: Path, cert_manager_crds: Path, tmp_path: Path
) -> None:
    """The registered handlers, judged by what they do (issue 14 item 5), through the real
    console script and kube-apiserver with the report loop parked (interval 1 h), so only
    watch events can trigger reconciles:

    - a TLSPolicy's add, its spec edit, its delete and our Certificate's status change each
      reconcile at once (raw watch events, a delete seen without a finalizer);
    - no finalizer and no kopf state (annotations, status fields) ever land on a policy;
    - with the operator stopped, deleting a policy completes at once (nothing waits for us).
    """
    created = install_crd(kubectl)
    namespace = f"h-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", namespace)
    log = tmp_path / "operator.log"
    reports = FakeGatewayReports()
    d = Deployed(namespace, kubectl, reports, log)

    def rules() -> str:
        cm = d.get("configmap", "mxgate-policy")
        return str(cm["data"]["policy.json"])

    try:
        env = {"MXGATE_REPORT_INTERVAL": "3600", "MXGATE_REPORT_URLS": reports.url}
        with running_operator(kubeconfig, namespace, log, **env):
            d.wait("the first pass's empty ConfigMap", lambda: _has_configmap(d))
            apply_all(kubectl, namespace, [policy_manifest("internal", INTERNAL)])
            d.wait("the added policy reconciled", lambda: reconciled(d, "internal"))
            assert f"{namespace}/internal" in rules()

            edited = {**INTERNAL, "scope": {"clientCIDRs": ["10.1.0.0/16"]}}
            apply_all(kubectl, namespace, [policy_manifest("internal", edited)])
            d.wait("the edit reconciled", lambda: "10.1.0.0/16" in rules())
            assert d.policy("internal")["status"]["observedGeneration"] == 2

            assert d.conditions("internal")["CertificateReady"]["status"] == "Unknown"
            _mark_ready(kubectl, namespace, "mxgate-internal")
            d.wait(
                "CertificateReady=True from the Certificate's own event",
                lambda: d.conditions("internal")["CertificateReady"]["status"] == "True",
            )

            body = d.policy("internal")
            assert not body["metadata"].get("finalizers")
            # kopf keeps no state on policies: only kubectl's own annotation, our status only.
            annotations = set(body["metadata"].get("annotations") or {})
            assert annotations <= {"kubectl.kubernetes.io/last-applied-configuration"}
            assert set(body["status"]) <= {
                *("observedGeneration", "ruleId", "configHash", "conditions", "certificate"),
                "observed",
            }

            kubectl("delete", "tlspolicy", "internal", "-n", namespace)
            d.wait("the deleted policy's rule gone", lambda: "/internal" not in rules())

            apply_all(kubectl, namespace, [policy_manifest("left-behind", INTERNAL)])
            d.wait("the second policy reconciled", lambda: reconciled(d, "left-behind"))
        # The operator is stopped: a finalizer would hold this delete until it returns.
        kubectl("delete", "tlspolicy", "left-behind", "-n", namespace, "--timeout=15s")
        gone = kubectl("get", "tlspolicy", "left-behind", "-n", namespace, check=False)
        assert gone.returncode != 0
    finally:
        reports.close()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        if created:
            remove_crd(kubectl)


INTERNAL: dict[str, Any] = {
    "mode": "require",
    "listener": "internal",
    "scope": {"clientCIDRs": ["10.0.0.0/8"]},
    "certificate": {
        "issuerRef": {"name": "internal-ca", "kind": "Issuer"},
        "dnsNames": ["relay.internal.example.com"],
    },
}


def _has_configmap(d: Deployed) -> bool:
    got = d.kubectl("get", "configmap", "mxgate-policy", "-n", d.namespace, check=False)
    return got.returncode == 0


def _mark_ready(kubectl: Runner, namespace: str, name: str) -> None:
    """Write a Certificate's status the way cert-manager does (no controller runs here)."""
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "Certificate is up to date and has not expired",
        "lastTransitionTime": "2026-11-28T12:00:00Z",
    }
    patch = {"status": {"conditions": [ready], "notAfter": "2027-02-26T12:00:00Z"}}
    kubectl(
        "patch",
        "certificate",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(patch),
    )


@pytest.mark.parametrize(
    ("event", "generation", "observed", "expected"),
    [
        (None, 1, None, True),  # the initial listing
        ("ADDED", 1, None, True),
        ("DELETED", 3, 3, True),
        ("MODIFIED", 2, 1, True),  # a spec edit
        ("MODIFIED", 2, 2, False),  # our own status write coming back
    ],
)
def test_which_policy_events_reconcile(
    event: str | None, generation: int, observed: int | None, expected: bool
) -> None:
    """Only status-only MODIFIED events (generation already observed) are skipped."""
    body = {"metadata": {"generation": generation}, "status": {"observedGeneration": observed}}
    assert needs_reconcile(event, body) is expected


def test_kopf_settings_keep_status_ours_and_scanning_off() -> None:
    """kopf keeps progress in mxgate.io annotations, never in status; cluster scanning is off."""
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.scanning.disabled
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "mxgate.io"
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)


class RecordingClusterFake:
    """A fake ClusterFloors (only write_status): counts writes and can hold one open."""

    def __init__(self) -> None:
        self.writes = 0
        self.release = asyncio.Event()
        self.release.set()

    async def write_status(self, reads: object = None) -> int:
        self.writes += 1
        await self.release.wait()
        return 0


async def test_claim_changes_write_the_floors_status_once_per_burst_and_again_after() -> None:
    """A burst of MTA-STS claims writes the ClusterTLSPolicies' status once; a claim that
    comes while that write runs makes one more write (so the last claim is seen); none
    while not leading."""
    memo = SimpleNamespace(cluster=RecordingClusterFake(), leader=asyncio.Event(), catch_up=set())
    memo.leader.set()
    for _ in range(5):
        refresh_cluster_status(memo)
    await asyncio.wait_for(asyncio.gather(*memo.catch_up), 5)
    assert memo.cluster.writes == 1

    memo.cluster.release.clear()
    refresh_cluster_status(memo)
    await eventually_async(lambda: memo.cluster.writes == 2, 5, "the write to start")
    refresh_cluster_status(memo)  # while it runs
    refresh_cluster_status(memo)
    memo.cluster.release.set()
    await asyncio.wait_for(asyncio.gather(*memo.catch_up), 5)
    assert memo.cluster.writes == 3

    memo.leader.clear()
    refresh_cluster_status(memo)
    await asyncio.wait_for(asyncio.gather(*memo.catch_up), 5)
    assert memo.cluster.writes == 3
    assert publishes_mta_sts({"spec": {"mtaSts": {"mode": "testing"}}})
    assert not publishes_mta_sts({"spec": {"mode": "audit"}})
    assert not publishes_mta_sts(None)
