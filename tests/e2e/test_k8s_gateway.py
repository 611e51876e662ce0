"""End to end: TLSPolicies applied with kubectl → operator (ServiceAccount token) → policy
ConfigMap → kubelet-style mount → a local `mxgate gateway` that mail then obeys → /report →
each policy's status.observed.

The gateway runs the chart's own command, args and config ConfigMap; loopback forces only
the listen ports and the TLS file paths (set through gateway.extraConfig) and the report
port the operator dials. cert-manager is real too: its own controllers (built from its Go
module) issue the operator's Certificate from a CA Issuer, and the kubelet part mounts the
Secret they write.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from eventually import eventually
from kubeplane.certmanager import CertManager
from kubeplane.controlplane import free_port
from kubeplane.kubelet import LocalKubelet
from kubeplane.plugin import Runner, TokenMinter
from kubeplane.release import Release, install, uninstall
from kubeplane.workloads import Workload, operator_workload, venv_command
from mtapeers.recorder import Recorder

CONVERGE_S = 30.0
HOST = "mx1.example.test"
POLICIES = """
apiVersion: mxgate.io/v1alpha1
kind: TLSPolicy
metadata: {name: partners}
spec:
  mode: require
  listener: public-mx
  priority: 100
  scope: {senderDomains: [bank.example]}
  certificate:
    issuerRef: {name: ca, kind: Issuer}
    dnsNames: [mx1.example.test]
---
apiVersion: mxgate.io/v1alpha1
kind: TLSPolicy
metadata: {name: measure}
spec:
  mode: audit
  listener: public-mx
  priority: 10
  scope: {recipientDomains: [accepted.test]}
