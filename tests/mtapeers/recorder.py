"""A recording upstream MTA: a real SMTP server (aiosmtpd), in its own process or in-process.

Each message is written to ``<dir>/<n>.eml`` (tmp + rename) *before* the 250 is
sent, so "the upstream has it" means "a file exists"; its envelope is kept in memory
(``envelopes``) for in-process use (an aiosmtpd ``Controller``). ``--delay`` makes it
slow (sleeps before answering the final dot). Run as a script (``upstream.py`` does):
prints its port, then serves.
It is a stand-in for the internal MTA that can be SIGKILLed and restarted in tests;
tests that need Postfix's own behaviour use Postfix.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP


class Recorder:
    """The aiosmtpd handler: stores every message, then answers 250."""

    def __init__(self, directory: Path, delay: float = 0.0) -> None:
        self.directory = directory
        self.delay = delay
        self.seq = itertools.count()
        self.pid = os.getpid()
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs), stored order
        directory.mkdir(parents=True, exist_ok=True)

    def senders(self) -> list[str]:
        """The MAIL FROM of every stored message (in-process use)."""
        return [mail_from for mail_from, _ in self.envelopes]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # ``.N.begun`` / ``.N.ended`` mark each final dot's handling (stored, or cut off
        # when the client hung up during ``delay``): when they pair up, nothing is in flight.
        name = f"{self.pid}-{next(self.seq):07d}.eml"
        (self.directory / f".{name}.begun").touch()
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            tmp = self.directory / f".{name}.tmp"
            tmp.write_bytes(envelope.original_content)
            tmp.rename(self.directory / name)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            return "250 2.0.0 Ok: stored"
        finally:
            (self.directory / f".{name}.ended").touch()


async def serve(port: int, directory: Path, delay: float) -> None:
    loop = asyncio.get_running_loop()
    handler = Recorder(directory, delay)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="upstream.test", ident="recorder", timeout=60),
        sock=sock,
        backlog=256,
    )
    print(sock.getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(serve(args.port, args.dir, args.delay))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
