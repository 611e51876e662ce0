"""Reconcile sequencing with FakeKube (an in-memory fake; the real API runs in *_kube tests)."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from validation_table import CERT

from mxgate_operator.cache import PolicyCache
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


def cached(kube: FakeKube, **kwargs: Any) -> tuple[Reconciler, PolicyCache]:
    cache = PolicyCache()
    r = Reconciler(
        kube,
        OperatorSettings(),
        no_reports,
        clock=lambda: "2026-11-28T12:00:00Z",
        cache=cache,
        **kwargs,
    )
    return r, cache


def create(kube: FakeKube, cache: PolicyCache, name: str) -> None:
    """What the API server and its watch do for one `kubectl create`."""
    body = {
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {"mode": "audit", "scope": {"senderDomains": [f"{name}.example"]}},
    }
    kube.policies[name] = copy.deepcopy(body)
    cache.observe("ADDED", body)


async def test_a_burst_of_creates_is_rendered_once() -> None:
    """Issue 18 scale: 40 creates arriving 10 ms apart are one render and one ConfigMap
    write (the render waits until events pause), not one per policy."""
    kube = FakeKube({})
    r, cache = cached(kube, settle=0.5, max_delay=30.0)
    triggers = []
    for i in range(40):
        create(kube, cache, f"p{i:02}")
        triggers.append(asyncio.create_task(r.reconcile(NS)))
        await asyncio.sleep(0.01)
    outcomes = await asyncio.gather(*triggers)
    assert kube.calls["apply ConfigMap"] == 1
    assert {o.accepted for o in outcomes} == {40}
    assert kube.calls["apply status"] == 40


async def test_a_steady_stream_of_events_still_renders_within_max_delay() -> None:
    """Events that never pause do not postpone the render forever: it starts at most
    max_delay after the first, and the events after it get a render of their own."""
    kube = FakeKube({})
    r, cache = cached(kube, settle=10.0, max_delay=0.05)
    triggers = []
    for i in range(30):
        create(kube, cache, f"p{i:02}")
        triggers.append(asyncio.create_task(r.reconcile(NS)))
        await asyncio.sleep(0.01)
    outcomes = await asyncio.gather(*triggers)
    assert kube.calls["apply ConfigMap"] >= 2
    assert outcomes[-1].accepted == 30


async def test_event_driven_renders_read_the_cache_and_the_report_pass_resyncs() -> None:
    """One LIST seeds the namespace; later event-driven reconciles render from the cache
    (an edit included, no LIST); the report pass LISTs again (a resync)."""
    kube = FakeKube({})
    r, cache = cached(kube)
    create(kube, cache, "a")
    first = await r.reconcile(NS)
    assert (first.accepted, kube.calls["list_policies"]) == (1, 1)
    create(kube, cache, "b")
    second = await r.reconcile(NS)
    assert (second.accepted, second.configmap_applied, kube.calls["list_policies"]) == (2, True, 1)
    await r.reconcile(NS, read_reports=True)
    assert kube.calls["list_policies"] == 2


async def test_no_status_is_rewritten_before_its_watch_event_returns() -> None:
    """A status just written is remembered: a second render before the watch event of
    that write comes back writes nothing (and posts no event) again."""
    kube = FakeKube({})
    r, cache = cached(kube)
    create(kube, cache, "a")
    await r.reconcile(NS)
    again = await r.reconcile(NS)
    assert (again.statuses_written, again.events, kube.calls["apply status"]) == (0, 0, 1)


async def test_a_new_policy_is_written_once_not_again_by_the_next_report_pass() -> None:
    """Issue 18 scale: a policy created between report passes gets the last reports'
    observed effect (as of their read) with its first status, so the next report pass
    finds nothing to add: one status write per new policy, not two."""
    kube = FakeKube({})
    ticks = iter(f"2026-11-28T12:00:{s:02}Z" for s in range(60))
    r = Reconciler(kube, OperatorSettings(), no_reports, clock=lambda: next(ticks))
    kube.policies.update(FakeKube({"old": POLICIES["audit"]}).policies)
    await r.reconcile(NS, read_reports=True)
    read_at = kube.policies["old"]["status"]["observed"]["updatedAt"]
    kube.policies.update(FakeKube({"new": POLICIES["audit"]}).policies)
    created = await r.reconcile(NS)
    assert created.statuses_written == 1
    observed = kube.policies["new"]["status"]["observed"]
    assert (observed["gateways"], observed["matched"], observed["updatedAt"]) == (0, 0, read_at)
    assert "no gateway found" in observed["message"]
    later = await r.reconcile(NS, read_reports=True)
    assert later.statuses_written == 0
    assert kube.calls["apply status"] == 2  # "old" once, "new" once


async def until(check: Callable[[], bool], what: str = "the condition") -> None:
    """Let the loop run until ``check()`` holds (bounded: a hang is a failure, not a wait)."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never saw {what}")


async def test_an_edit_reaches_the_configmap_while_statuses_are_still_being_written() -> None:
    """Issue 18 scale: a render does not wait for the previous reconcile's status writes
    (1,000 of them at a cold start): with every status write held up, an edit is still
    applied to the ConfigMap, and its status follows once the writes resume."""
    kube = FakeKube({})
    r, cache = cached(kube)
    release = asyncio.Event()
    plain_apply_status = kube.apply_policy_status

    async def slow_status(namespace: str, name: str, status: dict[str, Any]) -> None:
        await release.wait()
        await plain_apply_status(namespace, name, status)

    kube.apply_policy_status = slow_status  # type: ignore[method-assign]
    for i in range(5):
        create(kube, cache, f"p{i}")
    first = asyncio.create_task(r.reconcile(NS))
    await until(lambda: kube.calls["apply ConfigMap"] == 1)
    edited = copy.deepcopy(kube.policies["p0"])
    edited["metadata"]["generation"] = 2
    edited["spec"]["priority"] = 7
    kube.policies["p0"] = copy.deepcopy(edited)
    cache.observe("MODIFIED", edited)
    second = asyncio.create_task(r.reconcile(NS))
    await until(lambda: kube.calls["apply ConfigMap"] == 2, "the edit's ConfigMap write")
    assert not first.done()
    assert kube.calls["apply status"] == 0
    release.set()
    await asyncio.gather(first, second)
    assert kube.policies["p0"]["status"]["observedGeneration"] == 2
    assert [name for name, reason in kube.events].count("p0") == 1  # one Ready, not two


async def test_a_spec_is_parsed_once_per_generation() -> None:
    """Renders reuse the parse of an unchanged policy (a burst renders 1,000 policies
    several times); an edit (new generation) is parsed again and rendered as edited."""
    kube = FakeKube({})
    r, cache = cached(kube)
    create(kube, cache, "a")
    create(kube, cache, "b")
    await r.reconcile(NS)
    parsed = {p.name: p for p in r._inputs(NS, cache.policies(NS))}
    edited = copy.deepcopy(cache.get(NS, "a"))
    assert edited is not None
    edited["metadata"]["generation"] = 2
    edited["spec"]["mode"] = "opportunistic"
    cache.observe("MODIFIED", edited)
    again = {p.name: p for p in r._inputs(NS, cache.policies(NS))}
    assert again["b"] is parsed["b"]
    assert again["a"] is not parsed["a"]
    assert again["a"].parsed.spec is not None
    assert again["a"].parsed.spec.mode.value == "opportunistic"
