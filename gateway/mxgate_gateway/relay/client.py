"""One live upstream transaction per client transaction (the in-line relay).

Opens a connection at the first accepted RCPT (upstreams tried in order on
connection failure), proxies MAIL/RCPT live, and streams DATA as the client
sends it (bounded buffers); a message the edge rules refuse, or whose client or
upstream fails, is abandoned before its final dot so the upstream keeps no copy.
Every step ends in a ``RelayOutcome``; no exception escapes. It must not reply
to the client, log message content, or retry a message after the upstream has
seen DATA.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from mxgate_gateway.config.model import Upstream, UpstreamTLS, split_hostport
from mxgate_gateway.relay.breaker import BreakerBank, failover_order
from mxgate_gateway.relay.outcome import (
    Failure,
    RelayOutcome,
    RelayStatus,
    failed,
    from_reply,
)
from mxgate_gateway.relay.pool import UpstreamPool
from mxgate_gateway.replies import reply
from mxgate_gateway.tls.contexts import UpstreamContexts

Observe = Callable[[str, str, float], None]  # (phase, upstream, seconds): latency histogram
# (step, upstream, failure) for each fresh connection attempt ("connect": Failure.NONE when it
# succeeded) and each MAIL FROM it broke on ("mail"): failures failover hides still count.
OnAttempt = Callable[[str, str, Failure], None]
FLUSH_AT = 16 * 1024  # message octets queued before a write to the upstream

NO_SMTPUTF8 = reply(550, "Upstream does not support SMTPUTF8", "5.6.7")
_TIMEOUTS = (aiosmtplib.SMTPTimeoutError, TimeoutError)
_DROPS = (aiosmtplib.SMTPServerDisconnected, ConnectionError, OSError)


def _classify(exc: BaseException) -> Failure:
    if isinstance(exc, _TIMEOUTS):
        return Failure.TIMEOUT
    if isinstance(exc, ssl.SSLError):
        return Failure.TLS
    if isinstance(exc, _DROPS):
        return Failure.DISCONNECTED
    return Failure.PROTOCOL


class UpstreamTransaction:
    """A MAIL transaction on one upstream connection. Create with ``open``."""

    def __init__(
        self,
        smtp: aiosmtplib.SMTP,
        upstream: Upstream,
        observe: Observe,
        pool: UpstreamPool | None = None,
        helo: str = "",
    ) -> None:
        self._smtp = smtp
        self.upstream = upstream
        self._observe = observe
        self._pool, self._helo = pool, helo
        self._reusable = False  # the upstream accepted the final dot: ready for a new MAIL
        self.broken: RelayOutcome | None = None
        # Streamed DATA: between start_data and finish_data/abandon_data.
        self._in_data = False
        self._awaiting_354 = False
        self._data_refused: RelayOutcome | None = None
        self._data_started = 0.0
        self._dot_sent = False  # the final dot was handed to the connection
        self._pending: list[bytes] = []
        self._pending_len = 0

    @classmethod
    async def open(
        cls,
        upstreams: Sequence[Upstream],
        *,
        helo: str,
        sender: str,
        mail_params: Sequence[str],
        observe: Observe,
        breakers: BreakerBank | None = None,
        pool: UpstreamPool | None = None,
        contexts: UpstreamContexts | None = None,
        on_attempt: OnAttempt | None = None,
    ) -> tuple[UpstreamTransaction | None, RelayOutcome]:
        """Connect to the first reachable upstream and send MAIL FROM.

        With ``breakers``, upstreams whose breaker is open are skipped (none left:
        4xx at once) and each connection attempt is recorded. With ``pool``, an idle
        session to the upstream is reused first (one dropped while idle is skipped).
        ``contexts`` holds the TLS client contexts of this config generation (built
        once; without it they are built for this call only). ``on_attempt`` hears the
        result of every fresh connection, and a MAIL FROM that broke one.
        """
        last = failed(Failure.CONNECT)
        bank = breakers if breakers is not None else BreakerBank(time.monotonic)
        tls = contexts if contexts is not None else UpstreamContexts()
        reuse = pool is not None and "SMTPUTF8" not in mail_params
        attempt = on_attempt or _ignore
        for upstream in failover_order(upstreams, _key, bank):
            while reuse and pool is not None and (idle := pool.take((upstream, helo))):
                txn = cls(idle, upstream, observe, pool, helo)
                params = [p for p in mail_params if _supported(idle, p)]
                outcome = await txn._command(f"MAIL FROM:<{sender}>", params)
                if txn.broken is None:  # the upstream answered: the session was live
                    if not outcome.accepted:
                        await txn.close()
                        return None, outcome
                    return txn, outcome
            started = time.monotonic()
            smtp, outcome = await _connect(upstream, helo, tls.get(upstreams, upstream))
            observe("connect", upstream.address, time.monotonic() - started)
            attempt("connect", upstream.address, outcome.failure)
            if smtp is None:
                bank[_key(upstream)].record_failure()
                last = outcome
                continue
            bank[_key(upstream)].record_success()
            txn = cls(smtp, upstream, observe, pool, helo)
            if "SMTPUTF8" in mail_params and not smtp.supports_extension("smtputf8"):
                await txn.close()  # relaying UTF-8 to an upstream without SMTPUTF8 would mangle it
                return None, RelayOutcome(
                    RelayStatus.REJECTED, NO_SMTPUTF8, upstream=_key(upstream)
                )
            params = [p for p in mail_params if _supported(smtp, p)]
            outcome = await txn._command(f"MAIL FROM:<{sender}>", params)
            if txn.broken is not None:
                attempt("mail", upstream.address, txn.broken.failure)
            if not outcome.accepted:
                await txn.close()
                return None, outcome
            return txn, outcome
        return None, last

    async def rcpt(self, recipient: str) -> RelayOutcome:
        """Proxy one RCPT TO; the outcome carries the upstream's verdict."""
        if self.broken is not None:
            return self.broken
        return await self._command(f"RCPT TO:<{recipient}>", [])

    # --- streamed DATA: start_data, write..., then finish_data or abandon_data -------

    def start_data(self, head: bytes) -> None:
        """Send DATA now (its 354 is awaited at the first flush) and queue ``head``
        (our trace headers) as the first bytes of the message."""
        if self.broken is not None:
            return
        try:
            protocol = self._protocol()
            protocol._response_pending = True  # a reply is due: aiosmtplib drops unexpected data
            protocol.write(b"DATA\r\n")
        except Exception as exc:  # noqa: BLE001 - any failure here must become a 4xx
            self._break(exc)
            return
        self._data_started = time.monotonic()
        self._awaiting_354 = True
        self._in_data = True
        self._data_refused = None
        self._dot_sent = False
        self._pending, self._pending_len = [head], len(head)

    async def write(self, data: bytes) -> None:
        """Queue dot-stuffed CRLF-only message bytes; flush past ``FLUSH_AT`` octets,
        waiting (bounded by the upstream timeout) while the upstream is slow to read.
        A failure marks the transaction broken and later writes are dropped."""
        if not self._in_data or self.broken is not None or self._data_refused is not None:
            return
        self._pending.append(data)
        self._pending_len += len(data)
        if self._pending_len >= FLUSH_AT:
            await self._flush(b"")

    async def finish_data(self) -> RelayOutcome:
        """The final dot; ACCEPTED only if the upstream said 354 to DATA and 250 to the dot."""
        if self.broken is not None or not self._in_data:
            return self.broken or failed(Failure.PROTOCOL, self.upstream.address)
        outcome = self._data_refused
        if outcome is None:
            await self._flush(b".\r\n")  # may find DATA refused (its reply is read first)
            outcome = self.broken or self._data_refused
        if outcome is None:
            try:
                response = await self._protocol().read_response(
                    timeout=self.upstream.final_reply_timeout
                )
            except asyncio.CancelledError:
                self._break(TimeoutError())
                raise
            except Exception as exc:  # noqa: BLE001 - any failure here must become a 4xx
                outcome = self._break(exc)
            else:
                outcome = _final(response.code, response.message, self.upstream.address)
                self._reusable = outcome.accepted
        self._in_data = False
        self._pending, self._pending_len = [], 0
        self._observe("data", self.upstream.address, time.monotonic() - self._data_started)
        if self._dot_sent and outcome.status is RelayStatus.TEMPFAILED:
            outcome = replace(outcome, after_dot=True)  # the upstream may hold a copy
        return outcome

    def abandon_data(self) -> None:
        """Drop the connection before the final dot: the upstream keeps no copy."""
        if self._in_data:
            self._in_data = False
            self._pending, self._pending_len = [], 0
            self.broken = failed(Failure.PROTOCOL, self.upstream.address)
            _abort(self._smtp)

    async def _flush(self, last: bytes) -> None:
        try:
            protocol = self._protocol()
            if self._awaiting_354:
                self._awaiting_354 = False
                start = await protocol.read_response(timeout=self.upstream.timeout)
                if start.code != 354:
                    self._data_refused = _refused_data(start.code, start.message, self.upstream)
                    self._pending, self._pending_len = [], 0
                    return
            self._pending.append(last)
            if last:  # the final dot: its reply is due
                protocol._response_pending = True
            protocol.write(b"".join(self._pending))
            self._dot_sent = bool(last)
            self._pending, self._pending_len = [], 0
            transport = protocol.transport
            if isinstance(transport, asyncio.WriteTransport) and (
                transport.get_write_buffer_size() > FLUSH_AT
            ):
                async with asyncio.timeout(self.upstream.timeout):
                    await protocol._drain_helper()  # aiosmtplib's flow control (private)
        except asyncio.CancelledError:
            self._break(TimeoutError())
            raise
        except Exception as exc:  # noqa: BLE001 - a stalled or dead upstream: 4xx, no copy
            self._break(exc)

    def _protocol(self) -> SMTPProtocol:
        protocol = self._smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("not connected")
        return protocol

    def release(self) -> bool:
        """Hand a session that finished cleanly to the pool; False if it must be closed."""
        if not self._reusable or self.broken is not None or self._pool is None:
            return False
        self._reusable = False
        return self._pool.give((self.upstream, self._helo), self._smtp)

    async def close(self) -> None:
        """Pool the session if it finished cleanly; else say QUIT if usable, then drop it."""
        if self.release():
            return
        if self._in_data:  # a QUIT now would be message text: drop the connection instead
            self.abandon_data()
            return
        try:
            if self.broken is None and self._smtp.is_connected:
                await self._smtp.quit(timeout=min(5.0, self.upstream.timeout))
        except Exception:  # noqa: BLE001, S110 - closing anyway
            pass
        finally:
            self._smtp.close()

    async def _command(self, line: str, params: Sequence[str]) -> RelayOutcome:
        verb, _, arg = line.partition(" ")
        args = [arg.encode("utf-8"), *(p.encode("ascii") for p in params)]
        try:
            response = await self._smtp.execute_command(
                verb.encode("ascii"), *args, timeout=self.upstream.timeout
            )
        except asyncio.CancelledError:  # our client went away mid-command: desynced, drop it
            self._break(TimeoutError())
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here must become a 4xx
            return self._break(exc)
        return from_reply(response.code, response.message, self.upstream.address)

    def _break(self, exc: BaseException) -> RelayOutcome:
        self.broken = failed(_classify(exc), self.upstream.address)
        if self._in_data:
            _abort(self._smtp)  # never let buffered message bytes reach the upstream
        else:
            self._smtp.close()
        return self.broken


