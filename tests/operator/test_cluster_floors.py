"""ClusterFloors sequencing with an in-memory fake (the real API runs in test_floors_kube.py):
floors reach every namespace's document; status and events are written only on change."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from test_reconcile import FakeKube, no_reports

from mxgate_operator.cluster import EVENT_NAMESPACE, ClusterFloors
from mxgate_operator.reconcile import Reconciler
from mxgate_operator.settings import OperatorSettings

NOW = "2026-12-01T07:00:00Z"
FLOOR = {"mode": "require", "scope": {"recipientDomains": ["accepted.test"]}}


class FakeClusterKube(FakeKube):
    """FakeKube plus ClusterTLSPolicies; ``cluster=None`` behaves like a missing CRD."""

    def __init__(self, cluster: dict[str, Any] | None) -> None:
        super().__init__({})
        self.cluster: dict[str, dict[str, Any]] | None = None
        if cluster is not None:
            self.cluster = {
                name: {
                    "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1},
                    "spec": spec,
                }
                for name, spec in cluster.items()
            }
        self.cluster_events: list[tuple[str, str, str]] = []

    async def list_cluster_policies(self) -> list[dict[str, Any]] | None:
        await asyncio.sleep(0)
        return None if self.cluster is None else copy.deepcopy(list(self.cluster.values()))

    async def apply_cluster_policy_status(self, name: str, status: dict[str, Any]) -> None:
        self.calls["apply cluster status"] += 1
        assert self.cluster is not None
        self.cluster[name]["status"] = copy.deepcopy(status)

    async def post_cluster_event(
        self, namespace: str, name: str, uid: str, *, type_: str, reason: str, message: str
    ) -> None:
        self.cluster_events.append((namespace, name, reason))


def setup(
    kube: FakeClusterKube, settings: OperatorSettings | None = None
) -> tuple[ClusterFloors, Reconciler]:
    s = settings or OperatorSettings()
    floors = ClusterFloors(kube, s, lambda: NOW)
    return floors, Reconciler(kube, s, no_reports, clock=lambda: NOW, floors=floors.floors)


def document(kube: FakeClusterKube) -> dict[str, Any]:
    cm = kube.objects[("ConfigMap", "mxgate-policy")]
    return json.loads(cm["data"]["policy.json"])  # type: ignore[no-any-return]


def test_floors_reach_every_namespace_and_status_is_written_once() -> None:
    """Each namespace's document carries the floor; the status is written on the first pass
    with a Warning (RFC 3207) and a Normal Ready event in namespace default, not again."""
    kube = FakeClusterKube({"admin": FLOOR})
    floors, reconciler = setup(kube)

    async def run() -> None:
        for namespace in ("a", "b"):
            await reconciler.reconcile(namespace)
            assert [f["id"] for f in document(kube)["floors"]] == ["cluster.mxgate.io/admin"]
        assert await floors.write_status() == 1
        assert await floors.write_status() == 0

    asyncio.run(run())
    assert kube.cluster is not None
    conditions = {c["type"]: c["status"] for c in kube.cluster["admin"]["status"]["conditions"]}
    assert conditions == {"Accepted": "True", "StandardsCompliant": "False", "Ready": "True"}
    assert sorted(kube.cluster_events) == [
        (EVENT_NAMESPACE, "admin", "Ready"),
        (EVENT_NAMESPACE, "admin", "RequireOnPublicMX"),
    ]


def test_without_the_crd_or_when_switched_off_there_are_no_floors() -> None:
    """No ClusterTLSPolicy CRD (or MXGATE_CLUSTER_POLICIES=false): the document has no
    floors key and nothing is written for cluster policies."""
    for kube, settings in (
        (FakeClusterKube(None), None),
        (FakeClusterKube({"admin": FLOOR}), OperatorSettings(cluster_policies=False)),
    ):
        floors, reconciler = setup(kube, settings)

        async def run(f: ClusterFloors = floors, r: Reconciler = reconciler) -> int:
            await r.reconcile("a")
            return await f.write_status()

        assert asyncio.run(run()) == 0
        assert "floors" not in document(kube)
        assert kube.cluster_events == []
