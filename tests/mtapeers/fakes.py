"""Scripted misbehaving upstreams (fakes): they stall or drop on cue.

Postfix cannot be told to hang after the final dot or cut the line mid-DATA,
so these tiny raw-socket servers do exactly that and record what they got.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class FakeUpstream:
    """A fake SMTP upstream. ``mode``: ``stall_data`` (never answers the dot),
    ``drop_data`` (closes mid-DATA), ``stall_greeting`` (never says 220),
    ``broken_starttls`` (offers STARTTLS, then answers the handshake with garbage;
    a plaintext session after that is accepted with 250 at the dot),
    ``stall_rcpt`` (never answers RCPT; ``hung_up`` is set when the gateway hangs up),
    ``data_2xx`` (answers 250 to DATA itself: a broken upstream that stores nothing),
    ``data_554`` (refuses DATA with 554), ``slow_dot`` (answers the dot with 250 after
    ``delay`` seconds), ``dot_451`` (451 to the dot), ``garbage_dot`` (a non-SMTP line
    to the dot). ``stored`` counts the messages a 250 to the dot confirmed; ``commands``
    records every command line received, as sent.
    ``stop_reading`` (says 354, then never reads again). ``data_bytes`` counts the DATA
    octets read so far; ``received`` holds a DATA section once it ended (dot or drop)."""

    mode: str
    received: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    delay: float = 0.0
    stored: int = 0
    commands: list[bytes] = field(default_factory=list)
    smtputf8: bool = False  # advertise SMTPUTF8
    data_bytes: int = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for w in self._writers:
            w.close()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.mode == "stall_greeting":
            await reader.read()
            return
        writer.write(b"220 fake.test ESMTP fake\r\n")
        data = bytearray()
        in_data = False
        while line := await reader.readline():
            if in_data:
                data += line
                self.data_bytes += len(line)
                if self.mode == "drop_data" and len(data) > 100:
                    self.received.append(bytes(data))
                    writer.transport.abort()
                    return
                if line == b".\r\n":
                    self.received.append(bytes(data))
                    in_data, data = False, bytearray()
                    if self.mode in ("broken_starttls", "slow_dot"):
                        await asyncio.sleep(self.delay)
                        self.stored += 1
                        writer.write(b"250 2.0.0 accepted\r\n")
                    elif self.mode == "dot_451":
                        writer.write(b"451 4.3.0 try again\r\n")
                    elif self.mode == "garbage_dot":
                        writer.write(b"hello, this is not a reply\r\n")
                    else:
                        await asyncio.sleep(3600)  # stall_data: never answer the dot
                continue
            self.commands.append(line)
            verb = line[:4].upper()
            if verb == b"EHLO":
                starttls = b"250-STARTTLS\r\n" if self.mode == "broken_starttls" else b""
                utf8 = b"250-SMTPUTF8\r\n" if self.smtputf8 else b""
                writer.write(b"250-fake.test\r\n" + starttls + utf8 + b"250 8BITMIME\r\n")
            elif verb == b"STAR":
                writer.write(b"220 go ahead\r\nthis is not a TLS server hello\r\n")
                await writer.drain()
                writer.close()
                return
            elif verb == b"DATA" and self.mode == "data_2xx":
                writer.write(b"250 2.0.0 ok\r\n")  # broken: no 354, nothing will be stored
            elif verb == b"DATA" and self.mode == "data_554":
                writer.write(b"554 5.7.1 not from you\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                in_data = True
                if self.mode == "stop_reading":
                    await writer.drain()
                    await asyncio.sleep(3600)
            elif verb == b"RCPT" and self.mode == "stall_rcpt":
                continue  # never answer; wait to see whether the gateway hangs up
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        self.hung_up.set()
        writer.close()
