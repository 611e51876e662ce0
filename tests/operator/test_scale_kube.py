"""Operator scale behaviour against a real kube-apiserver (issue 18 scale target).

What makes 1,000 policies cheap, shown by what the API server stored, never by timing
(timings are in ``bench/operator_scale.py``): a burst of creates is a few ConfigMap writes,
not one per policy; an edit right after a burst is still rendered; policies that exist
before the operator starts are rendered in one complete write (the watch-fed cache never
renders a partial set); and a restart with nothing changed writes nothing and posts no
event. ConfigMap writes are counted by replaying the object's watch history from a
resourceVersion taken before (one watch event per stored version).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import (
    Deployed,
    FakeGatewayReports,
    apply_all,
    install_crd,
    policy_manifest,
    remove_crd,
    running_operator,
)

from kubeplane.plugin import Runner

CONFIGMAP = "mxgate-policy"
N = 150


@pytest.fixture(scope="module")
def crd(kubectl: Runner, cert_manager_crds: Path) -> Iterator[None]:
    created = install_crd(kubectl)
    yield
    if created:
        remove_crd(kubectl)


@pytest.fixture
def deployed(crd: None, kubectl: Runner, kube_namespace: str, tmp_path: Path) -> Iterator[Deployed]:
    reports = FakeGatewayReports()
    try:
        yield Deployed(kube_namespace, kubectl, reports, tmp_path / "operator-0.log")
    finally:
        reports.close()


@contextlib.contextmanager
def operator(d: Deployed, kubeconfig: Path, log: Path) -> Iterator[None]:
    """The real operator for ``d.namespace``, report loop parked (only events reconcile)."""
    d.log = log
    env = {"MXGATE_REPORT_URLS": d.reports.url, "MXGATE_REPORT_INTERVAL": "600"}
    with running_operator(kubeconfig, d.namespace, log, **env):
        yield


def audit(i: int) -> dict[str, Any]:
    return policy_manifest(
        f"p{i:03}", {"mode": "audit", "priority": i, "scope": {"senderDomains": [f"s{i}.t"]}}
    )


def list_version(d: Deployed) -> str:
    """The namespace's ConfigMap collection resourceVersion: a point to replay from."""
    listed = d.kubectl("get", "--raw", f"/api/v1/namespaces/{d.namespace}/configmaps")
    return str(json.loads(listed.stdout)["metadata"]["resourceVersion"])


def configmap_versions(d: Deployed, since: str) -> list[dict[str, Any]]:
    """Every version of the policy ConfigMap stored after ``since`` (a short watch replay)."""
    query = urllib.parse.urlencode(
        {
            "watch": "1",
            "fieldSelector": f"metadata.name={CONFIGMAP}",
            "resourceVersion": since,
            "timeoutSeconds": "2",
        }
    )
    out = d.kubectl("get", "--raw", f"/api/v1/namespaces/{d.namespace}/configmaps?{query}")
    events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert all(e["type"] in ("ADDED", "MODIFIED") for e in events), events[:1]
    return [e["object"] for e in events]


def rules(configmap: dict[str, Any]) -> dict[str, int]:
    """Rule name -> priority in one stored ConfigMap version."""
    doc = json.loads(configmap["data"]["policy.json"])
    return {r["id"].split("/", 1)[1]: r["priority"] for r in doc["rules"]}


def all_reconciled(d: Deployed, count: int) -> bool:
    items = d.get("tlspolicies")["items"]
    return len(items) == count and all(
        (p.get("status") or {}).get("observedGeneration") == p["metadata"]["generation"]
        for p in items
    )


def policy_lists(d: Deployed) -> float:
    """How many LISTs of TLSPolicies the API server has served (its own request counter)."""
    total = 0.0
    for line in d.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        ours = 'resource="tlspolicies"' in line and 'verb="LIST"' in line
        if line.startswith("apiserver_request_total{") and ours:
            total += float(line.rsplit(" ", 1)[1])
    return total


