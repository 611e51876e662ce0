"""End to end on real pods: the image built from the Dockerfile, the unmodified chart installed
with helm on a one-node cluster (kubelet, containerd, kube-proxy; scripts/kube-node.sh),
cert-manager's own controllers, and Postfix from Debian packages as the upstream pod.

Only the image values and the chart's required values are set (plus a short report interval
so `kubectl get tlsp` shows the effect within seconds). Mail goes from this host through the
gateway Service's ClusterIP (kube-proxy) to the gateway pods, then through the Postfix
Service to the Postfix pod, whose Maildir is a hostPath this test reads.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from eventually import eventually
from kubeplane.certmanager import CertManager
from kubeplane.node import KubeNode
from kubeplane.plugin import Runner
from kubeplane.release import CHART, CRDS, new_namespace

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

HOST = "mx1.example.test"
RELEASE = "mx"
GATEWAY = f"{RELEASE}-mxgate-gateway"
CONVERGE_S = 90.0
MAIL_UID = 5000  # Postfix's virtual delivery owner in the Postfix pod (any uid >= 100)
POSTFIX = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: postfix}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: postfix}}}}
  template:
    metadata: {{labels: {{app: postfix}}}}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: postfix
          image: {image}
          imagePullPolicy: Never
          command: [/bin/sh, -ec]
          args:
            - |
              postconf -e compatibility_level=3.6 myhostname=upstream.test mydestination= \\
                inet_protocols=ipv4 mynetworks=0.0.0.0/0 maillog_file=/dev/stdout \\
                alias_maps= alias_database= virtual_mailbox_domains=accepted.test \\
                virtual_mailbox_base=/var/mail/box virtual_mailbox_maps=static:maildir/ \\
                virtual_uid_maps=static:{uid} virtual_gid_maps=static:{uid} \\
                smtpd_peername_lookup=no smtpd_banner='$myhostname ESMTP'
              postconf -F '*/*/chroot=n'
              exec /usr/sbin/postfix start-fg
          ports: [{{containerPort: 25, name: smtp}}]
          readinessProbe: {{tcpSocket: {{port: 25}}, periodSeconds: 2}}
          volumeMounts: [{{name: box, mountPath: /var/mail/box}}]
      volumes: [{{name: box, hostPath: {{path: {box}, type: Directory}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: postfix}}
spec:
  selector: {{app: postfix}}
  ports: [{{port: 25, targetPort: smtp, name: smtp}}]
"""
POLICY = """
apiVersion: mxgate.io/v1alpha1
kind: TLSPolicy
metadata: {{name: partners}}
spec:
  mode: {mode}
  listener: public-mx
  priority: 100
  scope: {{senderDomains: [bank.example]}}
  certificate:
    issuerRef: {{name: ca, kind: Issuer}}
    dnsNames: [{host}]
"""


@dataclass(frozen=True)
class Sent:
    """What an SMTP client saw: the final reply code, and the certificate's DNS names."""

    code: int
    peer_names: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.code == 250


