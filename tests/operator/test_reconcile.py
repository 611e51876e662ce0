"""Reconcile sequencing with FakeKube (an in-memory fake; the real API runs in *_kube tests)."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Mapping
from typing import Any

from validation_table import CERT

from mxgate_operator.reconcile import Reconciler
from mxgate_operator.reports import Reports
from mxgate_operator.settings import OperatorSettings

NS = "mail"


class FakeKube:
    """A fake of kube.Kube: dicts in memory, counting calls; no schema, no server."""

    def __init__(self, policies: Mapping[str, dict[str, Any]]) -> None:
        self.policies = {
            name: {"metadata": {"name": name, "uid": f"uid-{name}", "generation": 1}, "spec": spec}
            for name, spec in policies.items()
        }
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.events: list[tuple[str, str]] = []

    async def list_policies(self, namespace: str) -> list[dict[str, Any]]:
        self.calls["list_policies"] += 1
        await asyncio.sleep(0)
        return copy.deepcopy(list(self.policies.values()))

    async def list_certificates(
        self, namespace: str, labels: Mapping[str, str]
    ) -> list[dict[str, Any]] | None:
        return [o for (kind, _), o in self.objects.items() if kind == "Certificate"]

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(("ConfigMap", name))

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self.calls[f"apply {manifest['kind']}"] += 1
        key = (manifest["kind"], manifest["metadata"]["name"])
        self.objects[key] = {**self.objects.get(key, {}), **copy.deepcopy(dict(manifest))}
        return copy.deepcopy(self.objects[key])

    async def delete_certificate(self, namespace: str, name: str) -> None:
        self.calls["delete Certificate"] += 1
        self.objects.pop(("Certificate", name), None)

    async def apply_policy_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.calls["apply status"] += 1
        self.policies[name]["status"] = copy.deepcopy(status)

    async def post_event(
        self, namespace: str, name: str, uid: str, *, type_: str, reason: str, message: str
    ) -> None:
        self.events.append((name, reason))


async def no_reports(namespace: str) -> Reports:
    return Reports((), ())


def reconciler(kube: FakeKube) -> Reconciler:
    return Reconciler(kube, OperatorSettings(), no_reports, clock=lambda: "2026-11-28T12:00:00Z")


POLICIES = {
    "audit": {"mode": "audit", "scope": {"recipientDomains": ["example.com"]}},
    "partners": {
        "mode": "require",
        "scope": {"senderDomains": ["bank.example"]},
        "certificate": CERT,
    },
}


async def test_second_reconcile_writes_nothing() -> None:
    """Reconciling unchanged policies again applies nothing and repeats no event."""
    kube = FakeKube(POLICIES)
    r = reconciler(kube)
    first = await r.reconcile(NS)
    # audit: Normal Ready; partners: Warning RequireOnPublicMX (its certificate is pending)
    assert (first.configmap_applied, first.statuses_written, first.events) == (True, 2, 2)
    again = await r.reconcile(NS)
    assert (again.configmap_applied, again.statuses_written, again.events) == (False, 0, 0)
    assert kube.calls["apply ConfigMap"] == 1
    assert kube.events == [("audit", "Ready"), ("partners", "RequireOnPublicMX")]


async def test_concurrent_triggers_coalesce() -> None:
    """Ten triggers at once (operator start) cost at most two reconciles."""
    kube = FakeKube(POLICIES)
    r = reconciler(kube)
    outcomes = await asyncio.gather(*(r.reconcile(NS) for _ in range(10)))
    assert kube.calls["list_policies"] <= 2
    assert len({o.config_hash for o in outcomes}) == 1


async def test_dropping_a_certificate_deletes_it() -> None:
    """When no policy asks for a listener's certificate any more, its Certificate is deleted."""
    kube = FakeKube(POLICIES)
    r = reconciler(kube)
    await r.reconcile(NS)
    assert ("Certificate", "mxgate-public-mx") in kube.objects
    del kube.policies["partners"]
    await r.reconcile(NS)
    assert ("Certificate", "mxgate-public-mx") not in kube.objects
    assert kube.calls["delete Certificate"] == 1


async def test_objects_of_another_release_are_never_touched() -> None:
    """Issue 18 item 7: a Certificate labelled for another release is neither rewritten nor
    deleted as stale; a policy ConfigMap of another release stops the whole reconcile."""
    kube = FakeKube({"audit": POLICIES["audit"]})
    theirs = {
        "kind": "Certificate",
        "metadata": {"name": "theirs-public-mx", "labels": {"mxgate.io/release": "theirs"}},
    }
    kube.objects[("Certificate", "theirs-public-mx")] = theirs
    await reconciler(kube).reconcile(NS)
    assert kube.objects[("Certificate", "theirs-public-mx")] == theirs
    assert kube.calls["delete Certificate"] == 0
    cm = kube.objects[("ConfigMap", "mxgate-policy")]
    assert cm["metadata"]["labels"]["mxgate.io/release"] == "mxgate"

    other = Reconciler(
        kube, OperatorSettings(prefix="other", policy_configmap="mxgate-policy"), no_reports
    )
    kube.policies["partners"] = {
        "metadata": {"name": "partners", "uid": "u", "generation": 1},
        "spec": POLICIES["partners"],
    }
    before = dict(kube.calls)
    outcome = await other.reconcile(NS)
    assert (outcome.configmap_applied, outcome.statuses_written) == (False, 0)
    assert dict(kube.calls) == {**before, "list_policies": before["list_policies"] + 1}