def reconciles(log: Path) -> int:
    return log.read_text(errors="replace").count('"namespace_reconciled"')


def test_a_burst_of_creates_costs_a_few_configmap_writes_and_the_last_edit_lands(
    deployed: Deployed, kubeconfig: Path, tmp_path: Path
) -> None:
    """150 creates in one `kubectl apply` (one request each) are rendered in a handful of
    ConfigMap writes, far fewer than 150; an edit sent right after the burst, while its
    renders are still pending, is in the ConfigMap and observed in the status; and a later
    edit is rendered from the watch-fed cache: the API server serves no LIST for it."""
    d = deployed
    with operator(d, kubeconfig, tmp_path / "operator-0.log"):
        d.wait(
            "the empty policy ConfigMap",
            lambda: (
                d.kubectl("get", "configmap", CONFIGMAP, "-n", d.namespace, check=False).returncode
                == 0
            ),
        )
        since = str(d.get("configmap", CONFIGMAP)["metadata"]["resourceVersion"])
        apply_all(d.kubectl, d.namespace, [audit(i) for i in range(N)])
        patch = json.dumps({"spec": {"priority": 999}})
        d.kubectl("patch", "tlspolicy", "p000", "-n", d.namespace, "--type=merge", "-p", patch)
        d.wait("every status", lambda: all_reconciled(d, N), timeout=90)
        d.wait(
            "the edit in the ConfigMap",
            lambda: rules(d.get("configmap", CONFIGMAP)).get("p000") == 999,
        )
        versions = configmap_versions(d, since)

        lists = policy_lists(d)  # from here on the test reads single objects only (GET)
        patch = json.dumps({"spec": {"priority": 998}})
        d.kubectl("patch", "tlspolicy", "p001", "-n", d.namespace, "--type=merge", "-p", patch)
        d.wait(
            "the second edit observed",
            lambda: d.policy("p001").get("status", {}).get("observedGeneration") == 2,
        )
        assert rules(d.get("configmap", CONFIGMAP))["p001"] == 998
        assert policy_lists(d) == lists, "an edit was rendered from a LIST, not the cache"
    assert len(rules(versions[-1])) == N
    assert 1 <= len(versions) <= N // 10, f"{len(versions)} ConfigMap writes for {N} creates"
    assert d.policy("p000")["status"]["observedGeneration"] == 2


def test_policies_present_at_start_are_one_complete_write_and_a_restart_writes_nothing(
    deployed: Deployed, kubeconfig: Path, tmp_path: Path
) -> None:
    """With 150 policies already stored, the operator's first ConfigMap carries all of
    them (never a partial set from a cache still filling) and is its only write. A second
    operator started on the unchanged namespace rewrites no status, no ConfigMap and posts
    no event: Ready was already Ready."""
    d = deployed
    apply_all(d.kubectl, d.namespace, [audit(i) for i in range(N)])
    since = list_version(d)
    first_log = tmp_path / "operator-0.log"
    with operator(d, kubeconfig, first_log):
        d.wait("every status", lambda: all_reconciled(d, N), timeout=90)
        d.wait("the Ready events", lambda: len(d.get("events")["items"]) >= N)
    versions = configmap_versions(d, since)
    assert [len(rules(v)) for v in versions] == [N]

    def snapshot() -> tuple[dict[str, str], int, str]:
        items = d.get("tlspolicies")["items"]
        statuses = {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in items}
        cm = d.get("configmap", CONFIGMAP)["metadata"]["resourceVersion"]
        return statuses, len(d.get("events")["items"]), cm

    before = snapshot()
    second_log = tmp_path / "operator-1.log"
    with operator(d, kubeconfig, second_log):
        d.wait("the restarted operator's first pass", lambda: reconciles(second_log) >= 1)
        d.wait("its event-driven pass", lambda: reconciles(second_log) >= 2)
        time.sleep(2)  # anything it would still write would land now
        after = snapshot()
    assert after == before
