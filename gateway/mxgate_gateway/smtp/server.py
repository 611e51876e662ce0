"""The SMTP protocol engine: one ``EdgeSMTP`` per connection, on aiosmtpd's ``SMTP``.

Owns the wire: greeting, the command loop and its limits (512-octet lines,
NUL, invalid UTF-8), EHLO extensions, STARTTLS with a bounded handshake,
DATA framing, timeouts, and enhanced status codes on every reply. It must
not make relay or policy decisions (the handler does) and must never send
exception text to a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import TYPE_CHECKING, AnyStr

from aiosmtpd.smtp import SMTP, Session, TLSSetupException

from mxgate_gateway import replies
from mxgate_gateway.config.model import Config
from mxgate_gateway.logs import get_logger
from mxgate_gateway.smtp import commands
from mxgate_gateway.smtp.addresses import Path, parse_path
from mxgate_gateway.smtp.data import DataStatus, DataStream, stream_data
from mxgate_gateway.smtp.gatekeeper import Gate
from mxgate_gateway.smtp.state import Close, Connection, Transaction, parse_peer
from mxgate_gateway.tls.contexts import facts_of

if TYPE_CHECKING:
    from mxgate_gateway.smtp.handler import EdgeHandler

log = get_logger("mxgate.smtp")


class EdgeSMTP(SMTP):
    """aiosmtpd's protocol with our command loop, limits, and reply discipline."""

    # The stream reader's buffer limit, not a protocol limit: DATA is streamed read by
    # read (smtp/data.py) and command length is enforced by _read_command.
    line_length_limit = 32 * 1024

    def __init__(
        self, handler: EdgeHandler, config: Config, tls_context: ssl.SSLContext | None
    ) -> None:
        super().__init__(
            handler,
            data_size_limit=config.limits.max_message_size,
            enable_SMTPUTF8=True,
            hostname=config.hostname,
            ident=config.smtp.banner,
            tls_context=tls_context,
            timeout=config.limits.command_timeout,
        )
        self.handler = handler
        self.config = config
        self.conn: Connection | None = None
        self.gate: Gate | None = None  # connection slot and real client (gatekeeper)
        self._lost = False  # connection_lost ran: everything held was released
        self.txn = Transaction()  # the current mail transaction (empty between them)

    # --- connection lifecycle ------------------------------------------------

    def _set_post_data_state(self) -> None:
        """A new, empty transaction (aiosmtpd's Envelope is not used)."""
        old, self.txn = self.txn, Transaction()
        if old.active:
            self.handler.on_transaction_end(old)
            self.handler.tracker.transaction_ended(self)

    def _set_rset_state(self) -> None:
        self._set_post_data_state()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None
        super().connection_made(transport)
        if first:
            self.conn = Connection(self.config, parse_peer(transport.get_extra_info("peername")))
            self.handler.tracker.add(self)
            self.handler.on_connect()
        elif self.conn is not None:
            self.conn.tls = facts_of(transport.get_extra_info("ssl_object"))
            self.conn.helo, self.conn.esmtp = "", False
            self.handler.on_tls(self.conn)

    def eof_received(self) -> bool | None:
        """Half-close is not hang-up: the peer will send no more, but every command it
        already sent is processed and answered before we close (edge-rules.md)."""
        self._reader.feed_eof()
        return self._tls_protocol is None  # TLS (sslproto) shuts down on close_notify

    def connection_lost(self, error: Exception | None) -> None:
        if self._lost:
            return  # a failed STARTTLS already ended the session (see _handshake_failed)
        self._lost = True
        super().connection_lost(error)
        if self.conn is not None and not self.conn.closed:
            self.conn.closed = True
            self._set_post_data_state()
            self.handler.tracker.discard(self)
            self.handler.on_session_end(self.conn, admitted=self.gate is not None)
        if self.gate is not None:
            self.handler.gatekeeper.release(self.gate)
            self.gate = None

    def _timeout_cb(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self._writer.write(f"{replies.TIMEOUT}\r\n".encode())
            self.transport.close()

    def close_with(self, reply: replies.Reply | str) -> None:
        """Send a final reply (e.g. 421 on shutdown) and close the connection, once."""
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self._writer.write(f"{reply}\r\n".encode())
            self.transport.close()

    # --- drain (smtp/drain.py's DrainableSession) -------------------------------------

    def in_transaction(self) -> bool:
        return self.txn.active

    def close_idle(self, reply: str) -> None:
        self.close_with(reply)

    def abort(self) -> None:
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()
        elif self.transport is not None:
            self.transport.close()

    # --- output ----------------------------------------------------------------

    async def push(self, status: AnyStr) -> None:
        """aiosmtpd's own replies (e.g. STARTTLS 220) get an enhanced code too."""
        text = status.decode("utf-8") if isinstance(status, bytes) else str(status)
        await self.say(text)

    async def say(self, status: str | replies.Reply) -> None:
        """Send one reply line, adding the enhanced status code if it lacks one."""
        await self._write(replies.with_enhanced(str(status)))

    async def _write(self, line: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # a final reply (421) was already sent; nothing may follow it
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await self._writer.drain()

    async def handle_exception(self, error: Exception) -> str:
        log.exception("smtp_unhandled_error", session_id=self._sid, error=type(error).__name__)
        self.handler.metrics.unhandled_errors.inc()
        return str(replies.TEMPFAIL)

    @property
    def _sid(self) -> str:
        return self.conn.session_id if self.conn else "-"

    # --- the command loop ---------------------------------------------------------

    async def _handle_client(self) -> None:
        if not await self._admit():
            return
        await self._write(f"220 {self.hostname} {self.__ident__}")
        self._reset_timeout(self.config.limits.greeting_timeout)
        bogus = 0
        while self.transport is not None:
            try:
                line = await self._read_command()
                if line is None:
                    continue
                verb, _, arg = line.partition(" ")
                method = self._smtp_methods.get(verb.upper()) if verb.isascii() else None
                if method is None:
                    bogus += 1
                    self._protocol_error("unknown_command")
                    if bogus >= commands.BOGUS_LIMIT:
                        too_many = replies.reply(421, "Too many unrecognized commands", "4.7.0")
                        self.close_with(too_many)
                        return
                    await self.say(replies.reply(500, "Command not recognized", "5.5.1"))
                    continue
                if self._over_session_limits(verb.upper()):
                    return
                # While we work (an upstream RCPT may take its timeout), the client's
                # command timer must not run out: it is waiting for us, not we for it.
                self._reset_timeout(self._relay_wait())
                await method(arg.strip(" ") or None)
                self._reset_timeout(self.config.limits.command_timeout)
            except (asyncio.CancelledError, ConnectionError):
                self._writer.close()
                raise
            except asyncio.IncompleteReadError:  # EOF: every complete command was answered
                if self.transport is not None:
                    self.transport.close()
                return
            except Exception as error:  # noqa: BLE001 - the catch-all: 451, no exception text
                if isinstance(error, TLSSetupException) and self.transport is not None:
                    self.transport.close()
                    return
                await self.say(await self.handle_exception(error))

    def _over_session_limits(self, verb: str) -> bool:
        """Session lifetime and the junk-command limit: close with 421 4.7.0 when over."""
        assert self.conn is not None
        limits = self.config.limits
        if verb in commands.JUNK:
            self.conn.junk_commands += 1
        over = commands.session_limit(
            time.monotonic() - self.conn.started,
            self.conn.junk_commands,
            limits.max_session_duration,
            limits.junk_command_limit,
        )
        if over is None:
            return False
        kind, reply = over
        self._protocol_error(kind)
        log.info("session_limit_reached", session_id=self._sid, limit=kind)
        self.close_with(reply)
        return True

    async def _read_command(self) -> str | None:
        """One command line, or None after answering a malformed one."""
        try:
            raw: bytes = await self._reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            await self._reader.readexactly(exc.consumed)
            while True:
                try:
                    await self._reader.readuntil(b"\n")
                    break
                except asyncio.LimitOverrunError as more:
                    await self._reader.readexactly(more.consumed)
            await self._refuse_line(commands.TOO_LONG)
            return None
        checked = commands.check_command(raw)
        if isinstance(checked, commands.BadLine):
            await self._refuse_line(checked)
            return None
        return checked

    async def _refuse_line(self, bad: commands.BadLine) -> None:
        self._protocol_error(bad.kind)
        await self.say(bad.reply)

    def _protocol_error(self, kind: str) -> None:
        self.handler.metrics.protocol_errors.labels(kind).inc()
        if self.conn is not None:
            self.conn.protocol_errors += 1

    # --- verbs ---------------------------------------------------------------------

    async def smtp_EHLO(self, arg: str | None) -> None:  # noqa: N802
        await self._greet(arg, esmtp=True)

    async def smtp_HELO(self, arg: str | None) -> None:  # noqa: N802
        await self._greet(arg, esmtp=False)

    async def _greet(self, arg: str | None, *, esmtp: bool) -> None:
        if not arg:
            await self.say(replies.reply(501, "Syntax: EHLO hostname", "5.5.4"))
            return
        self._set_rset_state()
        self._sess().host_name = arg
        self._sess().extended_smtp = esmtp
        assert self.conn is not None
        self.conn.helo, self.conn.esmtp = arg, esmtp
        if not esmtp:
            await self._write(f"250 {self.hostname}")
            return
        starttls = self.tls_context is not None and self._tls_protocol is None
        lines = [
            self.hostname,
            *commands.ehlo_keywords(self.config.limits.max_message_size, starttls),
        ]
        last = len(lines) - 1  # one write (one segment) for the whole multi-line reply
        text = "\r\n".join(f"250{'-' if i < last else ' '}{t}" for i, t in enumerate(lines))
        await self._write(text)

    async def smtp_STARTTLS(self, arg: str | None) -> None:  # noqa: N802
        if arg:
            await self.say(replies.reply(501, "Syntax: STARTTLS", "5.5.4"))
            return
        if self.tls_context is None or self._tls_protocol is not None:
            await self.say(replies.reply(503, "STARTTLS not available now", "5.5.1"))
            return
        timeout = self.config.tls.handshake_timeout if self.config.tls else 30.0
        self._reset_timeout(timeout + 1)
        try:
            await asyncio.wait_for(super().smtp_STARTTLS(None), timeout)
        except (TLSSetupException, TimeoutError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "handshake_error"
            self.handler.metrics.starttls_failures.labels(reason).inc()
            log.info("starttls_failed", session_id=self._sid, reason=reason)
            self._handshake_failed()
            return
        self._reset_timeout(self.config.limits.command_timeout)

    def _handshake_failed(self) -> None:
        """End the session after a failed or stalled handshake, releasing what it held.

        asyncio's SSL layer never calls ``connection_lost`` on a protocol whose handshake
        did not complete, so the slot, the gauge and the session would leak: do it here.
        """
        if isinstance(self._original_transport, asyncio.Transport):
            self._original_transport.abort()
        if self.transport is not None:
            self.transport.close()
        if not self._lost:
            self.connection_lost(None)

    async def smtp_AUTH(self, arg: str | None) -> None:  # noqa: N802
        await self.say(replies.reply(502, "AUTH not available", "5.5.1"))

    async def smtp_VRFY(self, arg: str | None) -> None:  # noqa: N802
        await self.say(replies.reply(252, "Cannot VRFY user, send some mail", "2.5.2"))

    async def smtp_EXPN(self, arg: str | None) -> None:  # noqa: N802
        await self.say(replies.reply(502, "EXPN not available", "5.5.1"))

    async def smtp_HELP(self, arg: str | None) -> None:  # noqa: N802
        await self.say(replies.reply(214, "See RFC 5321", "2.0.0"))

    async def smtp_PROXY(self, arg: str | None) -> None:  # noqa: N802
        """A PROXY header after the greeting: with the feature on, only a trusted
        balancer may send one (before it), so close; with it off, an unknown command."""
        if self.config.listen.proxy_protocol.enabled:
            self.handler.gatekeeper.refuse("proxy_untrusted")
            self.close_with(replies.reply(421, "PROXY header not accepted here", "4.7.0"))
            return
        await self.say(replies.reply(500, "Command not recognized", "5.5.1"))

    async def _admit(self) -> bool:
        """Connection limits and, from a trusted balancer, the PROXY header (gatekeeper)."""
        assert self.conn is not None
        gate = await self.handler.gatekeeper.admit(self.config, self.conn.client_ip, self._reader)
        if not gate.admitted:
            if gate.reply is not None:
                self.close_with(gate.reply)
            elif self.transport is not None:
                self.transport.close()
            return False
        if self.transport is None:  # lost while reading the header
            self.handler.gatekeeper.release(gate)
            return False
        self.gate = gate
        if gate.client_ip is not None:
            self.conn.client_ip = gate.client_ip
        return True

    async def smtp_RSET(self, arg: str | None) -> None:  # noqa: N802
        if arg:
            await self.say(replies.reply(501, "Syntax: RSET", "5.5.4"))
            return
        self._set_rset_state()
        await self.say(replies.reply(250, "Reset OK", "2.0.0"))

    async def smtp_MAIL(self, arg: str | None) -> None:  # noqa: N802
        txn = self._txn()
        if not self._sess().host_name:
            await self.say(replies.reply(503, "Send EHLO first", "5.5.1"))
            return
        if txn.active:
            await self.say(replies.reply(503, "Nested MAIL command", "5.5.1"))
            return
        path = parse_path(arg or "", "FROM:")
        if isinstance(path, Path):
            esmtp, limit = self._sess().extended_smtp, self.config.limits.max_message_size
            refusal = commands.mail_refusal(path, esmtp, limit)
            if refusal is None:
                answer = await self.handler.on_mail(self._conn(), txn, path)
                if isinstance(answer, Close):
                    self.close_with(answer.reply)
                else:
                    await self.say(answer)
                return
            path = refusal
        await self.say(path)

    async def smtp_RCPT(self, arg: str | None) -> None:  # noqa: N802
        txn = self._txn()
        if not txn.active:
            await self.say(replies.reply(503, "Need MAIL command first", "5.5.1"))
            return
        path = parse_path(arg or "", "TO:")
        if not isinstance(path, Path):
            await self.say(path)
            return
        limit, smtputf8 = self.config.limits.max_recipients, "SMTPUTF8" in txn.params
        refusal = commands.rcpt_refusal(path, smtputf8, len(txn.recipients), limit)
        await self.say(refusal or await self.handler.on_rcpt(self._conn(), txn, path))

    async def smtp_DATA(self, arg: str | None) -> None:  # noqa: N802
        txn = self._txn()
        if arg:
            await self.say(replies.reply(501, "Syntax: DATA", "5.5.4"))
            return
        if not txn.active or not txn.recipients:
            code = 554 if txn.active else 503
            await self.say(replies.reply(code, "No valid recipients", "5.5.1"))
            return
        if getattr(self._reader, "_buffer", b""):  # RFC 2920: DATA ends a pipelined group
            self._protocol_error("pipelining_after_data")
            self.close_with(replies.reply(554, "Commands pipelined after DATA", "5.5.0"))
            return
        sink = self.handler.on_data_start(self._conn(), txn)
        await self._write("354 End data with <CR><LF>.<CR><LF>")
        self._reset_timeout(self.config.limits.data_timeout)
        stream = DataStream(self.config.limits.max_message_size, self.config.smtp.bare_line_endings)
        await stream_data(self._reader, stream, sink)
        self._reset_timeout(self.config.limits.command_timeout)
        if stream.status is not DataStatus.OK:
            self._protocol_error(stream.status.value)
            self.handler.on_data_refused(self._conn(), txn, stream.status)
            self._set_post_data_state()
            await self.say(commands.DATA_ERRORS[stream.status])
            return
        self._reset_timeout(self._relay_wait())  # the client waits for our final reply
        reply = await self.handler.on_data(self._conn(), txn, stream.size)
        self._reset_timeout(self.config.limits.command_timeout)
        self._set_post_data_state()
        await self.say(reply)

    def _relay_wait(self) -> float:
        """How long a client may wait for our reply: every upstream's connect and
        command bounds (failover), the final reply, plus slack; never below the
        command timeout."""
        ups = self.config.upstreams
        connect = sum(u.connect_timeout + u.timeout for u in ups)
        wait = connect + max(u.timeout + u.final_reply_timeout for u in ups) + 30.0
        return max(self.config.limits.command_timeout, wait)

    def _sess(self) -> Session:
        assert self.session is not None
        return self.session

    def _txn(self) -> Transaction:
        return self.txn

    def _conn(self) -> Connection:
        assert self.conn is not None  # set in connection_made, before any command
        return self.conn
