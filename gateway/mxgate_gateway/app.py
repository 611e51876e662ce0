"""The composition root: builds a gateway from a config snapshot and runs it.

Enters the long-lived components (HTTP, SMTP listener) through an
``AsyncExitStack``, runs background loops in a ``TaskGroup``, and installs
signal handlers. Shutdown: readiness off, stop accepting, drain, close. It
must not contain protocol or policy logic.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import ssl
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

from mxgate_gateway.config.model import Config
from mxgate_gateway.config.store import ConfigStore
from mxgate_gateway.http.app import HTTPServer, ReportSnapshot, build_app, build_public_app
from mxgate_gateway.http.guard import RateLimitedLog
from mxgate_gateway.http.health import Health
from mxgate_gateway.logs import get_logger
from mxgate_gateway.metrics import GatewayMetrics
from mxgate_gateway.mtasts.http import add_routes as add_mtasts_routes
from mxgate_gateway.mtasts.http import with_tlsrpt
from mxgate_gateway.mtasts.metrics import TLSRPTRecorder
from mxgate_gateway.report import LossReport
from mxgate_gateway.settings import Tuning
from mxgate_gateway.smtp.handler import EdgeHandler
from mxgate_gateway.smtp.listener import SMTPListener
from mxgate_gateway.tls.contexts import TLSMaterialError, server_context

log = get_logger("mxgate.app")

Background = Callable[["Gateway"], Coroutine[Any, Any, None]]


class Gateway:
    """One running gateway: SMTP listener + HTTP endpoints over one config store."""

    def __init__(
        self,
        config: Config | ConfigStore,
        *,
        report: LossReport | None = None,
        report_snapshot: ReportSnapshot | None = None,
        tuning: Tuning | None = None,
    ) -> None:
        self.store = config if isinstance(config, ConfigStore) else ConfigStore(config)
        self.metrics = GatewayMetrics()
        self.health = Health()
        self.report = report if report is not None else LossReport()
        tuning = tuning if tuning is not None else Tuning.from_env()
        self.handler = EdgeHandler(self.metrics, self.report, upstream_pool=tuning.upstream_pool)
        self.tlsrpt = TLSRPTRecorder(self.metrics.registry)  # MTA-STS / TLS-RPT (issue 8)
        self.report_snapshot = with_tlsrpt(report_snapshot or self.report.snapshot, self.tlsrpt)
        self.tls_context: ssl.SSLContext | None = None
        self.background: list[Background] = []
        self._stack = AsyncExitStack()
        self.smtp: SMTPListener | None = None
        self.http: HTTPServer | None = None  # admin: health, metrics, report
        self.public_http: HTTPServer | None = None  # MTA-STS + TLS-RPT, if listen.public

    @property
    def config(self) -> Config:
        return self.store.current

    @property
    def smtp_port(self) -> int:
        assert self.smtp is not None
        return self.smtp.port

    @property
    def http_port(self) -> int:
        """The admin listener's port."""
        assert self.http is not None
        return self.http.port

    @property
    def public_port(self) -> int | None:
        """The public listener's port; None without ``listen.public`` (admin serves it)."""
        return None if self.public_http is None else self.public_http.port

    async def __aenter__(self) -> Gateway:
        cfg = self.store.current
        self.health.set("config", True, f"generation {self.store.generation}")
        self.metrics.config_generation.set(self.store.generation)
        self.handler.signals.configured(frozenset(u.address for u in cfg.upstreams))
        if cfg.tls is not None:
            try:
                self.tls_context = server_context(cfg.tls)
                self.health.set("tls", True, "loaded")
            except TLSMaterialError as exc:  # not written yet (cert-manager): start unready
                log.warning("tls_material_missing", error=str(exc))
                # /readyz: no paths or OpenSSL text (issue 12.10); the log has them.
                self.health.set(
                    "tls", False, "waiting for a usable pair (see the tls_material_missing log)"
                )
        try:
            admin = build_app(self.health, self.metrics, self.report_snapshot)
            public = admin if cfg.listen.public is None else build_public_app()
            add_mtasts_routes(public, lambda: self.store.current.mta_sts, self.tlsrpt)
            limits = lambda: self.store.current.limits  # noqa: E731 - read per connection
            refused = RateLimitedLog("http_connections_refused")  # one line per interval
            self.http = await self._stack.enter_async_context(
                HTTPServer(cfg.listen.http, admin, name="admin", limits=limits, refused_log=refused)
            )
            if cfg.listen.public is not None:
                self.public_http = await self._stack.enter_async_context(
                    HTTPServer(
                        cfg.listen.public, public, name="public", limits=limits, refused_log=refused
                    )
                )
            self.smtp = await self._stack.enter_async_context(
                SMTPListener(cfg.listen.smtp, self.store, self.handler, lambda: self.tls_context)
            )
        except BaseException:
            await self._stack.aclose()
            raise
        self.health.set("smtp_listener", True, f"bound port {self.smtp.port}")
        log.info(
            "gateway_started",
            smtp_port=self.smtp.port,
            http_port=self.http.port,
            public_port=self.public_port,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def shutdown(self) -> None:
        """Readiness off at once, stop accepting, drain up to the deadline, close."""
        self.health.draining = True
        if self.smtp is not None:
            self.smtp.stop_accepting()
            self.health.set("smtp_listener", False, "draining")
            await self.smtp.close(self.store.current.limits.drain_timeout)
        if self.handler.pool is not None:
            await self.handler.pool.close()  # QUIT the idle upstream sessions
        await self._stack.aclose()
        log.info("gateway_stopped")

    async def serve(self, stop: asyncio.Event) -> None:
        """Run background loops until ``stop`` is set, then shut down."""
        async with self, asyncio.TaskGroup() as tasks:
            for loop_fn in self.background:
                tasks.create_task(_supervised(loop_fn, self))
            await stop.wait()
            raise _StopRequestedError  # cancels the background loops; then ``self`` shuts down


class _StopRequestedError(Exception):
    """Raised inside the TaskGroup to cancel background loops on shutdown."""


BACKGROUND_RETRY = 1.0


async def _supervised(loop_fn: Background, gateway: Gateway) -> None:
    """Run a background loop; an error (e.g. EMFILE in a flood) is logged and the loop
    restarted after a pause, never allowed to end the process (issue 12.5)."""
    failures = RateLimitedLog("background_task_failed")
    while True:
        try:
            await loop_fn(gateway)
            return
        except Exception as exc:  # noqa: BLE001 - serving SMTP matters more than any loop
            failures.hit(task=getattr(loop_fn, "__name__", "?"), error=f"{type(exc).__name__}")
            await asyncio.sleep(BACKGROUND_RETRY)


_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def _exception_handler(
    out_of_descriptors: RateLimitedLog,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """asyncio already pauses accept() for a second on EMFILE; log that once per interval
    instead of once per attempt, and pass everything else to the default handler."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRORS:
            out_of_descriptors.hit(error=errno.errorcode.get(exc.errno or 0, "?"))
            return
        loop.default_exception_handler(context)

    return handle


async def run(gateway: Gateway) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        gateway.health.draining = True  # readiness goes false at once, before any await
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    loop.set_exception_handler(_exception_handler(RateLimitedLog("accept_out_of_resources")))
    try:
        await gateway.serve(stop)
    except* _StopRequestedError:
        pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
