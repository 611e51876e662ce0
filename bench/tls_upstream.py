"""An upstream that offers STARTTLS: a private real Postfix that discards what it accepts.

The headline ``mxgate`` row relays to it with the default ``tls: opportunistic``, so
the upstream TLS handshake is part of what is measured (smtp-sink speaks plaintext
only). The instance is the test suite's private Postfix (``tests/mtapeers/postfix.py``:
own config, queue and log, loopback only) with ``smtpd_tls_security_level = may`` and
every recipient discarded; the count is the ``discard`` agent's ``status=sent`` lines.
It must not judge a run (the runner compares counts) nor generate load.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bench.certs import CertPair
from mtapeers.postfix import Postfix

_SENT = re.compile(rb"status=sent \(")


def settings(cert: CertPair) -> dict[str, str]:
    """main.cf lines: relay accepted.test from loopback, offer STARTTLS, discard it all."""
    return {
        "relay_domains": "accepted.test",
        "relay_transport": "discard:bench",
        "default_transport": "discard:bench",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": str(cert.cert),
        "smtpd_tls_key_file": str(cert.key),
        "default_process_limit": "200",
        "smtpd_client_connection_count_limit": "0",
        "smtpd_client_connection_rate_limit": "0",
        "smtpd_client_message_rate_limit": "0",
        "anvil_rate_time_unit": "60s",
    }


def parse_sent(log: bytes) -> int:
    """Recipients the discard agent delivered (one per message in every workload)."""
    return len(_SENT.findall(log))


class PostfixTLSUpstream:
    """The interface of ``mtapeers.smtpsink.SmtpSink``: ``port``, ``count``, ``settled_count``,
    ``stop``."""

    def __init__(self, postfix: Any) -> None:
        self.postfix = postfix
        self.port: int = postfix.port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, cert: CertPair) -> PostfixTLSUpstream:
        for path in (cert.cert, cert.key):
            path.chmod(0o644)  # Postfix's unprivileged smtpd reads them
            path.parent.chmod(0o755)
        pfx = Postfix("upstream", settings(cert))
        await asyncio.to_thread(pfx.start)
        return cls(pfx)

    def count(self) -> int:
        try:
            return parse_sent(self.postfix.logfile.read_bytes())
        except OSError:
            return 0

    async def settled_count(self, expected: int, wait: float = 30.0) -> int:
        """The count once it reaches ``expected`` or stops moving for 3 s (at most ``wait``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        last, since = -1, loop.time()
        while True:
            now = self.count()
            if now >= expected or loop.time() >= deadline:
                return now
            if now != last:
                last, since = now, loop.time()
            elif loop.time() - since > 3.0:
                return now
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        await asyncio.to_thread(self.postfix.stop)
