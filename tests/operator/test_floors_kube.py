"""Administrators' floors against a real kube-apiserver (issue 18 item 6).

An author with rights on ``tlspolicies`` only writes a more specific opportunistic rule
for a domain the administrator requires TLS for. With namespaced policies alone the
author's rule wins (the defect, shown first); a ClusterTLSPolicy floor holds. The real
``mxgate-operator`` renders the ConfigMap; the gateway's own loader reads it from a file
and the gateway's policy engine decides.
"""

from __future__ import annotations

import contextlib
import json
import smtplib
import subprocess
import urllib.request
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import (
    CLUSTER_CRD,
    Deployed,
    FakeGatewayReports,
    install_crd,
    policy_manifest,
    remove_crd,
    running_operator,
)

from eventually import eventually
from kubeplane.plugin import Runner
from mtapeers.gatewayproc import MXGATE
from mtapeers.ports import free_port
from mtapeers.procs import terminate
from mxgate_gateway.config.loader import load_config
from mxgate_gateway.config.model import Listener
from mxgate_gateway.policy import Action, Decision, SessionFacts, decide_rcpt

CONFIGMAP = "mxgate-policy"
D = "accepted.test"
CERT = {"issuerRef": {"name": "ca", "kind": "Issuer"}, "dnsNames": ["mx1.example.test"]}
PLAINTEXT = SessionFacts(ip_address("203.0.113.9"), None, Listener.PUBLIC_MX)


@pytest.fixture(scope="module")
def crds(kubectl: Runner, cert_manager_crds: Path) -> Iterator[None]:
    created = install_crd(kubectl)
    created_cluster = install_crd(kubectl, CLUSTER_CRD)
    yield
    if created_cluster:
        remove_crd(kubectl, "clustertlspolicies.mxgate.io")
    if created:
        remove_crd(kubectl)


@pytest.fixture
def deployed(
    crds: None, kubectl: Runner, kubeconfig: Path, kube_namespace: str, tmp_path: Path
) -> Iterator[Deployed]:
    """The operator for this test's namespace, once its (empty) ConfigMap exists."""
    reports = FakeGatewayReports()
    log = tmp_path / "operator.log"
    env = {"MXGATE_REPORT_URLS": reports.url, "MXGATE_REPORT_INTERVAL": "600"}
    try:
        with running_operator(kubeconfig, kube_namespace, log, **env):
            d = Deployed(kube_namespace, kubectl, reports, log)
            d.wait("the policy ConfigMap", lambda: document(d) is not None)
            yield d
    finally:
        reports.close()


@pytest.fixture
def cluster_policies(kubectl: Runner) -> Iterator[list[str]]:
    """Names of ClusterTLSPolicies the test created; deleted afterwards (they are global)."""
    names: list[str] = []
    yield names
    for name in names:
        kubectl("delete", "clustertlspolicy", name, "--wait=true", check=False)


def document(d: Deployed) -> dict[str, Any] | None:
    found = d.kubectl("get", "configmap", CONFIGMAP, "-n", d.namespace, "-o", "json", check=False)
    if found.returncode != 0:
        return None
    return json.loads(json.loads(found.stdout)["data"]["policy.json"])  # type: ignore[no-any-return]


def gateway_decision(d: Deployed, tmp_path: Path) -> Decision:
    """What a gateway loading the rendered ConfigMap decides for plaintext mail to D."""
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"hostname": "mx.test", "domains": [D], "upstreams": [{"address": "127.0.0.1:25"}]}
        )
    )
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(document(d)))
    return decide_rcpt(load_config(config, policy).policy, PLAINTEXT, "sender.example", D)


def ids(d: Deployed, key: str) -> set[str]:
    return {r["id"] for r in (document(d) or {}).get(key, [])}