"""


@dataclass(frozen=True)
class Sent:
    """What an SMTP client saw: accepted or the refusal code, and the served certificate."""

    accepted: bool
    code: int
    peer_names: tuple[str, ...] = ()


@dataclass
class MailStack:
    release: Release
    kubectl: Runner
    kubelet: LocalKubelet
    gateway: Workload
    operator: Workload
    sink: Recorder  # the internal MTA: a recording aiosmtpd server
    ca_pem: bytes
    smtp_port: int
    http_port: int

    @property
    def ns(self) -> str:
        return self.release.namespace

    def send(self, sender: str, rcpt: str, *, starttls: bool) -> Sent:
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=15) as client:
            client.ehlo("client.example")
            names: tuple[str, ...] = ()
            if starttls:
                ctx = ssl.create_default_context()
                ctx.load_verify_locations(cadata=self.ca_pem.decode())
                ctx.check_hostname = False  # we dial 127.0.0.1; the SAN is checked below
                client.starttls(context=ctx)
                client.ehlo("client.example")
                peer = client.sock.getpeercert()  # type: ignore[union-attr]
                names = tuple(v for k, v in peer.get("subjectAltName", ()) if k == "DNS")
            body = f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: e2e\r\n\r\nhello\r\n"
            try:
                client.sendmail(sender, [rcpt], body)
            except smtplib.SMTPSenderRefused as exc:
                return Sent(False, exc.smtp_code, names)
            except smtplib.SMTPRecipientsRefused as exc:
                return Sent(False, next(iter(exc.recipients.values()))[0], names)
            return Sent(True, 250, names)

    def observed(self, name: str) -> dict[str, Any]:
        pol = self.kubectl.json("get", "tlspolicy", name, "-n", self.ns)
        return dict((pol.get("status") or {}).get("observed") or {})

    def report(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.http_port}/report"
        with urllib.request.urlopen(url, timeout=5) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data


def register_gateway_pod(kubectl: Runner, release: Release) -> None:
    """Store a Pod made from the gateway Deployment's template, Running at 127.0.0.1.

    No scheduler or kubelet runs, so the test records what they would: the pod and its IP.
    """
    template = release.deployment("gateway")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{release.fullname}-gateway-local",
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }
    kubectl("create", "-n", release.namespace, "-f", "-", stdin=json.dumps(pod))
    status = {"status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}}
    kubectl(
        "patch",
        "pod",
        pod["metadata"]["name"],
        "-n",
        release.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


@pytest.fixture(scope="module")
def mail(
    helm: Runner,
    kubectl: Runner,
    kube_token: TokenMinter,
    cert_manager: CertManager,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MailStack]:
    """Chart + cert-manager + operator (SA token) + policies + kubelet-mounted local gateway."""
    root = tmp_path_factory.mktemp("pod")
    sink = Recorder(root / "sink")
    sink_port, smtp_port, http_port = free_port(), free_port(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    controller.start()
    tls_dir = root / "etc/mxgate/tls"
    release = install(helm, kubectl, [
        "--set", "operator.reportInterval=2",
        "--set", f"gateway.upstreams[0].address=127.0.0.1:{sink_port}",
        "--set", "gateway.upstreams[0].tls=none",
        "--set", f"gateway.extraConfig.listen.smtp=127.0.0.1:{smtp_port}",
        "--set", f"gateway.extraConfig.listen.http=127.0.0.1:{http_port}",
        "--set", f"gateway.extraConfig.listen.public=127.0.0.1:{free_port()}",
        "--set", f"gateway.extraConfig.tls.cert={tls_dir}/tls.crt",
        "--set", f"gateway.extraConfig.tls.key={tls_dir}/tls.key",
        "--set", "gateway.log.format=console",
    ])  # fmt: skip
    sa = kube_token.kubeconfig(release.namespace, f"{release.fullname}-operator")
    operator = operator_workload(
        release, sa, tmp_path_factory.mktemp("operator"),
        {"MXGATE_GATEWAY_HTTP_PORT": str(http_port)},  # one IP for every pod on loopback
    )  # fmt: skip
    gateway: Workload | None = None
    stack = ExitStack()
    try:
        stack.enter_context(cert_manager.running(release.namespace))
        ca_pem = cert_manager.ca_issuer(release.namespace, "ca")  # the policies' issuerRef
        operator.start()
        kubectl("apply", "-n", release.namespace, "-f", "-", stdin=POLICIES)
        cert = eventually(
            lambda: (kubectl.json("get", "certificates", "-n", release.namespace)["items"]
                     or [None])[0],
            CONVERGE_S, "the operator's Certificate",
        )  # fmt: skip
        secret = cert["spec"]["secretName"]
        eventually(
            lambda: (
                True
                if kubectl("get", "secret", secret, "-n", release.namespace, check=False).returncode
                == 0
                else None
            ),
            CONVERGE_S,
            f"cert-manager to write Secret {secret}",
        )
        kubelet = LocalKubelet(
            kubectl, release.namespace, release.pod_spec("gateway"), "gateway", root
        )
        eventually(
            lambda: _mounted(kubelet, "policy", "tls"),
            CONVERGE_S,
            "the policy ConfigMap and TLS Secret to be mounted",
        )
        container = release.container("gateway")
        argv = [
            *venv_command(container["command"]),
            *(kubelet.local_path(a) for a in container.get("args", [])),
        ]
        gateway = Workload(
            "gateway",
            argv,
            release.env("gateway"),
            root / "gateway.log",
            f"http://127.0.0.1:{http_port}/readyz",
        )
        gateway.start()
        register_gateway_pod(kubectl, release)
        yield MailStack(
            release, kubectl, kubelet, gateway, operator, sink, ca_pem, smtp_port, http_port
        )
    finally:
        if gateway is not None:
            gateway.stop()
        operator.stop()
        stack.close()
        controller.stop()
        uninstall(helm, release)


def _mounted(kubelet: LocalKubelet, *volumes: str) -> bool | None:
    """Sync once; True when every named volume has been projected (``..data`` exists)."""
    kubelet.sync()
    done = all((kubelet.volume(v).local / "..data").is_symlink() for v in volumes)
    return True if done else None


@dataclass(frozen=True)
class Traffic:
    plain_partner: Sent
    tls_partner: Sent
    plain_other: Sent


@pytest.fixture(scope="module")
def traffic(mail: MailStack) -> Traffic:
    """Three messages: partner without TLS, partner with STARTTLS, someone else without TLS."""
    return Traffic(
        plain_partner=mail.send("ceo@bank.example", "ops@accepted.test", starttls=False),
        tls_partner=mail.send("cfo@bank.example", "ops@accepted.test", starttls=True),
        plain_other=mail.send("news@other.example", "ops@accepted.test", starttls=False),
    )


def test_gateway_reads_the_policy_through_a_kubelet_style_mount(mail: MailStack) -> None:
    """The gateway's policy file is the operator's ConfigMap, behind an atomic ``..data`` link."""
    vol = mail.kubelet.volume("policy")
    cm = mail.kubectl.json("get", "configmap", vol.source, "-n", mail.ns)
    data_link = vol.local / "..data"
    assert data_link.is_symlink()
    assert data_link.readlink().name.startswith("..")
    assert (vol.local / "policy.json").read_text() == cm["data"]["policy.json"]
    assert str(vol.local / "policy.json") in mail.gateway.argv


def test_plaintext_mail_from_the_partner_is_refused(mail: MailStack, traffic: Traffic) -> None:
    """require for bank.example: without STARTTLS the sender gets 530 and nothing is relayed."""
    assert traffic.plain_partner == Sent(False, 530)
    assert "ceo@bank.example" not in mail.sink.senders()


def test_starttls_mail_from_the_partner_is_relayed_with_the_issued_certificate(
    mail: MailStack, traffic: Traffic
) -> None:
    """With STARTTLS the gateway serves what cert-manager issued (CA-verified) and relays."""
    assert traffic.tls_partner == Sent(True, 250, (HOST,))
    assert "cfo@bank.example" in mail.sink.senders()


def test_plaintext_mail_from_others_is_relayed_and_counted_by_the_audit(
    mail: MailStack, traffic: Traffic
) -> None:
    """audit refuses nothing: other plaintext mail is relayed and counted as would-refuse."""
    assert traffic.plain_other == Sent(True, 250)
    assert "news@other.example" in mail.sink.senders()
    rows = {r["rule"]: r for r in mail.report()["since_start"]["rules"]}
    assert rows[f"{mail.ns}/measure"]["would_refuse"] == 1
    assert rows[f"{mail.ns}/partners"]["refuse"] == 1


def test_policy_status_shows_the_observed_effect(mail: MailStack, traffic: Traffic) -> None:
    """After the operator's report timer, each policy's status says what it refused or would."""

    def observed() -> tuple[dict[str, Any], dict[str, Any]] | None:
        partners, measure = mail.observed("partners"), mail.observed("measure")
        fresh = partners.get("refused", 0) >= 1 and measure.get("wouldRefuse", 0) >= 1
        return (partners, measure) if fresh else None

    partners, measure = eventually(observed, CONVERGE_S, "observed effect in both statuses")
    assert (partners["gateways"], partners["refused"], partners["wouldRefuse"]) == (1, 1, 0)
    assert (measure["gateways"], measure["refused"], measure["wouldRefuse"]) == (1, 0, 1)
    # Every gateway report was read (no "unreadable" note); the window is stated (issue 16 item 7).
    assert partners["message"] == "last 60 minutes, summed over the 1 gateway(s) that answered"
    assert partners["windowMinutes"] == 60


def test_policy_change_reaches_mail_through_configmap_and_mount(
    mail: MailStack, traffic: Traffic
) -> None:
    """Widening a policy re-renders the ConfigMap; after the kubelet's swap, mail obeys it."""
    mail.kubectl(
        "patch",
        "tlspolicy",
        "partners",
        "-n",
        mail.ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"scope": {"senderDomains": ["bank.example", "trust.example"]}}}),
    )
    before = mail.send("it@trust.example", "ops@accepted.test", starttls=False)
    assert before.accepted  # still the old policy: the mount has not been updated yet
    eventually(
        lambda: True if "policy" in mail.kubelet.sync() else None,
        CONVERGE_S,
        "the re-rendered ConfigMap to reach the mount",
    )

    def refused() -> Sent | None:
        sent = mail.send("it@trust.example", "ops@accepted.test", starttls=False)
        return None if sent.accepted else sent

    assert eventually(refused, CONVERGE_S, "the gateway to reload the policy") == Sent(False, 530)


def test_certificate_issued_by_cert_manager_makes_the_policy_ready(mail: MailStack) -> None:
    """cert-manager's Ready and notAfter reach the policy: CertificateReady and Ready True."""

    def ready() -> dict[str, Any] | None:
        pol = mail.kubectl.json("get", "tlspolicy", "partners", "-n", mail.ns)["status"]
        conds = {c["type"]: c["status"] for c in pol.get("conditions", [])}
        return pol if conds.get("CertificateReady") == "True" else None

    status = eventually(ready, CONVERGE_S, "CertificateReady=True on partners")
    conds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conds["Ready"] == ("True", "Ready")
    cert = mail.kubectl.json("get", "certificate", status["certificate"]["name"], "-n", mail.ns)
    assert status["certificate"]["notAfter"] == cert["status"]["notAfter"]
