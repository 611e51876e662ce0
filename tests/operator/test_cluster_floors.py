"""ClusterFloors sequencing with an in-memory fake (the real API runs in test_floors_kube.py):
floors reach every namespace's document; status and events are written only on change."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from test_reconcile import FakeKube, no_reports

from mxgate_gateway.config.model import Mode
from mxgate_gateway.policy.decisions import Action, Decision
from mxgate_gateway.report.document import ReportDocument
from mxgate_gateway.report.loss import LossReport
from mxgate_operator.cluster import EVENT_NAMESPACE, ClusterFloors
from mxgate_operator.reconcile import Reconciler
from mxgate_operator.render.floor_status import NOT_READ
from mxgate_operator.reports import ReportPass, Reports
from mxgate_operator.settings import OperatorSettings

NOW = "2026-12-01T07:00:00Z"
FLOOR = {"mode": "require", "scope": {"recipientDomains": ["accepted.test"]}}
FLOOR_ID = "cluster.mxgate.io/admin"


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


def test_a_tlspolicy_losing_its_domain_to_a_cluster_policy_shows_on_both() -> None:
    """The ClusterTLSPolicy publishes MTA-STS for the domain in every document; the
    TLSPolicy of a watched namespace that claims it differently is refused (MTASTSConflict)
    and the ClusterTLSPolicy's MTASTSRecordsRendered names it; an allowlist refusal is not
    reported as a conflict."""
    mx = "mx.accepted.test"
    admin = {**FLOOR, "mtaSts": {"mode": "enforce", "mx": [mx]}}
    kube = FakeClusterKube({"admin": admin})
    kube.policies = {
        "author": {
            "metadata": {"name": "author", "uid": "uid-author", "generation": 1},
            "spec": {
                "mode": "opportunistic",
                "scope": {"recipientDomains": ["accepted.test"]},
                "mtaSts": {"mode": "testing", "mx": [mx]},
            },
        }
    }
    settings = OperatorSettings(gateway_domains=("accepted.test",))
    floors = ClusterFloors(kube, settings, lambda: NOW, namespaces=lambda: {"a"})
    reconciler = Reconciler(kube, settings, no_reports, clock=lambda: NOW, floors=floors.floors)

    async def run() -> None:
        await reconciler.reconcile("a")
        await floors.write_status()

    asyncio.run(run())
    assert [p["mode"] for p in document(kube)["mta_sts_policies"]] == ["enforce"]
    author = {c["type"]: c for c in kube.policies["author"]["status"]["conditions"]}
    assert author["Accepted"]["reason"] == "MTASTSConflict"
    assert kube.cluster is not None
    admin_status = kube.cluster["admin"]["status"]
    rendered = {c["type"]: c for c in admin_status["conditions"]}["MTASTSRecordsRendered"]
    assert "TLSPolicy a/author" in rendered["message"]
    assert admin_status["mtaSts"]["domains"] == ["accepted.test"]

    kube.policies["author"]["spec"]["scope"]["recipientDomains"].append("foreign.test")
    kube.policies["author"]["metadata"]["generation"] = 2  # a spec edit, as the API server does
    asyncio.run(run())
    author = {c["type"]: c for c in kube.policies["author"]["status"]["conditions"]}
    assert author["Accepted"]["reason"] == "MTASTSNotAllowed"
    rendered = {c["type"]: c for c in kube.cluster["admin"]["status"]["conditions"]}
    assert "a/author" not in rendered["MTASTSRecordsRendered"]["message"]


def floor_report(refused: int) -> ReportDocument:
    """A gateway's /report after it refused ``refused`` recipients under the floor."""
    loss = LossReport(clock=lambda: 0.0)
    for _ in range(refused):
        loss.record_decision(Decision(Action.REFUSE, FLOOR_ID, Mode.REQUIRE, (530, "x")))
    return loss.snapshot()


def test_a_report_pass_counts_the_floor_in_every_namespace_and_writes_only_changes() -> None:
    """What the report pass's reconciles read (ReportPass) is summed for the floor: status
    written once with the counts, not again while they stay (one namespace's reports
    unreadable included), not on a watch-driven write (no reads), again when they move."""
    kube = FakeClusterKube({"admin": FLOOR})
    reads = {
        "a": Reports((floor_report(2),), (), ("http://10.0.0.1/report",)),
        "b": Reports((floor_report(1),), ("http://10.0.1.9/report: E",), ("http://10.0.1.1/r",)),
    }

    async def source(namespace: str) -> Reports:
        return reads[namespace]

    report_pass = ReportPass(source)
    floors = ClusterFloors(kube, OperatorSettings(), lambda: NOW)
    reconciler = Reconciler(kube, OperatorSettings(), report_pass, clock=lambda: NOW)

    async def tick() -> int:
        for namespace in ("a", "b"):
            await reconciler.reconcile(namespace, read_reports=True)
        return await floors.write_status(report_pass.take(["a", "b", "c"]))

    assert asyncio.run(tick()) == 1
    assert kube.cluster is not None
    observed = kube.cluster["admin"]["status"]["observed"]
    assert (observed["gateways"], observed["refused"], observed["wouldRefusePercent"]) == (
        2,
        3,
        100.0,
    )
    assert observed["message"] == (
        "last 60 minutes, summed over the 2 gateway(s) that answered;"
        " 1 gateway report(s) unreadable: http://10.0.1.9/report: E (namespace b);"
        f" {NOT_READ} (namespace c)"
    )
    writes = kube.calls["apply cluster status"]
    assert asyncio.run(tick()) == 0  # idle: same counts, nothing written
    assert asyncio.run(floors.write_status()) == 0  # watch-driven: counts kept as they are
    assert kube.calls["apply cluster status"] == writes
    assert kube.cluster["admin"]["status"]["observed"] == observed
    reads["a"] = Reports((floor_report(5),), (), ("http://10.0.0.1/report",))
    assert asyncio.run(tick()) == 1
    assert kube.cluster["admin"]["status"]["observed"]["refused"] == 6
    assert report_pass.take(["a"]) == {"a": None}  # each pass starts empty


def test_a_floor_created_between_passes_is_written_once_not_again_by_the_next_pass() -> None:
    """A ClusterTLSPolicy added after a report pass gets its first status (watch-driven)
    with status.observed from that pass, as of then (a floor the reports predate counts 0):
    the next pass finds the same counts and writes nothing. A write that saw no pass yet
    has no observed field."""
    kube = FakeClusterKube({"admin": FLOOR})
    floors = ClusterFloors(kube, OperatorSettings(), lambda: NOW)
    assert asyncio.run(floors.write_status()) == 1
    assert kube.cluster is not None
    assert "observed" not in kube.cluster["admin"]["status"]
    reads: dict[str, Reports | None] = {"a": Reports((floor_report(2),), (), ("u",))}
    assert asyncio.run(floors.write_status(reads)) == 1
    kube.cluster["late"] = {
        "metadata": {"name": "late", "uid": "uid-late", "generation": 1},
        "spec": {"mode": "audit", "scope": {"recipientDomains": ["other.test"]}},
    }
    assert asyncio.run(floors.write_status()) == 1  # only the new floor, with its counts
    late = kube.cluster["late"]["status"]["observed"]
    assert (late["gateways"], late["matched"], late["updatedAt"]) == (1, 0, NOW)
    assert asyncio.run(floors.write_status(reads)) == 0