def test_an_administrators_floor_holds_against_a_more_specific_author_rule(
    deployed: Deployed, cluster_policies: list[str], tmp_path: Path
) -> None:
    """Namespaced only: the author's opportunistic rule for D with clientCIDRs 0.0.0.0/0, ::/0
    outranks the administrator's require for D at the highest priority, and plaintext mail
    is accepted. With the administrator's require as a ClusterTLSPolicy, the gateway refuses
    it; the floor is Accepted and Ready, with an event; deleting it lifts it within seconds."""
    d = deployed
    admin = policy_manifest(
        "admin",
        {"mode": "require", "priority": 1_000_000, "scope": {"recipientDomains": [D]},
         "certificate": CERT},
    )  # fmt: skip
    author = policy_manifest(
        "author",
        {"mode": "opportunistic", "scope": {"recipientDomains": [D],
                                            "clientCIDRs": ["0.0.0.0/0", "::/0"]}},
    )  # fmt: skip
    for manifest in (admin, author):
        d.kubectl("apply", "-n", d.namespace, "-f", "-", stdin=json.dumps(manifest))
    both = {f"{d.namespace}/admin", f"{d.namespace}/author"}
    d.wait("both rules", lambda: ids(d, "rules") == both)
    weak = gateway_decision(d, tmp_path)
    assert (weak.rule_id, weak.action) == (f"{d.namespace}/author", Action.ACCEPT)

    floor = {
        "apiVersion": "mxgate.io/v1alpha1",
        "kind": "ClusterTLSPolicy",
        "metadata": {"name": f"floor-{d.namespace}"},
        "spec": {"mode": "require", "scope": {"recipientDomains": [D]}},
    }
    cluster_policies.append(floor["metadata"]["name"])
    d.kubectl("apply", "-f", "-", stdin=json.dumps(floor))
    floor_id = f"cluster.mxgate.io/{floor['metadata']['name']}"
    d.wait("the floor in the ConfigMap", lambda: ids(d, "floors") == {floor_id}, timeout=10)
    assert ids(d, "rules") == both
    strong = gateway_decision(d, tmp_path)
    assert (strong.rule_id, strong.action) == (floor_id, Action.REFUSE)
    assert strong.reply == (530, "5.7.0 Must issue a STARTTLS command first")

    def status() -> dict[str, Any]:
        body = d.kubectl.json("get", "clustertlspolicy", floor["metadata"]["name"])
        return body.get("status") or {}  # type: ignore[no-any-return]

    d.wait("the floor's status", lambda: status().get("observedGeneration") == 1)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status()["conditions"]}
    assert conditions["Accepted"] == ("True", "Accepted")
    assert conditions["Ready"] == ("True", "Ready")
    assert conditions["StandardsCompliant"] == ("False", "RequireOnPublicMX")
    assert status()["floorId"] == floor_id

    def events() -> set[tuple[str, str]]:
        selector = f"--field-selector=involvedObject.name={floor['metadata']['name']}"
        items = d.kubectl.json("get", "events", "-n", "default", selector)["items"]
        return {(e["type"], e["reason"]) for e in items}

    d.wait(
        "the floor's events",
        lambda: {("Normal", "Ready"), ("Warning", "RequireOnPublicMX")} <= events(),
    )

    d.kubectl("delete", "clustertlspolicy", floor["metadata"]["name"], "--wait=false")
    d.wait("the floor to leave", lambda: ids(d, "floors") == set(), timeout=10)
    assert gateway_decision(d, tmp_path).action is Action.ACCEPT


def test_the_api_server_refuses_a_floor_without_scope(kubectl: Runner, crds: None) -> None:
    """The ClusterTLSPolicy CRD validates like TLSPolicy's: a scope is required and a CIDR
    with host bits is refused, with the same messages the operator mirrors; the examples
    are accepted."""
    for spec, fragment in (
        ({"mode": "require", "scope": {}}, "scope needs at least one of"),
        ({"mode": "audit", "scope": {"clientCIDRs": ["10.0.0.1/8"]}}, "no host bits set"),
    ):
        body = {
            "apiVersion": "mxgate.io/v1alpha1",
            "kind": "ClusterTLSPolicy",
            "metadata": {"name": "invalid-floor"},
            "spec": spec,
        }
        done = kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(body), check=False)
        assert done.returncode != 0
        assert fragment in done.stderr, done.stderr
    with contextlib.suppress(Exception):
        kubectl("delete", "clustertlspolicy", "invalid-floor", check=False)
    examples = Path(__file__).resolve().parents[2] / "examples"
    for path in sorted(examples.glob("clustertlspolicy-*.yaml")):
        kubectl("apply", "--dry-run=server", "-f", str(path))  # the examples are accepted


