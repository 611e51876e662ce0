"""The operator's in-memory view of TLSPolicies: fed by watch events, seeded by a LIST.

An informer's store, per namespace: kopf's watch events keep it current (adds, edits,
deletes and our own status writes), so an event-driven reconcile renders from memory
instead of listing every policy from the API server. A namespace is *seeded* by one full
LIST before its first render (a store built only from events could be partial, and a
partial render would drop rules from the gateways), and re-seeded by the report loop's
periodic LIST (a resync that bounds any drift, e.g. a watch gap). Events that arrive while
a LIST is in flight are replayed on top of it in order, so the newest event always wins.

It must not call the API itself (the caller passes the LIST), decide or render.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Lister = Callable[[str], Awaitable[list[dict[str, Any]]]]


def _name(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(body: Mapping[str, Any]) -> tuple[str, int | None]:
    meta = body.get("metadata") or {}
    rv = str(meta.get("resourceVersion") or "")
    return str(meta.get("uid") or ""), int(rv) if rv.isdecimal() else None


def is_stale(incoming: Mapping[str, Any], cached: Mapping[str, Any] | None) -> bool:
    """Whether ``incoming`` is an older state of the object ``cached`` already holds."""
    if cached is None:
        return False
    (uid, rv), (cached_uid, cached_rv) = _version(incoming), _version(cached)
    return uid == cached_uid and rv is not None and cached_rv is not None and rv < cached_rv


class PolicyCache:
    """TLSPolicy bodies by namespace and name; one instance per operator process."""

    def __init__(self) -> None:
        self._store: dict[str, dict[str, dict[str, Any]]] = {}
        self._seeded: set[str] = set()
        # namespace -> events seen while its LIST is in flight (replayed after it)
        self._pending: dict[str, list[tuple[str | None, dict[str, Any]]]] = {}

    def seeded(self, namespace: str) -> bool:
        return namespace in self._seeded

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Apply one watch event (``None`` is kopf's initial listing, like ADDED)."""
        namespace, name = _name(body)
        if not namespace or not name:
            return
        pending = self._pending.get(namespace)
        if pending is not None:
            pending.append((event_type, dict(body)))
        self._apply(namespace, name, event_type, dict(body))

    def _apply(
        self, namespace: str, name: str, event_type: str | None, body: dict[str, Any]
    ) -> None:
        store = self._store.setdefault(namespace, {})
        if is_stale(body, store.get(name)):
            return  # a lagging event (or LIST) behind what we already hold
        if event_type == "DELETED":
            store.pop(name, None)
        else:
            store[name] = body

    async def sync(self, namespace: str, lister: Lister) -> None:
        """Replace the namespace's store with a fresh LIST, then replay events seen meanwhile.

        Concurrent syncs of one namespace are the caller's to avoid (the reconciler
        holds its namespace lock).
        """
        self._pending[namespace] = []
        try:
            listed = await lister(namespace)
        except BaseException:
            self._pending.pop(namespace, None)
            raise
        replay = self._pending.pop(namespace)
        held = self._store.get(namespace, {})
        fresh = {_name(o)[1]: o for o in listed}
        for name, body in fresh.items():
            if is_stale(body, held.get(name)):  # e.g. our status write it was read before
                fresh[name] = held[name]
        self._store[namespace] = fresh
        for event_type, body in replay:
            self._apply(namespace, _name(body)[1], event_type, body)
        self._seeded.add(namespace)

    def policies(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's policies (sorted by name: a stable render input)."""
        store = self._store.get(namespace, {})
        return [store[k] for k in sorted(store)]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._store.get(namespace, {}).get(name)

    def record_status(
        self,
        namespace: str,
        name: str,
        uid: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> None:
        """Remember a status we just wrote (and the resourceVersion it was stored at), so
        the next render does not write it again, and events older than the write cannot
        roll it back. Spec and metadata stay as the cache has them (a newer edit the watch
        already delivered is never rolled back); only the same object (uid) is touched."""
        body = self._store.get(namespace, {}).get(name)
        if body is None or (body.get("metadata") or {}).get("uid") != uid:
            return
        meta = dict(body.get("metadata") or {})
        if resource_version is not None and not is_stale(
            {"metadata": {"uid": uid, "resourceVersion": resource_version}}, body
        ):
            meta["resourceVersion"] = resource_version
        self._store[namespace][name] = {**body, "metadata": meta, "status": status}
