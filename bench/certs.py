"""Throwaway self-signed server certificates for the TLS workloads (RSA-2048, ECDSA P-256).

Writes PEM files into the run's work directory. It must not be used for
anything but loopback benchmarking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mxgate_gateway.dev import SigningKey, self_signed_pem

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
    key: SigningKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    cert_pem, key_pem = self_signed_pem(key, HOSTNAME, [x509.DNSName(HOSTNAME)], days=2)
    workdir.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o644)  # smtp targets may drop privileges; this key guards nothing
    cert_path.write_bytes(cert_pem)
    return CertPair(kind, cert_path, key_path)
