"""``mxgate dev``: the embedded default a newcomer runs first.

Generates a self-signed certificate, starts a local SMTP sink that stores
each message as a Maildir file, and points a STARTTLS gateway at it. It
must not be used in production: the sink accepts anything from loopback and
the certificate is throwaway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import socket
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mxgate_gateway.config.model import Config
from mxgate_gateway.settings import DevSettings

#: The private keys ``self_signed_pem`` signs with.
SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def self_signed_pem(
    key: SigningKey,
    hostname: str,
    alt_names: list[x509.GeneralName],
    *,
    days: int,
    leaf: bool = False,
) -> tuple[bytes, bytes]:
    """A throwaway self-signed certificate for ``hostname`` and its key, as PEM (cert, key).

    Valid from five minutes ago for ``days``; ``leaf`` marks it as no CA (critical).
    Shared with the benchmark's certificates (``bench/certs.py``).
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    )
    if leaf:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Write a fresh self-signed EC certificate and key for ``hostname``."""
    directory.mkdir(parents=True, exist_ok=True)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName(hostname),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert_pem, key_pem = self_signed_pem(
        ec.generate_private_key(ec.SECP256R1()), hostname, alt_names, days=30, leaf=True
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return cert_path, key_path


class MaildirSink:
    """aiosmtpd handler: store each message, bytes as received, in a Maildir."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        self._seq = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self._seq += 1
        name = f"{time.time():.6f}.P{os.getpid()}Q{self._seq}.{socket.gethostname()}"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(envelope.original_content)
        tmp.rename(self.maildir / "new" / name)
        return f"250 2.0.0 Ok: stored as {name}"


async def start_sink(maildir: Path, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Serve the Maildir sink over plain SMTP on loopback."""
    sink = MaildirSink(maildir)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(sink, hostname="sink.localhost", enable_SMTPUTF8=True), host=host, port=port
    )


def dev_config(settings: DevSettings, cert: Path, key: Path, sink_port: int) -> Config:
    """The gateway config ``mxgate dev`` runs with."""
    return Config.model_validate(
        {
            "hostname": settings.hostname,
            "listen": {"smtp": settings.smtp, "http": settings.http, "public": settings.public},
            "domains": [settings.domain],
            "mta_sts": {
                "policies": [{"domain": settings.domain, "mx": [settings.hostname]}],
                "tlsrpt": {"enabled": True},
            },
            "tls": {"cert": str(cert), "key": str(key)},
            "upstreams": [{"address": f"127.0.0.1:{sink_port}", "tls": "none"}],
            "log": {"format": "console"},
        }
    )


def instructions(
    settings: DevSettings, smtp_port: int, http_port: int, public_port: int | None = None
) -> str:
    """What ``mxgate dev`` prints: how to send a message and where to look."""
    d = settings.directory.resolve()
    public = (
        ""
        if public_port is None
        else (
            f"  HTTP public (MTA-STS, TLS-RPT): http://127.0.0.1:{public_port}/.well-known/mta-sts.txt"
            f"  (Host: mta-sts.{settings.domain})  POST /tlsrpt\n"
        )
    )
    return f"""
mxgate dev is running.
  SMTP (STARTTLS, self-signed): 127.0.0.1:{smtp_port}
  HTTP admin:                    http://127.0.0.1:{http_port}/readyz  /metrics  /report
{public}
Send a test message:
  swaks --server 127.0.0.1:{smtp_port} --tls --to someone@{settings.domain} --from you@example.org

Then look at:
  ls {d}/Maildir/new/            # each relayed message, our Received: header on top
  curl -s http://127.0.0.1:{http_port}/metrics | grep ^mxgate_
  curl -s http://127.0.0.1:{http_port}/report
  curl -s -H 'Host: mta-sts.{settings.domain}' http://127.0.0.1:{public_port}/.well-known/mta-sts.txt

Press Ctrl-C to stop.
"""
