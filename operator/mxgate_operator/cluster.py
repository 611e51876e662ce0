"""ClusterTLSPolicies: read them, render their floors (pure, render/floors.py), write their status.

Kept apart from the namespace reconcile: ``Reconciler`` only asks ``floors()`` for what to
put in each document; this module owns the cluster-scoped objects' status and events (in
namespace default, the one the API server allows). It must not render TLSPolicies or
speak kopf.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import structlog

from mxgate_gateway.config.model import MTASTSPolicy
from mxgate_operator.render.floor_status import NamespaceReads, floor_effects, floor_status
from mxgate_operator.render.floors import (
    ClusterPolicyInput,
    FloorsResult,
    with_tlspolicy_claims,
)
from mxgate_operator.render.gateway_config import floors_within
from mxgate_operator.render.mtasts import gateway_policies, published_domains
from mxgate_operator.render.status import Effect
from mxgate_operator.reports import Reports
from mxgate_operator.settings import OperatorSettings
from mxgate_operator.spec import parse_policy
from mxgate_operator.spec_cluster import parse_cluster_policy

log = structlog.get_logger("mxgate_operator.cluster")
# The API server accepts events about a cluster-scoped object only in "default" (or "").
EVENT_NAMESPACE = "default"


class ClusterKubeAPI(Protocol):
    """What cluster policy handling needs from the API (implemented by ``kube.Kube``)."""

    async def list_cluster_policies(self) -> list[dict[str, Any]] | None: ...
    async def list_policies(self, namespace: str) -> list[dict[str, Any]]: ...
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
        self,
        kube: ClusterKubeAPI,
        settings: OperatorSettings,
        clock: Callable[[], str],
        namespaces: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.clock = clock
        # Where TLSPolicies may claim a ClusterTLSPolicy's MTA-STS domains (default: home).
        home = (settings.namespace,) if settings.namespace else ()
        self.namespaces = namespaces or (lambda: home)
        self._lock = asyncio.Lock()
        # The last report pass's reads and when: a floor created between passes gets its
        # first status.observed from them, so the next pass does not write it again.
        self._last_reads: tuple[dict[str, NamespaceReads | None], str] | None = None

    async def _read(self) -> tuple[FloorsResult, dict[str, dict[str, Any]]]:
        if not self.settings.cluster_policies:
            return FloorsResult(), {}
        objects = await self.kube.list_cluster_policies()
        if objects is None:  # no CRD, or no right to read it: no floors
            return FloorsResult(), {}
        by_name = {str(o["metadata"]["name"]): o for o in objects}
        inputs = [to_input(o) for o in by_name.values()]
        return floors_within(inputs, self.settings.budget, self.settings.mta_sts_rules), by_name

    async def floors(self) -> FloorsResult:
        """What every namespace's policy document carries (read fresh on each call)."""
        result, _ = await self._read()
        return result

    async def _claims(self) -> list[tuple[str, tuple[MTASTSPolicy, ...]]]:
        """(rule id, MTA-STS policies) of every valid TLSPolicy publishing MTA-STS that the
        chart's allowlists let through (render_policies judges conflicts only then)."""
        claims: list[tuple[str, tuple[MTASTSPolicy, ...]]] = []
        rules = self.settings.mta_sts_rules
        for namespace in sorted(set(self.namespaces())):
            for obj in await self.kube.list_policies(namespace):
                name = str((obj.get("metadata") or {}).get("name", ""))
                spec = parse_policy(name, obj.get("spec")).spec
                if spec is None or spec.mta_sts is None:
                    continue
                if rules.refusal(published_domains(spec), spec.mta_sts.mx) is not None:
                    continue  # refused as MTASTSNotAllowed before any conflict is judged
                claims.append((f"{namespace}/{name}", gateway_policies(spec)))
        return claims

    async def write_status(self, reads: Mapping[str, Reports | None] | None = None) -> int:
        """Write each ClusterTLSPolicy's status where it changed, with its events; the count
        of statuses written.

        ``reads``: what a report pass read, by namespace (``ReportPass.take``); each floor's
        status.observed is then its counters summed over them. None (a watch-driven write)
        keeps status.observed; a floor without one yet gets the last pass's, as of then.
        """
        async with self._lock:
            result, objects = await self._read()
            if result.mta_sts:
                result = with_tlspolicy_claims(result, await self._claims())
            now, written = self.clock(), 0
            admissions = {a.name: a for a in result.admissions}
            effects: dict[str, Effect] = {}
            if reads is not None:
                self._last_reads = (_namespace_reads(reads), now)
                effects = floor_effects(
                    self._last_reads[0], [p.floor_id for p in result.inputs], now
                )
            for policy in result.inputs:
                previous = objects[policy.name].get("status") or {}
                out = floor_status(
                    policy=policy,
                    admission=admissions[policy.name],
                    previous=previous,
                    now=now,
                    effect=(
                        effects[policy.floor_id]
                        if reads is not None
                        else self._first_effect(policy, previous)
                    ),
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

    def _first_effect(self, policy: ClusterPolicyInput, previous: dict[str, Any]) -> Effect | None:
        """A floor's observed effect between report passes when it has none yet: the last
        pass's reads, as of then (a floor they predate counts 0); else None (keep)."""
        if self._last_reads is None or previous.get("observed"):
            return None
        reads, read_at = self._last_reads
        return floor_effects(reads, [policy.floor_id], read_at)[policy.floor_id]


def _namespace_reads(reads: Mapping[str, Reports | None]) -> dict[str, NamespaceReads | None]:
    """Each namespace's reports as pure values, each document keyed by the URL it was read
    from (by namespace and position when the source is not known)."""
    out: dict[str, NamespaceReads | None] = {}
    for namespace, read in reads.items():
        if read is None:
            out[namespace] = None
            continue
        sources = read.sources
        if len(sources) != len(read.documents):
            sources = tuple(f"{namespace}#{i}" for i in range(len(read.documents)))
        out[namespace] = NamespaceReads(
            tuple(zip(sources, read.documents, strict=True)), read.message
        )
    return out