MX = "mx.accepted.test"


def publishing_floor(name: str, **spec: Any) -> dict[str, Any]:
    """A ClusterTLSPolicy auditing D and publishing an enforce MTA-STS policy for it."""
    return {
        "apiVersion": "mxgate.io/v1alpha1",
        "kind": "ClusterTLSPolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": "audit",
            "scope": {"recipientDomains": [D]},
            "mtaSts": {"mode": "enforce", "mx": [MX], "maxAge": 86400},
            **spec,
        },
    }


def claimant(name: str) -> dict[str, Any]:
    """A TLSPolicy publishing a different (testing) MTA-STS policy for D."""
    return policy_manifest(
        name,
        {"mode": "opportunistic", "scope": {"recipientDomains": [D]},
         "mtaSts": {"mode": "testing", "mx": [MX]}},
    )  # fmt: skip


def conditions_of(d: Deployed, kind: str, obj: str, *ns: str) -> dict[str, tuple[str, str, str]]:
    """(status, reason, message) by condition type, as stored."""
    found = (d.kubectl.json("get", kind, obj, *ns).get("status") or {}).get("conditions") or []
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in found}


@pytest.fixture
def publishing(
    crds: None, kubectl: Runner, kubeconfig: Path, kube_namespace: str, tmp_path: Path
) -> Iterator[Deployed]:
    """The operator with the chart's MTA-STS allowlists: the gateway's domains and names."""
    reports = FakeGatewayReports()
    log = tmp_path / "operator.log"
    env = {
        "MXGATE_REPORT_URLS": reports.url,
        "MXGATE_REPORT_INTERVAL": "600",
        "MXGATE_GATEWAY_DOMAINS": f"{D},other.test",
        "MXGATE_ALLOWED_DNS_NAMES": MX,
    }
    try:
        with running_operator(kubeconfig, kube_namespace, log, **env):
            d = Deployed(kube_namespace, kubectl, reports, log)
            d.wait("the policy ConfigMap", lambda: document(d) is not None)
            yield d
    finally:
        reports.close()


