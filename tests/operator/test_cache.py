"""The watch-fed policy cache (issue 18 scale): what an event-driven render reads.

Pure tests of ``PolicyCache``; the reconciler's use of it is in test_reconcile.py and,
against the real API server, in test_scale_kube.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mxgate_operator.cache import PolicyCache

NS = "mail"


def body(
    name: str, generation: int = 1, ns: str = NS, uid: str = "", rv: int | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "uid": uid or f"uid-{name}",
        "generation": generation,
    }
    if rv is not None:
        meta["resourceVersion"] = str(rv)
    return {"metadata": meta, "spec": {"priority": generation}}


def names(cache: PolicyCache, ns: str = NS) -> list[tuple[str, int]]:
    return [(p["metadata"]["name"], p["metadata"]["generation"]) for p in cache.policies(ns)]


def test_events_add_edit_and_delete() -> None:
    cache = PolicyCache()
    cache.observe(None, body("b"))  # kopf's initial listing
    cache.observe("ADDED", body("a"))
    cache.observe("MODIFIED", body("b", 2))
    cache.observe("ADDED", body("c", ns="other"))
    cache.observe("DELETED", body("a"))
    assert names(cache) == [("b", 2)]
    assert names(cache, "other") == [("c", 1)]
    assert not cache.seeded(NS)


async def test_a_sync_replaces_the_store_with_the_list() -> None:
    """A LIST is the truth: what only events had seen (e.g. a delete missed in a watch gap)
    is dropped, and the namespace counts as seeded from then on."""
    cache = PolicyCache()
    cache.observe("ADDED", body("gone"))

    async def lister(namespace: str) -> list[dict[str, Any]]:
        return [body("a"), body("b", 3)]

    await cache.sync(NS, lister)
    assert names(cache) == [("a", 1), ("b", 3)]
    assert cache.seeded(NS)


async def test_events_during_a_sync_win_over_its_list() -> None:
    """An edit, a create and a delete the watch delivers while the LIST is in flight are
    replayed on top of it: the LIST (read before them) never rolls them back."""
    cache = PolicyCache()
    listing = asyncio.Event()

    async def lister(namespace: str) -> list[dict[str, Any]]:
        listing.set()
        await asyncio.sleep(0.01)
        return [body("a"), body("b"), body("c")]  # as read before the events below

    async def events() -> None:
        await listing.wait()
        cache.observe("MODIFIED", body("a", 2))
        cache.observe("ADDED", body("d"))
        cache.observe("DELETED", body("c"))

    await asyncio.gather(cache.sync(NS, lister), events())
    assert names(cache) == [("a", 2), ("b", 1), ("d", 1)]


async def test_a_failed_sync_leaves_the_namespace_unseeded() -> None:
    cache = PolicyCache()

    async def broken(namespace: str) -> list[dict[str, Any]]:
        raise RuntimeError("list failed")

    with pytest.raises(RuntimeError):
        await cache.sync(NS, broken)
    assert not cache.seeded(NS)
    cache.observe("ADDED", body("a"))  # no LIST in flight: nothing queued for replay
    assert names(cache) == [("a", 1)]


def test_a_written_status_is_remembered_without_rolling_back_the_spec() -> None:
    """Our own status write lands on the cached object as it is now (a newer edit the watch
    already delivered stays), and never on a re-created namesake (another uid)."""
    cache = PolicyCache()
    cache.observe("MODIFIED", body("a", 2))
    cache.record_status(NS, "a", "uid-a", {"observedGeneration": 1})
    (a,) = cache.policies(NS)
    assert (a["metadata"]["generation"], a["status"]) == (2, {"observedGeneration": 1})
    cache.record_status(NS, "a", "uid-old", {"observedGeneration": 9})
    cache.record_status(NS, "missing", "uid-missing", {"observedGeneration": 1})
    assert [p.get("status") for p in cache.policies(NS)] == [{"observedGeneration": 1}]


def test_a_lagging_event_never_rolls_back_a_newer_state() -> None:
    """kopf's per-object queues lag under load: an ADDED event delivered after the status
    write we recorded (or after a newer edit) is older and ignored; a re-created namesake
    (new uid) and versions that are not decimal always replace."""
    cache = PolicyCache()
    cache.observe("ADDED", body("a", rv=10))
    cache.record_status(NS, "a", "uid-a", {"observedGeneration": 1}, "12")
    cache.observe("ADDED", body("a", rv=10))  # the create, delivered late
    (a,) = cache.policies(NS)
    assert (a["metadata"]["resourceVersion"], a.get("status")) == ("12", {"observedGeneration": 1})
    cache.observe("MODIFIED", body("a", 2, rv=15))
    cache.record_status(NS, "a", "uid-a", {"observedGeneration": 1}, "13")  # reply after edit
    (a,) = cache.policies(NS)
    assert (a["metadata"]["generation"], a["metadata"]["resourceVersion"]) == (2, "15")
    cache.observe("ADDED", body("a", 1, uid="uid-new", rv=3))
    assert cache.policies(NS)[0]["metadata"]["uid"] == "uid-new"
    cache.observe(
        "MODIFIED",
        {
            **body("a", 5, uid="uid-new"),
            "metadata": {**body("a", 5, uid="uid-new")["metadata"], "resourceVersion": "opaque"},
        },
    )
    assert cache.policies(NS)[0]["metadata"]["generation"] == 5


async def test_a_sync_keeps_what_is_newer_than_its_list() -> None:
    """A LIST read before our own status write does not undo the write."""
    cache = PolicyCache()
    cache.observe("ADDED", body("a", rv=10))
    cache.record_status(NS, "a", "uid-a", {"observedGeneration": 1}, "12")

    async def lister(namespace: str) -> list[dict[str, Any]]:
        return [body("a", rv=11), body("b", rv=11)]

    await cache.sync(NS, lister)
    assert [p["metadata"]["resourceVersion"] for p in cache.policies(NS)] == ["12", "11"]
