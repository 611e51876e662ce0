"""The live server TLS context: built from tls.cert/tls.key, rebuilt when they change.

Each new session takes ``reloader.context`` when it starts, so new STARTTLS sessions
get a rotated certificate while running ones keep the context they started with. A
broken or mismatched pair is refused and the last good context keeps serving. This
module must not log, and never reads or exposes the key beyond ``load_cert_chain``.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mxgate_gateway.config.model import TLS
from mxgate_gateway.config.watcher import FileWatcher, ReloadResult, WatchStatus
from mxgate_gateway.tls.contexts import require_regular_files, server_context


@dataclass(frozen=True, slots=True)
class TLSMaterial:
    """One loaded certificate: the server context and the leaf's validity end."""

    context: ssl.SSLContext
    not_after: float  # seconds since the epoch
    subject: str


def certificate_not_after(cert_pem: bytes) -> tuple[float, str]:
    """The first (leaf) certificate's not-after (epoch seconds) and subject (pure)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.not_valid_after_utc.timestamp(), cert.subject.rfc4514_string()


def load_material(tls: TLS) -> TLSMaterial:
    """Read and check the pair; raise (TLSMaterialError, OSError, ValueError) if unusable."""
    require_regular_files(tls)  # before any read: a FIFO would block forever
    not_after, subject = certificate_not_after(Path(tls.cert).read_bytes())
    return TLSMaterial(server_context(tls), not_after, subject)


class TLSReloader:
    """Holds the current TLS material and a watcher that replaces it on change.

    Construction loads the pair once and raises if it is unusable (start-up must fail
    loudly); later failures only show in ``status`` and the ``on_result`` callback.
    """

    def __init__(
        self,
        tls: TLS,
        *,
        interval: float = 1.0,
        on_result: Callable[[ReloadResult, str | None], None] | None = None,
        on_material: Callable[[TLSMaterial], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tls = tls
        self._material = load_material(tls)
        self._on_material = on_material
        if on_material is not None:
            on_material(self._material)
        self._watcher: FileWatcher[TLSMaterial] = FileWatcher(
            paths=(Path(tls.cert), Path(tls.key)),
            load=lambda: load_material(self._tls),
            apply=self._apply,
            interval=interval,
            on_result=on_result,
            clock=clock,
        )

    @property
    def context(self) -> ssl.SSLContext:
        """The context a session starting now should use."""
        return self._material.context

    @property
    def material(self) -> TLSMaterial:
        return self._material

    @property
    def status(self) -> WatchStatus:
        return self._watcher.status

    def _apply(self, material: TLSMaterial) -> None:
        self._material = material
        if self._on_material is not None:
            self._on_material(material)

    async def poll_once(self) -> ReloadResult | None:
        return await self._watcher.poll_once()

    async def run(self) -> None:
        """Poll forever (cancel to stop)."""
        await self._watcher.run()
