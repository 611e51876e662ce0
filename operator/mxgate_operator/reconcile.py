"""Reconcile one namespace: all TLSPolicies → ConfigMap, Certificates, status, events.

The only place that sequences I/O: read (policies, Certificates, reports), render
(pure), then write only what changed. Idempotent and serialised per namespace; it
must not speak kopf (handlers translate errors) or build manifests itself.

Scale (issue 18): event-driven reconciles read policies from the watch-fed
``PolicyCache`` (the report pass re-LISTs: a resync), a burst of events is coalesced
into one render (debounced: it starts once events pause for ``settle`` seconds, at most
``max_delay`` after the first), and statuses are written before events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from mxgate_operator import metrics
from mxgate_operator.cache import PolicyCache
from mxgate_operator.render.certificates import (
    MANAGED_BY,
    CertificatePlan,
    CertificateState,
    certificate_manifest,
    certificate_state,
    owned_by_other,
    plan_certificates,
    release_of,
)
from mxgate_operator.render.configmap import configmap_manifest, needs_apply
from mxgate_operator.render.floors import FloorsResult
from mxgate_operator.render.gateway_config import PolicyInput, RenderResult, render_policies
from mxgate_operator.render.status import Effect, Event, effects_from_reports, policy_status
from mxgate_operator.reports import Reports
from mxgate_operator.settings import OperatorSettings
from mxgate_operator.spec import parse_policy

log = structlog.get_logger("mxgate_operator.reconcile")
WRITE_CONCURRENCY = 16  # status/event requests in flight per reconcile
SETTLE_SECONDS = 0.25  # an event-driven render waits for the events to pause this long...
MAX_DELAY_SECONDS = 1.0  # ...but never longer than this after the first event
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
    ) -> str | None: ...
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


@dataclass(frozen=True)
class Staged:
    """What one render produced, for the status stage."""

    objects: dict[str, dict[str, Any]]
    inputs: list[PolicyInput]
    result: RenderResult
    configmap_applied: bool
    plans: tuple[CertificatePlan, ...]
    certs: dict[str, dict[str, Any]]
    existing: list[dict[str, Any]] | None
    effects: dict[str, Effect] | None


class Reconciler:
    """Namespace-wide reconciliation, serialised per namespace."""

    def __init__(
        self,
        kube: KubeAPI,
        settings: OperatorSettings,
        reports: ReportSource,
        clock: Callable[[], str] = utcnow,
        floors: Callable[[], Awaitable[FloorsResult]] | None = None,
        *,
        cache: PolicyCache | None = None,
        settle: float = 0.0,
        max_delay: float = MAX_DELAY_SECONDS,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.reports = reports
        self.clock = clock
        self.floors = floors  # ClusterTLSPolicy floors for every document (cluster.py)
        self.cache = cache
        self.settle = settle
        self.max_delay = max_delay
        self._locks: dict[str, asyncio.Lock] = {}
        self._write_locks: dict[str, asyncio.Lock] = {}
        self._queued: dict[str, asyncio.Task[Outcome]] = {}
        self._last_trigger: dict[str, float] = {}
        self._parsed: dict[str, dict[str, PolicyInput]] = {}
        self._last_read: dict[str, tuple[Reports, str]] = {}  # namespace -> (reports, when)

    async def reconcile(self, namespace: str, *, read_reports: bool = False) -> Outcome:
        """Reconcile ``namespace``; callers that arrive while one is still queued share it.

        A queued run has not read anything yet, so its result covers every change made
        before it starts: N events at operator start cost about two reconciles, not N.
        With ``settle`` > 0 a queued run also waits until triggers pause (a burst of
        creates is one ConfigMap write, not one per policy).
        """
        if read_reports:
            return await self._locked(namespace, read_reports=True)
        self._last_trigger[namespace] = asyncio.get_running_loop().time()
        queued = self._queued.get(namespace)
        if queued is None:
            queued = asyncio.create_task(self._debounced(namespace))
            self._queued[namespace] = queued
        return await asyncio.shield(queued)

    async def _debounced(self, namespace: str) -> Outcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_delay
        while self.settle > 0:
            pause = min(self._last_trigger[namespace] + self.settle, deadline) - loop.time()
            if pause <= 0:
                break
            await asyncio.sleep(pause)
        return await self._locked(namespace, read_reports=False)

    async def _locked(self, namespace: str, *, read_reports: bool) -> Outcome:
        """Render under the namespace's render lock, then write statuses and events under
        its write lock: the next render (an edit) does not wait for this one's status
        writes (1,000 of them at a cold start), and status writes stay in render order."""
        try:
            async with self._locks.setdefault(namespace, asyncio.Lock()):
                if not read_reports:
                    self._queued.pop(namespace, None)  # started: later callers queue anew
                staged = await self._render(namespace, read_reports=read_reports)
            if isinstance(staged, Outcome):
                outcome = staged
            else:
                async with self._write_locks.setdefault(namespace, asyncio.Lock()):
                    outcome = await self._statuses(namespace, staged)
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
        """Every status first, then the events; up to WRITE_CONCURRENCY requests at once.

        Statuses are what converges (a cold start with 1,000 new policies is 1,000 status
        writes and 1,000 Ready events): the events no longer hold them up. A status
        written is remembered in the cache, so a render before its watch event comes
        back does not write it again.
        """
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def status(p: PolicyInput, body: dict[str, Any]) -> None:
            async with gate:
                version = await self.kube.apply_policy_status(namespace, p.name, body)
            if self.cache is not None:
                self.cache.record_status(namespace, p.name, p.uid, body, version)

        async def event(p: PolicyInput, ev: Event) -> None:
            async with gate:
                await self.kube.post_event(
                    namespace, p.name, p.uid, type_=ev.type, reason=ev.reason, message=ev.message
                )

        for batch in (
            [status(p, body) for p, body, _ in writes if body is not None],
            [event(p, ev) for p, _, evs in writes for ev in evs],
        ):
            results = await asyncio.gather(*batch, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]

    def _inputs(self, namespace: str, objects: Iterable[Mapping[str, Any]]) -> list[PolicyInput]:
        """Parsed policies; a spec is parsed once per (uid, generation), not once per render
        (a burst renders 1,000 policies several times)."""
        known = self._parsed.get(namespace, {})
        fresh: dict[str, PolicyInput] = {}
        for obj in objects:
            meta = obj.get("metadata") or {}
            hit = known.get(str(meta.get("name", "")))
            same = hit is not None and (hit.uid, hit.generation, hit.created) == (
                str(meta.get("uid", "")),
                int(meta.get("generation") or 0),
                str(meta.get("creationTimestamp") or ""),
            )
            p = hit if same and hit is not None else _to_input(namespace, obj)
            fresh[p.name] = p
        self._parsed[namespace] = fresh
        return list(fresh.values())

    async def _policies(self, namespace: str, *, resync: bool) -> list[dict[str, Any]]:
        """From the cache (seeded by a LIST first; re-LISTed when ``resync``), else the API."""
        if self.cache is None:
            return await self.kube.list_policies(namespace)
        if resync or not self.cache.seeded(namespace):
            await self.cache.sync(namespace, self.kube.list_policies)
        return self.cache.policies(namespace)

    async def _render(self, namespace: str, *, read_reports: bool) -> Staged | Outcome:
        """Read, render, apply the ConfigMap and Certificates, read reports: all but status."""
        kube, settings = self.kube, self.settings
        listed = await self._policies(namespace, resync=read_reports)
        objects = {o["metadata"]["name"]: o for o in listed}
        inputs = self._inputs(namespace, objects.values())
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
            reports, read_at = await self.reports(namespace), self.clock()
            self._last_read[namespace] = (reports, read_at)
            ids = [p.rule_id for p in inputs]
            effects = effects_from_reports(reports.documents, ids, read_at, reports.message)

        return Staged(objects, inputs, result, applied, plans, certs, existing, effects)

    def _previous(self, namespace: str, p: PolicyInput, staged: Staged) -> dict[str, Any] | None:
        """The policy's status as stored now; None if it was deleted or edited since the
        render (the reconcile its event queued writes that one)."""
        if self.cache is None:
            return staged.objects[p.name].get("status") or {}
        body = self.cache.get(namespace, p.name)
        meta = (body or {}).get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        if body is None or meta.get("uid") != p.uid or generation != p.generation:
            return None
        return body.get("status") or {}

    def _first_effect(
        self, namespace: str, rule_id: str, previous: Mapping[str, Any]
    ) -> Effect | None:
        """A new policy's observed effect between report passes: the last reports read,
        stated as of when they were read (a rule they predate counts 0). Without it the
        next report pass would write every new status a second time just to add it."""
        last = self._last_read.get(namespace)
        if last is None or previous.get("observed"):
            return None  # keep what is there until the next report pass
        reports, read_at = last
        return effects_from_reports(reports.documents, [rule_id], read_at, reports.message)[rule_id]

    async def _statuses(self, namespace: str, staged: Staged) -> Outcome:
        """Statuses and events for what ``_render`` rendered, against the status stored now
        (an earlier reconcile's writes included), writing only what changed."""
        inputs, result, plans, certs = staged.inputs, staged.result, staged.plans, staged.certs
        existing, effects = staged.existing, staged.effects
        plan_by_listener = {p.listener: p for p in plans}
        now = self.clock()
        writes: list[tuple[PolicyInput, dict[str, Any] | None, tuple[Event, ...]]] = []
        admissions = {a.rule_id: a for a in result.admissions}
        for p in inputs:
            previous = self._previous(namespace, p, staged)
            if previous is None:
                continue
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
            out = policy_status(
                generation=p.generation,
                rule_id=p.rule_id,
                admission=admission,
                spec=spec,
                config_hash=result.config_hash,
                plan=plan,
                cert_state=cert_state,
                effect=(
                    effects.get(p.rule_id)
                    if effects is not None
                    else self._first_effect(namespace, p.rule_id, previous)
                ),
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
            configmap_applied=staged.configmap_applied,
            certificates=tuple(p.name for p in plans),
            statuses_written=written,
            events=events,
            accepted=accepted,
            skipped=len(result.admissions) - accepted,
            reasons=dict(Counter(a.reason.value for a in result.admissions)),
        )
        log.info("namespace_reconciled", namespace=namespace, **outcome.__dict__)
        return outcome
