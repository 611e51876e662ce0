"""aiohttp routes: ``GET /.well-known/mta-sts.txt`` by Host, and ``POST /tlsrpt``.

Serves each configured domain's RFC 8461 policy to ``mta-sts.<domain>`` and takes in
RFC 8460 §5.3 reports, bounded in size before and after gunzip. It must not parse or
render itself (``policy``/``tlsrpt`` do), never log report contents, and never raise
to aiohttp on bad input: every outcome is a status code and a counter.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import hdrs, web

from mxgate_gateway.config.model import MTASTS, MTASTSPolicy
from mxgate_gateway.mtasts.metrics import TLSRPTRecorder
from mxgate_gateway.mtasts.policy import POLICY_PATH, render_policy
from mxgate_gateway.mtasts.quota import SourceQuota, source_of
from mxgate_gateway.mtasts.summary import organization_key
from mxgate_gateway.mtasts.tlsrpt import (
    ErrorKind,
    Report,
    ReportError,
    parse_report,
    report_sessions,
)
from mxgate_gateway.report.document import ReportDocument

__all__ = [
    "GZIP",
    "JSON",
    "TLSRPT_PATH",
    "MTASTSSource",
    "add_routes",
    "policy_for_host",
    "with_tlsrpt",
]

TLSRPT_PATH = "/tlsrpt"
GZIP = "application/tlsrpt+gzip"
JSON = "application/tlsrpt+json"
_READ_CHUNK = 65_536

MTASTSSource = Callable[[], MTASTS | None]
"""Returns the ``mta_sts`` section of the current config snapshot (None: not configured)."""


def _log() -> Any:
    """Looked up per event, so log capture in tests sees it even after caching loggers."""
    return structlog.get_logger("mxgate.mtasts")


def policy_for_host(section: MTASTS | None, host_header: str | None) -> MTASTSPolicy | None:
    """The policy ``Host: mta-sts.<domain>[:port]`` asks for, or None (→ 404)."""
    if section is None or not host_header:
        return None
    host = host_header.strip().lower()
    if host.startswith("["):
        return None
    name, _, port = host.rpartition(":")
    if name and port.isdigit():
        host = name
    host = host.removesuffix(".")
    if not host.startswith("mta-sts."):
        return None
    domain = host.removeprefix("mta-sts.")
    return next((p for p in section.policies if p.domain == domain), None)


def add_routes(app: web.Application, section: MTASTSSource, recorder: TLSRPTRecorder) -> None:
    """Register the MTA-STS policy route and the TLS-RPT intake route on ``app``."""
    app.router.add_get(POLICY_PATH, functools.partial(_policy_view, section, recorder))
    quota = SourceQuota()
    app.router.add_post(TLSRPT_PATH, functools.partial(_tlsrpt_view, section, recorder, quota))


async def _policy_view(
    section: MTASTSSource, recorder: TLSRPTRecorder, request: web.Request
) -> web.Response:
    policy = policy_for_host(section(), request.headers.get(hdrs.HOST))
    recorder.policy_request(policy is not None)
    if policy is None:
        return web.Response(status=404, text="no MTA-STS policy for this host\n")
    return web.Response(text=render_policy(policy), content_type="text/plain", charset="utf-8")


async def _tlsrpt_view(
    section: MTASTSSource, recorder: TLSRPTRecorder, quota: SourceQuota, request: web.Request
) -> web.Response:
    current = section()
    settings = current.tlsrpt if current is not None else None
    if settings is None or not settings.enabled:
        recorder.other_outcome("disabled")
        return _error(404, "disabled")
    ctype = request.content_type.lower()
    encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    if ctype not in (GZIP, JSON) or encoding != "identity":
        recorder.other_outcome("unsupported_media_type")
        _log().info("tlsrpt_report_rejected", reason="unsupported_media_type")
        return _error(415, "unsupported_media_type")
    limit = settings.max_compressed_bytes
    body = await _read_capped(request, limit)
    if body is None:
        return _refuse(recorder, ReportError(ErrorKind.TOO_LARGE, "(body)", f"over {limit} bytes"))
    result = await asyncio.to_thread(
        parse_report,
        body,
        gzipped=ctype == GZIP,
        max_decompressed=settings.max_decompressed_bytes,
    )
    if isinstance(result, ReportError):
        return _refuse(recorder, result)
    source = source_of(
        request.remote, request.headers.get("X-Forwarded-For"), settings.trusted_proxies
    )
    if not quota.admit(
        source,
        report_sessions(result),
        max_reports=settings.max_reports_per_source,
        max_sessions=settings.max_sessions_per_source,
        interval=settings.source_interval,
    ):
        return _refuse(recorder, ReportError(ErrorKind.OVER_QUOTA, "(source)", "over quota"))
    return _accept(recorder, result)


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(recorder: TLSRPTRecorder, error: ReportError) -> web.Response:
    recorder.refused(error.kind)
    _log().info("tlsrpt_report_rejected", reason=error.kind.value, field=error.path)
    status = {ErrorKind.TOO_LARGE: 413, ErrorKind.OVER_QUOTA: 429}.get(error.kind, 400)
    # A schema field path ("policies[0].summary") helps the sender; "(body)" and the
    # message (exception text from zlib/json) stay out of a public answer (issue 12.10).
    field = None if error.path.startswith("(") else error.path
    return _error(status, error.kind.value, field=field)


def _accept(recorder: TLSRPTRecorder, report: Report) -> web.Response:
    fresh = recorder.accepted(report)
    _log().info(
        "tlsrpt_report_accepted" if fresh else "tlsrpt_report_duplicate",
        organization=organization_key(report.organization_name),
        policies=len(report.policies),
        successful=sum(p.successful_sessions for p in report.policies),
        failed=sum(p.failed_sessions for p in report.policies),
    )
    return web.json_response({"status": "accepted" if fresh else "duplicate"}, status=200)


def _error(status: int, error: str, field: str | None = None) -> web.Response:
    """A public error body: the bounded error kind and, for schema errors, the field."""
    body: dict[str, str] = {"error": error}
    if field is not None:
        body["field"] = field[:200]
    return web.json_response(body, status=status)


def with_tlsrpt(
    snapshot: Callable[[], ReportDocument] | None, recorder: TLSRPTRecorder
) -> Callable[[], ReportDocument] | None:
    """Wrap a ``/report`` snapshot so its document also carries the ``tlsrpt`` section."""
    if snapshot is None:
        return None
    inner = snapshot

    def report() -> ReportDocument:
        return inner().with_tlsrpt(recorder.summary.as_dict())

    return report