def test_a_cluster_policy_with_every_field_publishes_and_wins_its_domain(
    publishing: Deployed, cluster_policies: list[str]
) -> None:
    """A ClusterTLSPolicy using priority, mtaSts and tlsRpt passes strict field validation;
    the floor carries its priority, every gateway document serves its MTA-STS policy and
    its status lists the records. A TLSPolicy publishing a different policy for the domain
    is refused with MTASTSConflict naming the floor, and the floor's condition names it."""
    d = publishing
    d.kubectl("apply", "-n", d.namespace, "-f", "-", stdin=json.dumps(claimant("author")))
    d.wait("the author's MTA-STS", lambda: bool((document(d) or {}).get("mta_sts_policies")))
    name = f"publish-{d.namespace}"
    floor = publishing_floor(name, priority=42, tlsRpt={"rua": [f"mailto:tlsrpt@{D}"]})
    cluster_policies.append(name)
    d.kubectl("apply", "--validate=strict", "-f", "-", stdin=json.dumps(floor))
    floor_id = f"cluster.mxgate.io/{name}"
    d.wait("the floor in the ConfigMap", lambda: ids(d, "floors") == {floor_id}, timeout=10)
    doc = document(d) or {}
    assert doc["floors"][0]["priority"] == 42
    assert doc["mta_sts_policies"] == [
        {"domain": D, "max_age": 86400, "mode": "enforce", "mx": [MX]}
    ]
    assert ids(d, "rules") == set()  # the author's TLSPolicy lost its domain

    def status(kind: str, obj: str, *ns: str) -> dict[str, Any]:
        return d.kubectl.json("get", kind, obj, *ns).get("status") or {}  # type: ignore[no-any-return]

    def conditions(kind: str, obj: str, *ns: str) -> dict[str, tuple[str, str, str]]:
        return conditions_of(d, kind, obj, *ns)

    d.wait(
        "the author's conflict",
        lambda: (
            conditions("tlspolicy", "author", "-n", d.namespace).get("Accepted", ("",) * 3)[1]
            == "MTASTSConflict"
        ),
    )
    assert floor_id in conditions("tlspolicy", "author", "-n", d.namespace)["Accepted"][2]
    d.wait(
        "the floor's records",
        lambda: "MTASTSRecordsRendered" in conditions("clustertlspolicy", name),
    )
    mine = status("clustertlspolicy", name)
    assert mine["mtaSts"]["mode"] == "enforce"
    assert [r["name"] for r in mine["mtaSts"]["records"]] == [f"_mta-sts.{D}.", f"_smtp._tls.{D}."]
    rendered = conditions("clustertlspolicy", name)["MTASTSRecordsRendered"]
    assert rendered[:2] == ("True", "RecordsRendered")
    assert f"TLSPolicy {d.namespace}/author" in rendered[2]
    assert conditions("clustertlspolicy", name)["Ready"][:2] == ("True", "Ready")

    foreign = {**floor, "metadata": {"name": f"foreign-{d.namespace}"}}
    foreign["spec"] = {**floor["spec"], "scope": {"recipientDomains": ["foreign.test"]}}
    cluster_policies.append(foreign["metadata"]["name"])
    d.kubectl("apply", "--validate=strict", "-f", "-", stdin=json.dumps(foreign))
    d.wait(
        "the foreign domain refused",
        lambda: (
            conditions("clustertlspolicy", foreign["metadata"]["name"]).get(
                "MTASTSRecordsRendered", ("",) * 3
            )[:2]
            == ("False", "MTASTSNotAllowed")
        ),
    )
    assert len(ids(d, "floors")) == 2  # the floor itself still applies


def test_a_later_tlspolicy_claim_shows_on_the_floor_within_seconds(
    publishing: Deployed, cluster_policies: list[str]
) -> None:
    """The floor publishes first; a TLSPolicy then claims its domain with a different
    policy: the floor's MTASTSRecordsRendered message names it within seconds (the report
    pass is 600 s away), and stops naming it once that TLSPolicy is deleted."""
    d = publishing
    name = f"first-{d.namespace}"
    cluster_policies.append(name)
    d.kubectl("apply", "-f", "-", stdin=json.dumps(publishing_floor(name)))

    def rendered() -> tuple[str, str, str]:
        found = conditions_of(d, "clustertlspolicy", name)
        return found.get("MTASTSRecordsRendered", ("", "", ""))

    d.wait("the floor's records", lambda: rendered()[:2] == ("True", "RecordsRendered"))
    named = f"TLSPolicy {d.namespace}/late"
    assert named not in rendered()[2]
    d.kubectl("apply", "-n", d.namespace, "-f", "-", stdin=json.dumps(claimant("late")))
    d.wait("the floor naming the later claim", lambda: named in rendered()[2], timeout=10)
    assert rendered()[:2] == ("True", "RecordsRendered")  # the floor's claim still serves
    d.kubectl("delete", "tlspolicy", "late", "-n", d.namespace)
    d.wait("the claim gone from the floor", lambda: named not in rendered()[2], timeout=10)


