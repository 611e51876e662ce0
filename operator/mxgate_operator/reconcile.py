"""Reconcile one namespace: all TLSPolicies → ConfigMap, Certificates, status, events.

The only place that sequences I/O: read (policies, Certificates, reports), render
(pure), then write only what changed. Idempotent and serialised per namespace; it
must not speak kopf (handlers translate errors) or build manifests itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from mxgate_operator import metrics
from mxgate_operator.render.certificates import (
    MANAGED_BY,
    CertificateState,
    certificate_manifest,
    certificate_state,
    owned_by_other,
    plan_certificates,
    release_of,
)
from mxgate_operator.render.configmap import configmap_manifest, needs_apply
from mxgate_operator.render.floors import FloorsResult
from mxgate_operator.render.gateway_config import PolicyInput, render_policies
from mxgate_operator.render.status import Effect, Event, effects_from_reports, policy_status
from mxgate_operator.reports import Reports
from mxgate_operator.settings import OperatorSettings
from mxgate_operator.spec import parse_policy

log = structlog.get_logger("mxgate_operator.reconcile")
WRITE_CONCURRENCY = 16  # status/event requests in flight per reconcile
CERT_MANAGER_MISSING = CertificateState(
    None, "CertManagerMissing", "cert-manager's Certificate CRD is not installed", None
)


class KubeAPI(Protocol):
    """What reconcile needs from the API (implemented by ``kube.Kube``)."""

    async def list_policies(self, namespace: str) -> list[dict[str, Any]]: ...
    async def list_certificates(
        self, namespace: str, labels: Mapping[str, str]
    ) -> list[dict[str, Any]] | None: ...
    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]: ...
    async def delete_certificate(self, namespace: str, name: str) -> None: ...
    async def apply_policy_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> None: ...
    async def post_event(
        self, namespace: str, name: str, uid: str, *, type_: str, reason: str, message: str
    ) -> None: ...


class ReportSource(Protocol):
    async def __call__(self, namespace: str) -> Reports: ...


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did (for logs and tests)."""

    config_hash: str
    configmap_applied: bool
    certificates: tuple[str, ...]
    statuses_written: int
    events: int
    accepted: int
    skipped: int
    reasons: dict[str, int]


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_input(namespace: str, obj: Mapping[str, Any]) -> PolicyInput:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    return PolicyInput(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid", "")),
        generation=int(meta.get("generation") or 0),
        parsed=parse_policy(name, obj.get("spec")),
        created=str(meta.get("creationTimestamp") or ""),
    )


