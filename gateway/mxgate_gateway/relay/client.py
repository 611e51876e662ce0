"""One live upstream transaction per client transaction (the in-line relay).

Opens a connection at the first accepted RCPT (upstreams tried in order on
connection failure), proxies MAIL/RCPT live, relays DATA. Every step ends in
a ``RelayOutcome``; no exception escapes. It must not reply to the client,
log message content, or retry a message after the upstream has seen DATA.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import aiosmtplib

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
from mxgate_gateway.smtp.replies import reply
from mxgate_gateway.tls.contexts import UpstreamContexts

Observe = Callable[[str, float], None]  # (phase, seconds) for the latency histogram

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
    ) -> tuple[UpstreamTransaction | None, RelayOutcome]:
        """Connect to the first reachable upstream and send MAIL FROM.

        With ``breakers``, upstreams whose breaker is open are skipped (none left:
        4xx at once) and each connection attempt is recorded. With ``pool``, an idle
        session to the upstream is reused first (one dropped while idle is skipped).
        ``contexts`` holds the TLS client contexts of this config generation (built
        once; without it they are built for this call only).
        """
        last = failed(Failure.CONNECT)
        bank = breakers if breakers is not None else BreakerBank(time.monotonic)
        tls = contexts if contexts is not None else UpstreamContexts()
        reuse = pool is not None and "SMTPUTF8" not in mail_params
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
            observe("connect", time.monotonic() - started)
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

    async def data(self, message: bytes) -> RelayOutcome:
        """Relay the message; ACCEPTED only if the upstream answered 2xx to the dot."""
        if self.broken is not None:
            return self.broken
        started = time.monotonic()
        relayed: list[bool] = []  # set once the final dot is on its way to the upstream
        try:
            response = await send_data(
                self._smtp,
                message,
                self.upstream.timeout,
                self.upstream.final_reply_timeout,
                on_dot=lambda: relayed.append(True),
            )
            outcome = from_reply(response.code, response.message, self.upstream.address)
            self._reusable = outcome.accepted
        except aiosmtplib.SMTPResponseException as exc:
            # Only 354 to DATA then 250 to the dot is a yes; a 2xx/3xx anywhere else is a
            # broken upstream (no copy stored, or none we can trust): 4xx, never 250.
            if 400 <= exc.code < 600:
                outcome = from_reply(exc.code, exc.message, self.upstream.address)
            else:
                outcome = self._break(exc)
        except asyncio.CancelledError:
            self._break(TimeoutError())
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here must become a 4xx
            outcome = self._break(exc)
        self._observe("data", time.monotonic() - started)
        if relayed and outcome.status is RelayStatus.TEMPFAILED:
            outcome = replace(outcome, after_dot=True)
        return outcome

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
        self._smtp.close()
        return self.broken


def _key(upstream: Upstream) -> str:
    return upstream.address


async def send_data(
    smtp: aiosmtplib.SMTP,
    message: bytes,
    limit: float,
    final_limit: float,
    on_dot: Callable[[], None] = lambda: None,
) -> aiosmtplib.SMTPResponse:
    """DATA, then the message dot-stuffed in one pass and written as is (no copies).

    ``limit`` bounds the DATA command, ``final_limit`` the reply to the final dot;
    ``on_dot`` is called when the dot has been handed to the connection.

    The message is CRLF-only (smtp/data.py refuses or normalises anything else), so
    aiosmtplib's line-ending normalisation would only cost more passes and copies; a
    message with a bare CR or LF is still handed to aiosmtplib.
    """
    crlf = message.count(b"\r\n")
    if message.count(b"\r") != crlf or message.count(b"\n") != crlf or smtp.protocol is None:
        on_dot()  # aiosmtplib sends DATA and the dot in one call: assume the dot went
        return await smtp.data(message, timeout=final_limit)
    start = await smtp.execute_command(b"DATA", timeout=limit)
    if start.code != 354:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    protocol = smtp.protocol
    try:
        protocol.write(b"." + stuffed if stuffed.startswith(b".") else stuffed)
        protocol.write(b".\r\n" if not stuffed or stuffed.endswith(b"\r\n") else b"\r\n.\r\n")
        on_dot()
        response = await protocol.read_response(timeout=final_limit)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()
        raise
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response


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
