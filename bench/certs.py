"""Throwaway self-signed server certificates for the TLS workloads (RSA-2048, ECDSA P-256).

Writes PEM files into the run's work directory. It must not be used for
anything but loopback benchmarking.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

KeyKind = Literal["rsa", "ecdsa"]
HOSTNAME = "mx.bench.test"


@dataclass(frozen=True)
class CertPair:
    kind: KeyKind
    cert: Path
    key: Path


def make_cert(workdir: Path, kind: KeyKind) -> CertPair:
    """Create (once per work directory) a self-signed cert of ``kind`` for mx.bench.test."""
    cert_path, key_path = workdir / f"{kind}.crt", workdir / f"{kind}.key"
    if cert_path.exists() and key_path.exists():
        return CertPair(kind, cert_path, key_path)
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTNAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOSTNAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    workdir.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o644)  # smtp targets may drop privileges; this key guards nothing
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertPair(kind, cert_path, key_path)
