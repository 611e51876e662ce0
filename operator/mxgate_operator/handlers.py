"""kopf handlers: every TLSPolicy, ClusterTLSPolicy or Certificate change triggers a reconcile.

The only module that speaks kopf: it wires triggers (TLSPolicy and Certificate watch
events, the report loop) to ``Reconciler`` and translates KubeError
into a logged retry (kopf does not retry event handlers). It must not render, decide or
call the API itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Coroutine, Mapping
from typing import Any

import kopf
import structlog

from mxgate_operator import metrics
from mxgate_operator.cache import PolicyCache
from mxgate_operator.cluster import ClusterFloors
from mxgate_operator.errors import KubeError
from mxgate_operator.kube import Kube
from mxgate_operator.logs import configure_logging
from mxgate_operator.reconcile import SETTLE_SECONDS, Reconciler, utcnow
from mxgate_operator.render.certificates import MANAGED_BY
from mxgate_operator.reports import ReportPass, Reports, fetch_reports, report_urls
from mxgate_operator.settings import OperatorSettings

POLICY = ("mxgate.io", "v1alpha1", "tlspolicies")
CLUSTER_POLICY = ("mxgate.io", "v1alpha1", "clustertlspolicies")
CERTIFICATE = ("cert-manager.io", "v1", "certificates")
RETRY_DELAY = 5.0
LEASE_SECONDS = 15
log = structlog.get_logger("mxgate_operator.handlers")


def configure(kopf_settings: kopf.OperatorSettings) -> None:
    """Namespaced, no cluster scanning, no kopf bookkeeping in our status."""
    kopf_settings.scanning.disabled = True
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="mxgate.io")
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="mxgate.io", key="last-handled-configuration"
    )
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.watching.server_timeout = 300


async def _run(memo: Any, namespace: str | None, *, read_reports: bool = False) -> None:
    if not namespace or not memo.leader.is_set():
        return  # not the leader: the leader reconciles; we catch up when elected
    reconciler: Reconciler = memo.reconciler
    try:
        await reconciler.reconcile(namespace, read_reports=read_reports)
    except KubeError as exc:
        # kopf does not retry event handlers: retry here, once per failure, after a pause.
        log.warning("reconcile_failed", namespace=namespace, error=str(exc), retry_in=RETRY_DELAY)
        _spawn(memo, _catch_up(memo, namespace, delay=RETRY_DELAY))


def _spawn(memo: Any, coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(coro)
    memo.catch_up.add(task)
    task.add_done_callback(memo.catch_up.discard)


def needs_reconcile(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """Whether a TLSPolicy watch event can change what is rendered.

    Our own status writes come back as MODIFIED events with an unchanged generation
    (status is a subresource): those are skipped, everything else reconciles, including
    the initial listing (``None``) and DELETED, which kopf's on.delete only sees with a
    finalizer.
    """
    if event_type != "MODIFIED":
        return True
    generation = (body.get("metadata") or {}).get("generation")
    observed = (body.get("status") or {}).get("observedGeneration")
    return bool(generation is None or generation != observed)


async def observe(memo: Any) -> None:
    """Every report interval, reconcile each namespace that has policies, reading /report.

    One operator-level loop rather than a kopf timer: kopf timers put a finalizer on
    every TLSPolicy, which would block deleting policies while the operator is down.
    The first pass runs at once for the home namespace (``MXGATE_NAMESPACE``), so a
    namespace without any TLSPolicy still gets its (empty) policy ConfigMap and the
    gateway, which mounts it, can start.
    """
    reconciler: Reconciler = memo.reconciler
    while True:
        await memo.leader.wait()
        namespaces = sorted(memo.namespaces)
        for namespace in namespaces:
            try:
                await reconciler.reconcile(namespace, read_reports=True)
            except Exception as exc:  # noqa: BLE001 - the loop outlives any one failed pass
                log.warning("report_reconcile_failed", namespace=namespace, error=repr(exc))
        # The floors are in every namespace's document: their counts are this pass's
        # reports summed, so their status is written once every namespace was read.
        await _cluster_status(memo, memo.report_pass.take(namespaces))
        await asyncio.sleep(reconciler.settings.report_interval)


async def _cluster_status(memo: Any, reads: Mapping[str, Reports | None] | None = None) -> None:
    """Write the ClusterTLSPolicies' status (leader only); a failure waits for the next try.

    ``reads`` (a report pass's) refreshes their observed counts; None keeps them.
    """
    if not memo.leader.is_set():
        return
    try:
        await memo.cluster.write_status(reads)
    except Exception as exc:  # noqa: BLE001 - the next event or report pass retries
        log.warning("cluster_status_failed", error=repr(exc))


def publishes_mta_sts(body: Mapping[str, Any] | None) -> bool:
    """Whether a TLSPolicy body asks to publish MTA-STS (a claim a floor may contest)."""
    return bool(body and (body.get("spec") or {}).get("mtaSts"))


def refresh_cluster_status(memo: Any) -> None:
    """Write the ClusterTLSPolicies' status soon, once for a burst of calls.

    A TLSPolicy that starts or stops claiming an MTA-STS domain changes the message of the
    floor publishing it ("TLSPolicy ... also claimed its domains"): shown within seconds,
    not at the next report pass. One writer runs at a time; a call while it runs makes it
    run once more, so the last claim is always seen.
    """
    memo.cluster_dirty = True
    task: asyncio.Task[None] | None = getattr(memo, "cluster_refresh", None)
    if task is None or task.done():
        memo.cluster_refresh = asyncio.create_task(_refresh_cluster(memo))
        memo.catch_up.add(memo.cluster_refresh)
        memo.cluster_refresh.add_done_callback(memo.catch_up.discard)


async def _refresh_cluster(memo: Any) -> None:
    while memo.cluster_dirty:
        memo.cluster_dirty = False
        await asyncio.sleep(SETTLE_SECONDS)
        await _cluster_status(memo)


async def _catch_up(memo: Any, namespace: str, delay: float = 0.0) -> None:
    await asyncio.sleep(delay)
    if not memo.leader.is_set():
        return
    try:
        await memo.reconciler.reconcile(namespace)
    except KubeError as exc:
        log.warning("reconcile_failed", namespace=namespace, error=str(exc), retry_in=RETRY_DELAY)
        _spawn(memo, _catch_up(memo, namespace, delay=RETRY_DELAY))
    except Exception as exc:  # noqa: BLE001 - the next event or report pass retries
        log.warning("catch_up_failed", namespace=namespace, error=repr(exc))


async def lead(memo: Any, kube: Kube, settings: OperatorSettings, identity: str) -> None:
    """Hold the release's Lease (``<prefix>-operator`` in the home namespace); only the
    holder reconciles, so a second operator of the same release never fights the first.

    On election it reconciles every known namespace (events dropped meanwhile included).
    """
    name = f"{settings.prefix}-operator"
    while True:
        try:
            held = await kube.hold_lease(settings.namespace, name, identity, LEASE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - unknown means not leading
            log.warning("lease_failed", lease=name, error=repr(exc))
            held = False
        if held and not memo.leader.is_set():
            log.info("leader_elected", lease=name, identity=identity)
            memo.leader.set()
            for namespace in sorted(memo.namespaces):
                _spawn(memo, _catch_up(memo, namespace))
        elif not held and memo.leader.is_set():
            log.warning("leadership_lost", lease=name, identity=identity)
            memo.leader.clear()
        await asyncio.sleep(LEASE_SECONDS / 3)


def register(registry: kopf.OperatorRegistry, operator_settings: OperatorSettings) -> None:
    """Register every handler into ``registry`` (the default one for the CLI)."""

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure(settings)  # kopf's own settings (kwarg name fixed by kopf)
        configure_logging("console" if operator_settings.log_format == "console" else "json")
        if open_lists := operator_settings.unrestricted():
            log.warning("allowlists_unset", settings=list(open_lists), effect="any value accepted")
        if operator_settings.metrics_address:
            host, _sep, port = operator_settings.metrics_address.rpartition(":")
            memo.metrics = await metrics.serve(host.strip("[]") or "0.0.0.0", int(port))  # noqa: S104
        kube = Kube.connect(operator_settings.kubeconfig)

        async def reports(namespace: str) -> Reports:
            urls = await report_urls(kube, namespace, operator_settings)
            read = await fetch_reports(urls, operator_settings.report_timeout)
            metrics.record_report_reads(len(read.documents), len(read.failures))
            return read

        memo.kube = kube
        memo.cluster = ClusterFloors(
            kube, operator_settings, utcnow, namespaces=lambda: memo.namespaces
        )
        memo.cache = PolicyCache()
        memo.report_pass = ReportPass(reports)  # what each pass read, for the floors
        memo.reconciler = Reconciler(
            kube,
            operator_settings,
            memo.report_pass,
            floors=memo.cluster.floors,
            cache=memo.cache,
            settle=SETTLE_SECONDS,
        )
        memo.namespaces = {operator_settings.namespace} if operator_settings.namespace else set()
        memo.leader = asyncio.Event()
        memo.catch_up = set()
        if operator_settings.namespace:
            identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            memo.lease = asyncio.create_task(
                lead(memo, kube, operator_settings, identity), name="mxgate-lease"
            )
        else:
            memo.leader.set()  # no home namespace: nowhere to keep a Lease
            log.warning("no_leader_election", reason="no home namespace (MXGATE_NAMESPACE, -n)")
        memo.observer = asyncio.create_task(observe(memo), name="mxgate-report-observer")

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        for pending in list(getattr(memo, "catch_up", ())):
            pending.cancel()
        for task_name in ("lease", "observer"):
            task: asyncio.Task[None] | None = getattr(memo, task_name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        runner = getattr(memo, "metrics", None)
        if runner is not None:
            await runner.cleanup()
        kube: Kube | None = getattr(memo, "kube", None)
        if kube is not None:
            await kube.__aexit__(None, None, None)

    @kopf.on.event(*POLICY, registry=registry)
    async def policy_event(
        namespace: str | None,
        memo: kopf.Memo,
        type: str | None,
        body: kopf.Body,
        **_: Any,
    ) -> None:
        """Watch-driven: every add, edit and delete reconciles at once, without finalizers.

        Every event (our own status writes too, and while not leading) feeds the cache
        the reconciler renders from.
        """
        name = str((body.get("metadata") or {}).get("name", ""))
        before = memo.cache.get(namespace or "", name)
        memo.cache.observe(type, body)
        if not needs_reconcile(type, body):
            return
        if namespace:
            memo.namespaces.add(namespace)
        await _run(memo, namespace)
        if operator_settings.cluster_policies and (
            publishes_mta_sts(body) or publishes_mta_sts(before)
        ):
            refresh_cluster_status(memo)

    if operator_settings.cluster_policies:

        @kopf.on.event(*CLUSTER_POLICY, registry=registry)
        async def cluster_policy_event(
            memo: kopf.Memo, type: str | None, body: kopf.Body, **_: Any
        ) -> None:
            """A floor changed: every namespace's document is rendered again, then the
            ClusterTLSPolicies' status is written (watch-driven, no finalizers)."""
            if not needs_reconcile(type, body):
                return
            for namespace in sorted(memo.namespaces):
                await _run(memo, namespace)
            await _cluster_status(memo)

    @kopf.on.event(*CERTIFICATE, registry=registry, labels=dict(MANAGED_BY))
    async def certificate_changed(
        namespace: str | None, memo: kopf.Memo, type: str | None, **_: Any
    ) -> None:
        if type is not None:  # None is the initial listing; resume handlers cover it
            await _run(memo, namespace)