@contextlib.contextmanager
def gateway_process(tmp_path: Path, policy: dict[str, Any]) -> Iterator[tuple[int, str]]:
    """The real ``mxgate gateway`` with the operator's rendered document as its --policy
    file (what the kubelet mounts): yields (SMTP port, /report URL); stopped by PID."""
    smtp, http = free_port(), free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "hostname": "mx.test",
                "listen": {"smtp": f"127.0.0.1:{smtp}", "http": f"127.0.0.1:{http}"},
                "domains": [D],
                "upstreams": [{"address": f"127.0.0.1:{free_port()}"}],  # never dialled here
            }
        )
    )
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(policy))
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(MXGATE), "gateway", "--config", str(config), "--policy", str(policy_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{http}"

    def ready() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")
        with urllib.request.urlopen(f"{base}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)

    try:
        eventually(ready, 20, "the gateway's /readyz", ignore=(OSError,))
        yield smtp, f"{base}/report"
    finally:
        terminate(proc)


def test_a_floors_status_counts_what_it_refused_at_the_gateways(
    crds: None,
    kubectl: Runner,
    kubeconfig: Path,
    kube_namespace: str,
    cluster_policies: list[str],
    tmp_path: Path,
) -> None:
    """Plaintext mail to D passes a real gateway loading the operator's document: the
    require floor refuses the recipient (530), the gateway's /report counts it under the
    floor's id, and the ClusterTLSPolicy's status.observed shows it with the TLSPolicy
    field names (summed over every gateway read; `kubectl get ctlsp` shows Would-Refuse %).
    Then report passes every second with nothing new write nothing."""
    name = f"counted-{kube_namespace}"
    floor_id = f"cluster.mxgate.io/{name}"
    floor = {
        "apiVersion": "mxgate.io/v1alpha1",
        "kind": "ClusterTLSPolicy",
        "metadata": {"name": name},
        "spec": {"mode": "require", "scope": {"recipientDomains": [D]}},
    }
    cluster_policies.append(name)
    kubectl("apply", "-f", "-", stdin=json.dumps(floor))
    with contextlib.ExitStack() as stack:
        ticks = FakeGatewayReports()  # a fake second gateway that saw nothing: counts ticks
        stack.callback(ticks.close)
        log = tmp_path / "operator.log"
        with contextlib.ExitStack() as first:  # the operator renders the floor...
            first.enter_context(running_operator(kubeconfig, kube_namespace, log))
            d = Deployed(kube_namespace, kubectl, ticks, log)
            d.wait("the floor in the ConfigMap", lambda: ids(d, "floors") == {floor_id})
        smtp, report_url = stack.enter_context(gateway_process(tmp_path, document(d) or {}))
        with smtplib.SMTP("127.0.0.1", smtp, timeout=15) as client:
            client.ehlo("client.example")
            client.mail("someone@sender.example")
            assert client.rcpt(f"ops@{D}")[0] == 530
        env = {
            "MXGATE_REPORT_URLS": f"{report_url},{ticks.url}",
            "MXGATE_REPORT_INTERVAL": "1",
        }
        # ...and, restarted to read this gateway's /report every second, counts what it did.
        stack.enter_context(running_operator(kubeconfig, kube_namespace, log, **env))

        def observed() -> dict[str, Any]:
            body = kubectl.json("get", "clustertlspolicy", name)
            return (body.get("status") or {}).get("observed") or {}  # type: ignore[no-any-return]

        d.wait("the floor's observed effect", lambda: observed().get("refused") == 1)
        got = observed()
        assert {k: got[k] for k in ("gateways", "matched", "plaintext", "refused")} == {
            "gateways": 2,
            "matched": 1,
            "plaintext": 1,
            "refused": 1,
        }
        assert (got["wouldRefuse"], got["wouldRefusePercent"], got["windowMinutes"]) == (0, 100, 60)
        assert got["message"] == "last 60 minutes, summed over the 2 gateway(s) that answered"
        header, *rows = kubectl("get", "ctlsp", name).stdout.splitlines()
        assert "WOULD-REFUSE %" in header
        assert any(r.startswith(f"{name} ") and " 100 " in f"{r} " for r in rows), rows

        def version() -> str:
            return str(kubectl.json("get", "clustertlspolicy", name)["metadata"]["resourceVersion"])

        ticks.wait_ticks(2)  # two whole passes after the count was written
        before = version()
        ticks.wait_ticks(4)
        assert version() == before  # idle passes write no status (issue 18 item 9)
