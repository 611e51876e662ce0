"""A gateway pod starts before the operator and cert-manager have produced anything, as the
chart promises by mounting the policy ConfigMap and the TLS Secret ``optional: true``, then
picks each up when the kubelet projects it, and serves a renewed certificate after a swap.

The gateway runs the chart's command and config (loopback ports and TLS paths through
gateway.extraConfig); the test writes the Secret and the ConfigMap in the operator's and
cert-manager's place, and plays the kubelet (timestamped dir + atomic ``..data`` swap).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from kubeplane.controlplane import free_port
from kubeplane.kubelet import LocalKubelet
from kubeplane.plugin import Runner
from kubeplane.release import Release, install
from kubeplane.workloads import Workload, eventually, venv_command
from mxgate_gateway.config.model import PolicyDocument

CONVERGE_S = 30.0
HOST = "mx1.example.test"


@dataclass
class Pod:
    release: Release
    kubectl: Runner
    kubelet: LocalKubelet
    gateway: Workload
    smtp_port: int
    http_port: int
    workdir: Path

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5):
                return 200
        except urllib.error.HTTPError as exc:
            return exc.code

    def secret_name(self) -> str:
        vol = self.kubelet.volume("tls")
        return vol.source

    def issue(self, ca: trustme.CA) -> None:
        """Write (or renew) the TLS Secret the chart mounts, as cert-manager would."""
        leaf = ca.issue_cert(HOST)
        crt, key = self.workdir / "tls.crt", self.workdir / "tls.key"
        crt.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        manifest = self.kubectl(
            "create", "secret", "tls", self.secret_name(), "-n", self.release.namespace,
            f"--cert={crt}", f"--key={key}", "--dry-run=client", "-o", "json",
        ).stdout  # fmt: skip
        self.kubectl("apply", "-n", self.release.namespace, "-f", "-", stdin=manifest)

    def served_issuer(self, ca: trustme.CA) -> bool:
        """True if STARTTLS now serves a certificate that chains to ``ca``."""
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        ctx.check_hostname = False
        try:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as client:
                client.starttls(context=ctx)
            return True
        except (ssl.SSLError, smtplib.SMTPException):
            return False


@pytest.fixture(scope="module")
def pod(helm: Runner, kubectl: Runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    """The chart's gateway started on empty optional volumes (no operator, no certificate)."""
    root = tmp_path_factory.mktemp("pod")
    sink_port, smtp_port, http_port = free_port(), free_port(), free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=sink_port)
    controller.start()
    tls_dir = root / "etc/mxgate/tls"
    release = install(helm, kubectl, [
        "--set", f"gateway.upstreams[0].address=127.0.0.1:{sink_port}",
        "--set", "gateway.upstreams[0].tls=none",
        "--set", f"gateway.extraConfig.listen.smtp=127.0.0.1:{smtp_port}",
        "--set", f"gateway.extraConfig.listen.http=127.0.0.1:{http_port}",
        "--set", f"gateway.extraConfig.tls.cert={tls_dir}/tls.crt",
        "--set", f"gateway.extraConfig.tls.key={tls_dir}/tls.key",
        "--set", "gateway.log.format=console",
    ])  # fmt: skip
    kubelet = LocalKubelet(kubectl, release.namespace, release.pod_spec("gateway"), "gateway", root)
    assert kubelet.sync() == ["config"]  # policy and tls: optional, absent, left empty
    container = release.container("gateway")
    argv = [
        *venv_command(container["command"]),
        *(kubelet.local_path(a) for a in container.get("args", [])),
    ]
    gateway = Workload("gateway", argv, release.env("gateway"), root / "gateway.log",
                       f"http://127.0.0.1:{http_port}/livez")  # fmt: skip
    try:
        gateway.start()
        yield Pod(release, kubectl, kubelet, gateway, smtp_port, http_port, root)
    finally:
        gateway.stop()
        controller.stop()


def test_gateway_is_live_but_not_ready_before_its_certificate(pod: Pod) -> None:
    """With the TLS Secret not issued yet the process runs (/livez 200) but is not ready."""
    assert pod.status("/livez") == 200
    assert pod.status("/readyz") == 503


def test_first_certificate_makes_it_ready_and_serves_starttls(pod: Pod) -> None:
    """Once the Secret exists and the kubelet projects it, /readyz is 200 and STARTTLS works."""
    first = trustme.CA()
    pod.issue(first)
    assert "tls" in pod.kubelet.sync()
    eventually(lambda: True if pod.status("/readyz") == 200 else None, CONVERGE_S, "ready")
    eventually(lambda: True if pod.served_issuer(first) else None, CONVERGE_S, "the first cert")


def test_renewed_certificate_is_served_after_the_kubelet_swap(pod: Pod) -> None:
    """A renewed Secret (new CA here, so it is told apart) is served without a restart."""
    renewed = trustme.CA()
    pod.issue(renewed)
    assert "tls" in pod.kubelet.sync()
    eventually(lambda: True if pod.served_issuer(renewed) else None, CONVERGE_S, "renewed cert")
    assert pod.gateway.proc is not None
    assert pod.gateway.proc.poll() is None


def test_first_policy_configmap_is_picked_up(pod: Pod) -> None:
    """When the policy ConfigMap first appears, the running gateway starts enforcing it."""
    rule = {
        "id": f"{pod.release.namespace}/partners",
        "mode": "require",
        "listener": "public-mx",
        "priority": 100,
        "scope": {"sender_domains": ["bank.example"]},
    }
    doc = PolicyDocument.model_validate({"version": 1, "rules": [rule]})
    policy_json = json.dumps(doc.model_dump(mode="json", exclude_none=True))
    name = pod.kubelet.volume("policy").source
    pod.kubectl("create", "configmap", name, "-n", pod.release.namespace,
                f"--from-literal=policy.json={policy_json}")  # fmt: skip
    assert "policy" in pod.kubelet.sync()

    def refused() -> int | None:
        with smtplib.SMTP("127.0.0.1", pod.smtp_port, timeout=10) as client:
            client.ehlo("client.example")
            code, _ = client.mail("ceo@bank.example")
        return code if code >= 400 else None

    assert eventually(refused, CONVERGE_S, "the policy to be enforced") == 530