class Reconciler:
    """Namespace-wide reconciliation, serialised per namespace."""

    def __init__(
        self,
        kube: KubeAPI,
        settings: OperatorSettings,
        reports: ReportSource,
        clock: Callable[[], str] = utcnow,
        floors: Callable[[], Awaitable[FloorsResult]] | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.reports = reports
        self.clock = clock
        self.floors = floors  # ClusterTLSPolicy floors for every document (cluster.py)
        self._locks: dict[str, asyncio.Lock] = {}
        self._queued: dict[str, asyncio.Task[Outcome]] = {}

    async def reconcile(self, namespace: str, *, read_reports: bool = False) -> Outcome:
        """Reconcile ``namespace``; callers that arrive while one is still queued share it.

        A queued run has not read anything yet, so its result covers every change made
        before it starts: N events at operator start cost about two reconciles, not N.
        """
        if read_reports:
            return await self._locked(namespace, read_reports=True)
        queued = self._queued.get(namespace)
        if queued is None:
            queued = asyncio.create_task(self._locked(namespace, read_reports=False))
            self._queued[namespace] = queued
        return await asyncio.shield(queued)

    async def _locked(self, namespace: str, *, read_reports: bool) -> Outcome:
        async with self._locks.setdefault(namespace, asyncio.Lock()):
            if not read_reports:
                self._queued.pop(namespace, None)  # started: later callers queue anew
            try:
                outcome = await self._reconcile(namespace, read_reports=read_reports)
            except Exception:
                metrics.record_reconcile(ok=False)
                raise
            metrics.record_reconcile(ok=True, reasons=outcome.reasons)
            return outcome

    async def _write(
        self,
        namespace: str,
        writes: list[tuple[PolicyInput, dict[str, Any] | None, tuple[Event, ...]]],
    ) -> None:
        """Status, then events, per policy; up to WRITE_CONCURRENCY policies at once (a
        cold start with 1,000 policies is 2,000 requests: one at a time took a minute)."""
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def one(
            p: PolicyInput, status: dict[str, Any] | None, events: tuple[Event, ...]
        ) -> None:
            async with gate:
                if status is not None:
                    await self.kube.apply_policy_status(namespace, p.name, status)
                for event in events:
                    await self.kube.post_event(
                        namespace,
                        p.name,
                        p.uid,
                        type_=event.type,
                        reason=event.reason,
                        message=event.message,
                    )

        results = await asyncio.gather(*(one(*w) for w in writes), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]

    async def _reconcile(self, namespace: str, *, read_reports: bool) -> Outcome:
        kube, settings = self.kube, self.settings
        objects = {o["metadata"]["name"]: o for o in await kube.list_policies(namespace)}
        inputs = [_to_input(namespace, o) for o in objects.values()]
        floors = await self.floors() if self.floors is not None else None
        result = render_policies(
            inputs, settings.budget, settings.certificate_rules, settings.mta_sts_rules, floors
        )

        release = settings.prefix
        desired = configmap_manifest(settings.configmap_name, namespace, result, release)
        live = await kube.get_configmap(namespace, settings.configmap_name)
        applied = needs_apply(desired, live)
        if owned_by_other(live, release):  # another release's operator: touch nothing here
            log.warning("owned_by_another_release", kind="ConfigMap", release=release_of(live))
            return Outcome(result.config_hash, False, (), 0, 0, 0, 0, {})
        if applied:
            await kube.apply(desired)
            log.info("policy_configmap_applied", namespace=namespace, hash=result.config_hash)

        plans = plan_certificates(
            settings.prefix,
            result.accepted,
            settings.secret_names(),
            excluded=result.certificate_conflicts,
        )
        existing = await kube.list_certificates(namespace, MANAGED_BY)
        certs: dict[str, dict[str, Any]] = {}
        if existing is not None:
            theirs = {c["metadata"]["name"]: c for c in existing if owned_by_other(c, release)}
            certs = {
                c["metadata"]["name"]: c for c in existing if c["metadata"]["name"] not in theirs
            }
            for cert_plan in plans:
                if cert_plan.name in theirs:
                    log.warning(
                        "owned_by_another_release",
                        kind="Certificate",
                        name=cert_plan.name,
                        release=release_of(theirs[cert_plan.name]),
                    )
                    continue
                manifest = certificate_manifest(cert_plan, namespace, release)
                certs[cert_plan.name] = await kube.apply(manifest)
            for stale in set(certs) - {p.name for p in plans}:
                await kube.delete_certificate(namespace, stale)
        elif plans:
            log.warning("certificate_crd_missing", namespace=namespace)

        effects: dict[str, Effect] | None = None
        if read_reports:
            reports = await self.reports(namespace)
            ids = [p.rule_id for p in inputs]
            effects = effects_from_reports(reports.documents, ids, self.clock(), reports.message)

        plan_by_listener = {p.listener: p for p in plans}
        now = self.clock()
        writes: list[tuple[PolicyInput, dict[str, Any] | None, tuple[Event, ...]]] = []
        admissions = {a.rule_id: a for a in result.admissions}
        for p in inputs:
            spec = p.parsed.spec
            plan = plan_by_listener.get(spec.listener.value) if spec and spec.certificate else None
            admission = admissions[p.rule_id]
            if not admission.accepted:
                plan = None
            cert_state = None
            if plan is not None:
                cert_state = certificate_state(certs.get(plan.name))
                if existing is None:
                    cert_state = CERT_MANAGER_MISSING
                conflict = result.certificate_conflicts.get(p.rule_id)
                if conflict is not None:
                    cert_state = CertificateState(False, "CertificateConflict", conflict, None)
            previous = objects[p.name].get("status") or {}
            out = policy_status(
                generation=p.generation,
                rule_id=p.rule_id,
                admission=admission,
                spec=spec,
                config_hash=result.config_hash,
                plan=plan,
                cert_state=cert_state,
                effect=effects.get(p.rule_id) if effects is not None else None,
                previous=previous,
                now=now,
            )
            if out.status != previous or out.events:
                writes.append((p, out.status if out.status != previous else None, out.events))
        await self._write(namespace, writes)
        written = sum(1 for _, status, _ in writes if status is not None)
        events = sum(len(evs) for _, _, evs in writes)
        accepted = sum(1 for a in result.admissions if a.accepted)
        outcome = Outcome(
            config_hash=result.config_hash,
            configmap_applied=applied,
            certificates=tuple(p.name for p in plans),
            statuses_written=written,
            events=events,
            accepted=accepted,
            skipped=len(result.admissions) - accepted,
            reasons=dict(Counter(a.reason.value for a in result.admissions)),
        )
        log.info("namespace_reconciled", namespace=namespace, **outcome.__dict__)
        return outcome
