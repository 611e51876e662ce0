"""ClusterTLSPolicies: read them, render their floors (pure, render/floors.py), write their status.

Kept apart from the namespace reconcile: ``Reconciler`` only asks ``floors()`` for what to
put in each document; this module owns the cluster-scoped objects' status and events (in
namespace default, the one the API server allows). It must not render TLSPolicies or
speak kopf.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from mxgate_operator.render.floor_status import floor_status
from mxgate_operator.render.floors import ClusterPolicyInput, FloorsResult, render_floors
from mxgate_operator.render.gateway_config import floor_room
from mxgate_operator.settings import OperatorSettings
from mxgate_operator.spec_cluster import parse_cluster_policy

log = structlog.get_logger("mxgate_operator.cluster")
# The API server accepts events about a cluster-scoped object only in "default" (or "").
EVENT_NAMESPACE = "default"


class ClusterKubeAPI(Protocol):
    """What cluster policy handling needs from the API (implemented by ``kube.Kube``)."""

    async def list_cluster_policies(self) -> list[dict[str, Any]] | None: ...
    async def apply_cluster_policy_status(self, name: str, status: dict[str, Any]) -> None: ...
    async def post_cluster_event(
        self, namespace: str, name: str, uid: str, *, type_: str, reason: str, message: str
    ) -> None: ...


def to_input(obj: dict[str, Any]) -> ClusterPolicyInput:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    return ClusterPolicyInput(
        name=name,
        uid=str(meta.get("uid", "")),
        generation=int(meta.get("generation") or 0),
        parsed=parse_cluster_policy(name, obj.get("spec")),
        created=str(meta.get("creationTimestamp") or ""),
    )


class ClusterFloors:
    """The floors for every namespace's document, and the ClusterTLSPolicies' status."""

    def __init__(
        self, kube: ClusterKubeAPI, settings: OperatorSettings, clock: Callable[[], str]
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.clock = clock
        self._lock = asyncio.Lock()

    async def _read(self) -> tuple[FloorsResult, dict[str, dict[str, Any]]]:
        if not self.settings.cluster_policies:
            return FloorsResult(), {}
        objects = await self.kube.list_cluster_policies()
        if objects is None:  # no CRD, or no right to read it: no floors
            return FloorsResult(), {}
        by_name = {str(o["metadata"]["name"]): o for o in objects}
        inputs = [to_input(o) for o in by_name.values()]
        return render_floors(inputs, floor_room(self.settings.budget)), by_name

    async def floors(self) -> FloorsResult:
        """What every namespace's policy document carries (read fresh on each call)."""
        result, _ = await self._read()
        return result

    async def write_status(self) -> int:
        """Write each ClusterTLSPolicy's status where it changed, with its events; the count
        of statuses written."""
        async with self._lock:
            result, objects = await self._read()
            now, written = self.clock(), 0
            admissions = {a.name: a for a in result.admissions}
            for policy in result.inputs:
                previous = objects[policy.name].get("status") or {}
                out = floor_status(
                    policy=policy, admission=admissions[policy.name], previous=previous, now=now
                )
                if out.status != previous:
                    await self.kube.apply_cluster_policy_status(policy.name, out.status)
                    written += 1
                for event in out.events:
                    await self.kube.post_cluster_event(
                        EVENT_NAMESPACE,
                        policy.name,
                        policy.uid,
                        type_=event.type,
                        reason=event.reason,
                        message=event.message,
                    )
            if written:
                log.info("cluster_policies_reconciled", floors=len(result.floors), written=written)
            return written