@dataclass
class Cluster:
    node: KubeNode
    kubectl: Runner
    ns: str
    smtp_ip: str
    ca_pem: bytes
    maildir: Path

    def send(self, sender: str, subject: str, *, starttls: bool = False) -> Sent:
        """One message from this host to the gateway Service's ClusterIP, port 25."""
        names: tuple[str, ...] = ()
        try:
            with smtplib.SMTP(self.smtp_ip, 25, timeout=30) as client:
                client.ehlo("client.example")
                if starttls:
                    ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
                    ctx.check_hostname = False  # we dial the ClusterIP; the SAN is checked below
                    client.starttls(context=ctx)
                    client.ehlo("client.example")
                    peer = client.sock.getpeercert()  # type: ignore[union-attr]
                    names = tuple(v for k, v in peer.get("subjectAltName", ()) if k == "DNS")
                body = (
                    f"From: <{sender}>\r\nTo: <ops@accepted.test>\r\n"
                    f"Subject: {subject}\r\n\r\nhello\r\n"
                )
                client.sendmail(sender, ["ops@accepted.test"], body)
        except smtplib.SMTPResponseException as exc:
            return Sent(exc.smtp_code, names)
        except smtplib.SMTPRecipientsRefused as exc:
            return Sent(next(iter(exc.recipients.values()))[0], names)
        return Sent(250, names)

    def delivered(self) -> dict[str, list[bytes]]:
        """Messages in the Postfix pod's Maildir, by Subject."""
        out: dict[str, list[bytes]] = {}
        new = self.maildir / "maildir" / "new"
        for path in new.iterdir() if new.is_dir() else ():
            raw = path.read_bytes()
            out.setdefault(str(message_from_bytes(raw)["Subject"]), []).append(raw)
        return out

    def postfix_settled(self) -> dict[str, list[bytes]] | None:
        """The Maildir once the Postfix pod's queue is empty (every accepted copy delivered).

        Postfix says 250 to the gateway only after queueing, and the gateway says 250 to its
        client only after that, so an empty queue means every copy that could ever arrive is in
        the Maildir: counting then proves "exactly one", with no sleep.
        """
        queue = self.kubectl(
            "exec",
            "-n",
            self.ns,
            "deploy/postfix",
            "-c",
            "postfix",
            "--",
            "postqueue",
            "-p",
            check=False,
        )
        return self.delivered() if "Mail queue is empty" in queue.stdout else None

    def gateway_pods(self) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = self.kubectl.json(
            "get", "pods", "-n", self.ns, "-l", "app.kubernetes.io/component=gateway"
        )["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def exec(self, pod: str, *argv: str) -> Any:
        return self.kubectl("exec", "-n", self.ns, pod, "-c", "gateway", "--", *argv, check=False)

    def observed(self) -> dict[str, Any]:
        pol = self.kubectl.json("get", "tlspolicy", "partners", "-n", self.ns)
        return dict((pol.get("status") or {}).get("observed") or {})


def _ready(pod: dict[str, Any]) -> bool:
    conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return conds.get("Ready") == "True"


def adopt_crd(kubectl: Runner, ns: str) -> None:
    """On a reused node the kept CRDs of an earlier release exist: this release adopts them
    (helm's ownership metadata), so the chart installs with its defaults."""
    for crd in CRDS:
        if kubectl("get", "crd", crd, check=False).returncode != 0:
            continue
        kubectl("annotate", "crd", crd, "--overwrite", f"meta.helm.sh/release-name={RELEASE}",
                f"meta.helm.sh/release-namespace={ns}")  # fmt: skip


@pytest.fixture(scope="module")
def cluster(
    kube_node: KubeNode,
    node_kubectl: Runner,
    node_helm: Runner,
    node_cert_manager: CertManager,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Postfix pod + cert-manager + CA Issuer + `helm install` of the chart; gateway Ready."""
    kubectl = node_kubectl
    ns = new_namespace(kubectl)
    box = tmp_path_factory.mktemp("postfix-box")
    os.chown(box, MAIL_UID, MAIL_UID)
    box.chmod(0o755)
    manifest = POSTFIX.format(image=kube_node.images["mxgate-postfix"], uid=MAIL_UID, box=box)
    kubectl("apply", "-n", ns, "-f", "-", stdin=manifest)
    stack = ExitStack()
    try:
        stack.enter_context(node_cert_manager.running(ns))
        ca_pem = node_cert_manager.ca_issuer(ns, "ca")
        kubectl("rollout", "status", "-n", ns, "deploy/postfix", "--timeout=120s", timeout=130)
        postfix_ip = kubectl.json("get", "service", "postfix", "-n", ns)["spec"]["clusterIP"]
        repo, tag = kube_node.images["mxgate"].rsplit(":", 1)
        adopt_crd(kubectl, ns)
        node_helm(
            "install", RELEASE, str(CHART), "-n", ns,
            "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
            "--set", f"gateway.hostname={HOST}",
            "--set", "gateway.domains={accepted.test}",
            "--set", f"gateway.upstreams[0].address={postfix_ip}:25",
            "--set", "operator.reportInterval=2",
        )  # fmt: skip
        # The operator asks cert-manager for the certificate the policy names.
        kubectl("apply", "-n", ns, "-f", "-", stdin=POLICY.format(mode="audit", host=HOST))
        kubectl("rollout", "status", "-n", ns, f"deploy/{GATEWAY}", "--timeout=180s", timeout=190)
        smtp_ip = kubectl.json("get", "service", GATEWAY, "-n", ns)["spec"]["clusterIP"]
        # Ready pods are not yet a routed Service: kube-proxy programs the endpoints on its
        # own sync, and until then the ClusterIP refuses. Wait for a greeting through it.
        eventually(lambda: _greets(smtp_ip), 120, f"the Service {smtp_ip}:25 to greet")
        yield Cluster(kube_node, kubectl, ns, smtp_ip, ca_pem, box)
    finally:
        stack.close()
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _greets(ip: str) -> bool | None:
    """True once a connection to ``ip:25`` gets an SMTP greeting (None until then)."""
    try:
        with socket.create_connection((ip, 25), timeout=5) as sock:
            return True if sock.recv(4).startswith(b"220") else None
    except OSError:
        return None


def test_gateway_pods_become_ready_on_the_issued_certificate_without_a_restart(
    cluster: Cluster,
) -> None:
    """Operator → Certificate → cert-manager's Secret → kubelet mount → Ready, restarts 0."""
    certs = cluster.kubectl.json("get", "certificates", "-n", cluster.ns)["items"]
    ours = [c for c in certs if c["metadata"]["name"] != "ca-root"]  # the CA Issuer's own root
    assert [c["spec"]["secretName"] for c in ours] == [f"{RELEASE}-mxgate-tls"]
    assert [o["kind"] for o in ours[0]["metadata"]["ownerReferences"]] == ["TLSPolicy"]
    pods = cluster.gateway_pods()
    assert len(pods) == 2
    for pod in pods:
        assert _ready(pod)
        (status,) = pod["status"]["containerStatuses"]
        assert status["restartCount"] == 0, pod["metadata"]["name"]


def test_starttls_through_the_service_serves_the_issued_certificate(cluster: Cluster) -> None:
    """The handshake verifies against the CA Issuer's root and names the policy's host."""
    sent = cluster.send("someone@other.example", f"tls-{uuid.uuid4().hex}", starttls=True)
    assert sent == Sent(250, (HOST,))


def test_mail_through_the_services_lands_once_in_postfix_with_our_received_on_top(
    cluster: Cluster,
) -> None:
    subject = f"relay-{uuid.uuid4().hex}"
    assert cluster.send("someone@other.example", subject).accepted
    (message,) = eventually(
        lambda: cluster.delivered().get(subject), CONVERGE_S, "delivery at the Postfix pod"
    )
    received = [" ".join(h.split()) for h in message_from_bytes(message).get_all("Received")]
    assert "by upstream.test (Postfix)" in received[0]  # Postfix's own hop
    assert f"by {HOST} (mxgate) with ESMTP" in received[1]  # ours, right below it
    settled = eventually(cluster.postfix_settled, CONVERGE_S, "the Postfix pod's empty queue")
    assert len(settled[subject]) == 1


def test_policy_audit_then_require_reaches_the_pods_and_the_status(cluster: Cluster) -> None:
    """audit: plaintext from the partner passes and is counted; require: it is refused.

    The change travels operator → ConfigMap → the kubelet's volume update → both pods.
    """
    audit = cluster.send("ceo@bank.example", f"audit-{uuid.uuid4().hex}")
    assert audit.accepted
    eventually(
        lambda: cluster.observed() if cluster.observed().get("wouldRefuse", 0) >= 1 else None,
        CONVERGE_S,
        "wouldRefuse in the policy's status",
    )
    cluster.kubectl(
        "apply", "-n", cluster.ns, "-f", "-", stdin=POLICY.format(mode="require", host=HOST)
    )

    def refused_by_every_pod() -> bool | None:
        # Several tries: kube-proxy spreads connections over both pods.
        codes = {cluster.send("ceo@bank.example", f"req-{uuid.uuid4().hex}").code for _ in range(6)}
        return True if codes == {530} else None

    eventually(refused_by_every_pod, CONVERGE_S, "require to reach every gateway pod")
    observed = eventually(
        lambda: cluster.observed() if cluster.observed().get("refused", 0) >= 1 else None,
        CONVERGE_S,
        "refused in the policy's status",
    )
    assert observed["gateways"] == 2
    # What an admin sees: the table's columns come from the CRD's printer columns.
    header, row = cluster.kubectl("get", "tlsp", "partners", "-n", cluster.ns).stdout.splitlines()
    assert header.split()[:5] == ["NAME", "MODE", "LISTENER", "READY", "WOULD-REFUSE"]
    name, mode, listener, ready, share, _age = row.split()
    assert (name, mode, listener, ready) == ("partners", "require", "public-mx", "True")
    assert float(share) > 0


def test_gateway_security_context_is_enforced_by_the_runtime(cluster: Cluster) -> None:
    pod = cluster.gateway_pods()[0]["metadata"]["name"]
    assert cluster.exec(pod, "id", "-u").stdout.strip() == "10001"
    write = cluster.exec(pod, "touch", "/opt/mxgate/x")
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr
    status = cluster.exec(pod, "cat", "/proc/self/status").stdout
    caps = {
        line.split(":")[0]: line.split()[1]
        for line in status.splitlines()
        if line.startswith("Cap")
    }
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == "0000000000000000"
    token = cluster.exec(pod, "ls", "/var/run/secrets/kubernetes.io/serviceaccount")
    assert token.returncode != 0


def test_rollout_restart_under_load_delivers_every_accepted_message_exactly_once(
    cluster: Cluster,
) -> None:
    """500 messages from 20 clients while `kubectl rollout restart` replaces both pods:
    every 250 is exactly one copy at Postfix, and nothing arrives twice."""
    run = uuid.uuid4().hex[:8]
    subjects = [f"load-{run}-{i:03d}" for i in range(500)]
    before = {p["metadata"]["name"] for p in cluster.gateway_pods()}
    started = threading.Event()

    def client(batch: list[str]) -> list[tuple[str, int]]:
        out = []
        for subject in batch:
            out.append((subject, cluster.send("load@other.example", subject).code))
            started.set()
            time.sleep(1.5)  # spread the load over the whole rollout
        return out

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(client, subjects[i::20]) for i in range(20)]
        started.wait(30)
        cluster.kubectl("rollout", "restart", "-n", cluster.ns, f"deploy/{GATEWAY}")
        cluster.kubectl(
            "rollout", "status", "-n", cluster.ns, f"deploy/{GATEWAY}", "--timeout=180s",
            timeout=190,
        )  # fmt: skip
        rolled_during_load = not all(f.done() for f in futures)
        results = dict(r for f in futures for r in f.result())
    after = {p["metadata"]["name"] for p in cluster.gateway_pods()}
    assert rolled_during_load
    assert before.isdisjoint(after)
    accepted = {s for s, code in results.items() if code == 250}

    def settled() -> dict[str, list[bytes]] | None:
        got = cluster.postfix_settled()
        return got if got is not None and accepted <= got.keys() else None

    delivered = eventually(settled, CONVERGE_S, "every accepted message at Postfix")
    copies = {s: len(delivered.get(s, [])) for s in subjects}
    assert {s: n for s, n in copies.items() if s in accepted and n != 1} == {}
    assert {s: n for s, n in copies.items() if n > 1} == {}
    refused = {code for s, code in results.items() if code != 250}
    assert len(accepted) >= 450, (len(accepted), refused)
    print(json.dumps({"accepted": len(accepted), "other": sorted(refused)}))