def _key(upstream: Upstream) -> str:
    return upstream.address


def _ignore(step: str, upstream: str, failure: Failure) -> None:
    """The default ``on_attempt``: nobody listens."""


def _final(code: int, message: str, upstream: str) -> RelayOutcome:
    """The reply to the final dot: only 250 is a delivery; another 2xx is a protocol error."""
    if 200 <= code < 300 and code != 250:
        return failed(Failure.PROTOCOL, upstream)
    return from_reply(code, message, upstream)


def _refused_data(code: int, message: str, upstream: Upstream) -> RelayOutcome:
    """DATA answered with anything but 354: its 4xx/5xx, and a 2xx is a protocol error
    (no message was transferred, so it must never become a 250 for the client)."""
    if 200 <= code < 400:
        return failed(Failure.PROTOCOL, upstream.address)
    return from_reply(code, message, upstream.address)


def _abort(smtp: aiosmtplib.SMTP) -> None:
    """Close at once, discarding unsent bytes (no final dot can follow)."""
    protocol = smtp.protocol
    transport = protocol.transport if protocol is not None else None
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    smtp.close()


def _supported(smtp: aiosmtplib.SMTP, param: str) -> bool:
    key = param.partition("=")[0].upper()
    ext = {"BODY": "8bitmime", "SIZE": "size", "SMTPUTF8": "smtputf8"}.get(key)
    return ext is not None and smtp.supports_extension(ext)


