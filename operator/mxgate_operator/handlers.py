"""kopf handlers: every TLSPolicy or Certificate change triggers a namespace reconcile.

The only module that speaks kopf: it wires triggers (create/update/delete/resume,
Certificate events, the report timer) to ``Reconciler`` and translates KubeError
into kopf's TemporaryError. It must not render, decide or call the API itself.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from mxgate_operator.errors import KubeError
from mxgate_operator.kube import Kube
from mxgate_operator.reconcile import Reconciler
from mxgate_operator.render.certificates import MANAGED_BY
from mxgate_operator.reports import Reports, fetch_reports, report_urls
from mxgate_operator.settings import OperatorSettings

POLICY = ("mxgate.io", "v1alpha1", "tlspolicies")
CERTIFICATE = ("cert-manager.io", "v1", "certificates")
RETRY_DELAY = 5.0


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
    if not namespace:
        return
    reconciler: Reconciler = memo.reconciler
    try:
        await reconciler.reconcile(namespace, read_reports=read_reports)
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY) from exc


def register(registry: kopf.OperatorRegistry, operator_settings: OperatorSettings) -> None:
    """Register every handler into ``registry`` (the default one for the CLI)."""

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure(settings)  # kopf's own settings (kwarg name fixed by kopf)
        kube = Kube.connect(operator_settings.kubeconfig)

        async def reports(namespace: str) -> Reports:
            urls = await report_urls(kube, namespace, operator_settings)
            return await fetch_reports(urls, operator_settings.report_timeout)

        memo.kube = kube
        memo.reconciler = Reconciler(kube, operator_settings, reports)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        kube: Kube | None = getattr(memo, "kube", None)
        if kube is not None:
            await kube.__aexit__(None, None, None)

    @kopf.on.resume(*POLICY, registry=registry)
    @kopf.on.create(*POLICY, registry=registry)
    @kopf.on.update(*POLICY, registry=registry)
    async def policy_changed(namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
        await _run(memo, namespace)

    @kopf.on.delete(*POLICY, registry=registry, optional=True)
    async def policy_deleted(namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
        await _run(memo, namespace)

    @kopf.timer(
        *POLICY,
        registry=registry,
        interval=operator_settings.report_interval,
        initial_delay=min(operator_settings.report_interval, 10.0),
    )
    async def observe(namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
        if namespace and memo.reconciler.reports_due(namespace):
            await _run(memo, namespace, read_reports=True)

    @kopf.on.event(*CERTIFICATE, registry=registry, labels=dict(MANAGED_BY))
    async def certificate_changed(
        namespace: str | None, memo: kopf.Memo, type: str | None, **_: Any
    ) -> None:
        if type is not None:  # None is the initial listing; resume handlers cover it
            await _run(memo, namespace)
