"""Run etcd and kube-apiserver on 127.0.0.1 with per-run ports, data dirs and credentials.

Starts both as child processes, waits for /readyz, writes an admin kubeconfig, and stops
them by PID. It must not bind beyond loopback, touch ~/.kube, or leave processes behind.
"""

from __future__ import annotations

import ctypes
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from eventually import eventually
from kubeplane.tools import Tools
from mtapeers.procs import terminate

READY_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1
ISSUER = "https://kubernetes.default.svc.cluster.local"


class ControlPlaneError(RuntimeError):
    """etcd or kube-apiserver did not come up; the message carries their log tails."""


def free_port() -> int:
    """A loopback port that was free a moment ago (the servers cannot report port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """preexec_fn: the child is SIGKILLed if pytest dies (even SIGKILLed), never orphaned."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str, namespace: str) -> Path:
    """Write a single-context kubeconfig that authenticates with a bearer token."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubeplane",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": "user", "user": {"token": token}}],
        "contexts": [
            {
                "name": "kubeplane",
                "context": {"cluster": "kubeplane", "user": "user", "namespace": namespace},
            }
        ],
        "current-context": "kubeplane",
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """etcd + kube-apiserver owned by one test session."""

    tools: Tools
    workdir: Path
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    server: str = ""
    etcd_url: str = ""
    ca_file: Path = field(default_factory=Path)
    kubeconfig: Path = field(default_factory=Path)
    startup_seconds: float = 0.0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        begin = time.monotonic()
        try:
            self._start_etcd()
            self._start_apiserver()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - begin

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        log.close()
        self._procs.append(proc)
        return proc

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        proc = self._spawn(
            "etcd",
            [
                str(self.tools.etcd),
                "--name=kubeplane",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=kubeplane={peer_url}",
                "--log-level=warn",
            ],
        )
        self._wait(proc, "etcd", f"{self.etcd_url}/health", context=None)

    def _start_apiserver(self) -> None:
        certs = self.workdir / "certs"
        certs.mkdir()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        sa_key = certs / "sa.key"
        sa_pub = certs / "sa.pub"
        sa_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        sa_pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        tokens = certs / "tokens.csv"
        tokens.write_text(f'{self.admin_token},admin,admin,"system:masters"\n', encoding="utf-8")
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        proc = self._spawn(
            "kube-apiserver",
            [
                str(self.tools.kube_apiserver),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={certs}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ],
        )
        # The serving certificate is self-signed into --cert-dir once the server starts.
        self.ca_file = certs / "apiserver.crt"
        ca_file = self.ca_file

        def cert_written() -> bool:
            if proc.poll() is not None:
                raise ControlPlaneError(f"kube-apiserver exited:\n{self._log('kube-apiserver')}")
            return ca_file.exists()

        eventually(
            cert_written,
            READY_TIMEOUT_S,
            lambda: f"kube-apiserver to write its cert:\n{self._log('kube-apiserver')}",
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        self._wait(proc, "kube-apiserver", f"{self.server}/readyz", context=context)
        self.kubeconfig = write_kubeconfig(
            self.workdir / "admin.kubeconfig",
            self.server,
            self.ca_file,
            self.admin_token,
            "default",
        )

    def _log(self, name: str) -> str:
        return _tail(self.workdir / f"{name}.log")

    def _wait(
        self,
        proc: subprocess.Popen[bytes],
        name: str,
        url: str,
        context: ssl.SSLContext | None,
    ) -> None:

        def ready() -> bool:
            if proc.poll() is not None:
                raise ControlPlaneError(f"{name} exited {proc.returncode}:\n{self._log(name)}")
            request = urllib.request.Request(url)
            if context is not None:
                request.add_header("Authorization", f"Bearer {self.admin_token}")
            with urllib.request.urlopen(request, timeout=2, context=context) as resp:
                return bool(resp.status == 200)

        eventually(
            ready,
            READY_TIMEOUT_S,
            lambda: f"{name} to be ready at {url}:\n{self._log(name)}",
            interval=0.2,
            ignore=(OSError,),
        )

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd, by PID: SIGTERM, then SIGKILL after 10 s."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                terminate(proc, 10)
        self._procs.clear()