async def _connect(
    upstream: Upstream, helo: str, ctx: ssl.SSLContext | None
) -> tuple[aiosmtplib.SMTP | None, RelayOutcome]:
    host, port = split_hostport(upstream.address)
    smtp = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        local_hostname=helo,
        timeout=upstream.timeout,
        start_tls=False,
    )
    try:
        await smtp.connect(timeout=upstream.connect_timeout)
        await smtp.ehlo()
    except asyncio.CancelledError:
        smtp.close()
        raise
    except Exception as exc:  # noqa: BLE001 - try the next upstream
        smtp.close()
        kind = _classify(exc)
        return None, failed(Failure.CONNECT if kind is Failure.DISCONNECTED else kind)
    offered = smtp.supports_extension("starttls")
    if ctx is None or (upstream.tls is UpstreamTLS.OPPORTUNISTIC and not offered):
        return smtp, failed(Failure.NONE)
    try:
        if not offered:
            raise ssl.SSLError("upstream does not offer STARTTLS")
        await smtp.starttls(tls_context=ctx, server_hostname=host)
        await smtp.ehlo()
    except asyncio.CancelledError:
        smtp.close()
        raise
    except Exception:  # noqa: BLE001 - TLS failure
        smtp.close()
        if upstream.tls is UpstreamTLS.OPPORTUNISTIC:  # like an MTA: retry once in plaintext
            return await _connect(upstream, helo, None)
        return None, failed(Failure.TLS, upstream.address)  # required: try the next upstream
    return smtp, failed(Failure.NONE)
