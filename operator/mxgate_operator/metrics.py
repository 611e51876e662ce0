"""The operator's Prometheus metrics and the tiny HTTP listener that serves them.

Counters for reconciles and report reads by result, the time of the last successful
reconcile, and policies by admission reason (bounded enums, never names). It must not
decide anything; reconcile and handlers call the ``record_*`` helpers.
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from mxgate_operator.render.gateway_config import Reason

REGISTRY = CollectorRegistry()
RECONCILES = Counter(
    "mxgate_operator_reconciles_total",
    "Namespace reconciles by result (success, error).",
    ["result"],
    registry=REGISTRY,
)
REPORT_READS = Counter(
    "mxgate_operator_report_reads_total",
    "Gateway /report reads by result (success, failure).",
    ["result"],
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "mxgate_operator_last_successful_reconcile_timestamp_seconds",
    "Unix time of the last reconcile that completed without error.",
    registry=REGISTRY,
)
POLICIES = Gauge(
    "mxgate_operator_policies",
    "TLSPolicies by admission reason (Accepted, Overflow, Conflict, InvalidSpec, ...).",
    ["reason"],
    registry=REGISTRY,
)
for _result in ("success", "error"):
    RECONCILES.labels(_result)
for _result in ("success", "failure"):
    REPORT_READS.labels(_result)


def record_reconcile(ok: bool, reasons: dict[str, int] | None = None) -> None:
    """Count one reconcile; on success stamp the time and set the policy counts."""
    RECONCILES.labels("success" if ok else "error").inc()
    if ok:
        LAST_SUCCESS.set(time.time())
    if reasons is not None:
        for reason in Reason:
            POLICIES.labels(reason.value).set(reasons.get(reason.value, 0))


def record_report_reads(ok: int, failed: int) -> None:
    REPORT_READS.labels("success").inc(ok)
    REPORT_READS.labels("failure").inc(failed)


async def _metrics(_: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve(host: str, port: int) -> web.AppRunner:
    """Serve ``GET /metrics`` on ``host:port``; the caller cleans the runner up."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
