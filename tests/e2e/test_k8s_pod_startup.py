"""A gateway pod starts before the operator and cert-manager have produced anything, as the
chart promises by mounting the policy ConfigMap and the TLS Secret ``optional: true``, then
picks each up when the kubelet projects it, and serves a renewed certificate after a swap.

The gateway runs the chart's command and config (loopback ports and TLS paths through
gateway.extraConfig). The certificate is real cert-manager's (a Certificate for the Secret
the chart mounts, on a CA Issuer); the policy ConfigMap is written by the test in the
operator's place (the operator path itself is test_k8s_gateway.py); the test plays the
kubelet (timestamped dir + atomic ``..data`` swap).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from eventually import eventually
from kubeplane.certmanager import CertManager
from kubeplane.controlplane import free_port
from kubeplane.kubelet import LocalKubelet
from kubeplane.plugin import Runner
from kubeplane.release import Release, install, uninstall
from kubeplane.workloads import Workload, venv_command
from mxgate_gateway.config.model import PolicyDocument

CONVERGE_S = 30.0


@dataclass
class Pod:
    release: Release
    kubectl: Runner
    kubelet: LocalKubelet
    gateway: Workload
    smtp_port: int
    http_port: int
    ca_pem: bytes

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5):
                return 200
        except urllib.error.HTTPError as exc:
            return exc.code

    def request_certificate(self, dns_names: list[str]) -> None:
        """Apply a Certificate for the Secret the chart mounts (as the operator would)."""
        cert = {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": {"name": "gateway"},
            "spec": {
                "secretName": self.kubelet.volume("tls").source,
                "dnsNames": dns_names,
                "issuerRef": {"name": "ca", "kind": "Issuer"},
            },
        }
        self.kubectl("apply", "-n", self.release.namespace, "-f", "-", stdin=json.dumps(cert))

    def served(self) -> dict[str, Any] | None:
        """The certificate STARTTLS serves, if it chains to the CA Issuer's root; else None."""
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        ctx.check_hostname = False  # we dial 127.0.0.1; the tests check the SAN themselves
        try:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as client:
                client.starttls(context=ctx)
                peer: dict[str, Any] = client.sock.getpeercert()  # type: ignore[union-attr]
                return peer
        except (ssl.SSLError, smtplib.SMTPException, OSError):
            return None


def dns_names(peer: dict[str, Any]) -> set[str]:
    return {value for key, value in peer.get("subjectAltName", ()) if key == "DNS"}


@pytest.fixture(scope="module")
def pod(
    helm: Runner,
    kubectl: Runner,
    cert_manager: CertManager,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pod]:
    """The chart's gateway started on empty optional volumes; cert-manager ready to issue."""
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
        "--set", f"gateway.extraConfig.listen.public=127.0.0.1:{free_port()}",
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
    stack = ExitStack()
    try:
        stack.enter_context(cert_manager.running(release.namespace))
        ca_pem = cert_manager.ca_issuer(release.namespace, "ca")
        gateway.start()
        yield Pod(release, kubectl, kubelet, gateway, smtp_port, http_port, ca_pem)
    finally:
        gateway.stop()
        stack.close()
        controller.stop()
        uninstall(helm, release)


def test_gateway_is_live_but_not_ready_before_its_certificate(pod: Pod) -> None:
    """With the TLS Secret not issued yet the process runs (/livez 200) but is not ready."""
    assert pod.status("/livez") == 200
    assert pod.status("/readyz") == 503


def test_first_certificate_makes_it_ready_and_serves_starttls(pod: Pod) -> None:
    """Once cert-manager writes the Secret and the kubelet projects it, /readyz is 200 and
    STARTTLS serves that certificate."""
    pod.request_certificate(["mx1.example.test"])
    eventually(
        lambda: True if "tls" in pod.kubelet.sync() else None, CONVERGE_S, "the issued Secret"
    )
    eventually(lambda: True if pod.status("/readyz") == 200 else None, CONVERGE_S, "ready")
    peer = eventually(pod.served, CONVERGE_S, "STARTTLS with the issued certificate")
    assert dns_names(peer) == {"mx1.example.test"}


def test_renewed_certificate_is_served_after_the_kubelet_swap(pod: Pod) -> None:
    """A re-issued certificate (cert-manager, new SAN) is served without a restart."""
    before = eventually(pod.served, CONVERGE_S, "the first certificate")
    pod.request_certificate(["mx1.example.test", "mx2.example.test"])

    def renewed() -> dict[str, Any] | None:
        pod.kubelet.sync()
        peer = pod.served()
        return peer if peer and peer["serialNumber"] != before["serialNumber"] else None

    peer = eventually(renewed, CONVERGE_S, "the re-issued certificate to be served")
    assert dns_names(peer) == {"mx1.example.test", "mx2.example.test"}
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
