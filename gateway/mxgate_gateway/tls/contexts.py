"""SSL contexts: the server side for STARTTLS and the client side for upstreams.

Builds ``ssl.SSLContext`` objects from validated config. It must not watch
or reload files (the reloader does) and must not decide policy.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import stat
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from mxgate_gateway.config.model import TLS, TLSVersion, Upstream, UpstreamTLS
from mxgate_gateway.errors import MxgateError

_MIN_VERSION = {
    TLSVersion.TLS1_2: ssl.TLSVersion.TLSv1_2,
    TLSVersion.TLS1_3: ssl.TLSVersion.TLSv1_3,
}


class TLSMaterialError(MxgateError):
    """The configured certificate or key could not be loaded."""


def require_regular_files(tls: TLS) -> None:
    """Raise TLSMaterialError if the cert or key is a FIFO, socket, device or directory:
    opening a FIFO would block forever (issue 12.9). A missing file is left to the load."""
    for path in (tls.cert, tls.key):
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise TLSMaterialError(f"{path} is not a regular file")


def server_context(tls: TLS) -> ssl.SSLContext:
    """A server context for STARTTLS: our chain and key, TLS >= ``min_version``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _MIN_VERSION[tls.min_version]
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    ctx.verify_mode = ssl.CERT_NONE  # MX clients rarely present certificates
    require_regular_files(tls)
    try:
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
    except (OSError, ssl.SSLError) as exc:
        raise TLSMaterialError(f"cannot load TLS cert {tls.cert} / key {tls.key}: {exc}") from exc
    return ctx


def upstream_context(upstream: Upstream) -> ssl.SSLContext | None:
    """The client context for one upstream, or None when TLS is off.

    ``required`` verifies the upstream against ``ca_file`` (or the system
    store); ``opportunistic`` encrypts without verifying, like an MTA would,
    and so loads no CA store at all (loading the system bundle costs ~10 ms).
    Costly: build it once per config generation (``UpstreamContexts``).
    """
    if upstream.tls is UpstreamTLS.NONE:
        return None
    if upstream.tls is UpstreamTLS.REQUIRED:
        ctx = ssl.create_default_context(cafile=str(upstream.ca_file) if upstream.ca_file else None)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class UpstreamContexts:
    """The upstream client contexts of recent config generations, each built once.

    A generation is one ``Config.upstreams`` sequence (a reload makes a new one);
    its contexts are built on first use and reused by every connection after. The
    last ``keep`` generations are kept, so sessions still on the previous config
    do not rebuild them.
    """

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._generations: OrderedDict[
            int, tuple[Sequence[Upstream], dict[Upstream, ssl.SSLContext | None]]
        ] = OrderedDict()

    def get(self, upstreams: Sequence[Upstream], upstream: Upstream) -> ssl.SSLContext | None:
        """The context for ``upstream`` of the generation ``upstreams``."""
        key = id(upstreams)
        entry = self._generations.get(key)
        if entry is None or entry[0] is not upstreams:
            entry = (upstreams, {})
            self._generations[key] = entry
            while len(self._generations) > self.keep:
                self._generations.popitem(last=False)
        else:
            self._generations.move_to_end(key)
        built = entry[1]
        if upstream not in built:
            built[upstream] = upstream_context(upstream)
        return built[upstream]


@dataclass(frozen=True)
class TLSFacts:
    """What a finished handshake negotiated (for logs, metrics, Received)."""

    version: str
    cipher: str
    bits: int | None


def facts_of(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> TLSFacts | None:
    """Read the negotiated version and cipher from an SSL object."""
    if ssl_object is None:
        return None
    cipher = ssl_object.cipher()
    version = ssl_object.version() or "unknown"
    if cipher is None:
        return TLSFacts(version, "unknown", None)
    return TLSFacts(version, cipher[0], cipher[2])
