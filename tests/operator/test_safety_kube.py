"""Operator safety against a real kube-apiserver (issue 18): no TLSPolicy breaks the fleet.

Each test runs the real ``mxgate-operator`` for a fresh namespace. The report loop runs
every 600 s unless a test says otherwise, so whatever happens within seconds here is
watch-driven, never the loop's doing.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import (
    Deployed,
    FakeGatewayReports,
    apply_all,
    install_crd,
    policy_manifest,
    reconciled,
    remove_crd,
    running_operator,
)

from kubeplane.controlplane import free_port
from kubeplane.plugin import Runner
from mxgate_gateway.config.model import MAX_MTA_STS_POLICIES, Config, PolicyDocument
from mxgate_operator.render.gateway_config import DEFAULT_BUDGET_BYTES

CONFIGMAP = "mxgate-policy"


@pytest.fixture(scope="module")
def crd(kubectl: Runner, cert_manager_crds: Path) -> Iterator[None]:
    created = install_crd(kubectl)
    yield
    if created:
        remove_crd(kubectl)


def start(
    kubectl: Runner,
    kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    stack: Any,
    **env: str,
) -> Deployed:
    """The operator for ``namespace`` (closed with ``stack``), once its ConfigMap exists."""
    reports = stack.enter_context(_closing(FakeGatewayReports()))
    log = tmp_path / f"operator-{len(list(tmp_path.glob('operator-*.log')))}.log"
    settings = {"MXGATE_REPORT_URLS": reports.url, "MXGATE_REPORT_INTERVAL": "600", **env}
    stack.enter_context(running_operator(kubeconfig, namespace, log, **settings))
    d = Deployed(namespace, kubectl, reports, log)
    d.wait("the policy ConfigMap", lambda: document(d) is not None)
    return d


class _closing:
    def __init__(self, reports: FakeGatewayReports) -> None:
        self.reports = reports

    def __enter__(self) -> FakeGatewayReports:
        return self.reports

    def __exit__(self, *_: object) -> None:
        self.reports.close()


@pytest.fixture
def operator(
    crd: None, kubectl: Runner, kubeconfig: Path, kube_namespace: str, tmp_path: Path
) -> Iterator[Any]:
    """A factory: ``operator(**env)`` starts the operator for this test's namespace."""
    import contextlib  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        yield lambda **env: start(kubectl, kubeconfig, kube_namespace, tmp_path, stack, **env)


def document(d: Deployed) -> dict[str, Any] | None:
    found = d.kubectl("get", "configmap", CONFIGMAP, "-n", d.namespace, "-o", "json", check=False)
    if found.returncode != 0:
        return None
    return json.loads(json.loads(found.stdout)["data"]["policy.json"])  # type: ignore[no-any-return]


def rule_ids(d: Deployed) -> set[str]:
    doc = document(d) or {}
    return {r["id"].split("/", 1)[1] for r in doc.get("rules", [])}


def accepted(d: Deployed, name: str) -> tuple[str, str]:
    cond = d.conditions(name).get("Accepted") or {}
    return cond.get("status", ""), cond.get("reason", "")


def audit(name: str, recipients: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    scope = {"recipientDomains": recipients} if recipients else {"senderDomains": [f"{name}.t"]}
    return policy_manifest(name, {"mode": "audit", "scope": scope, **extra})


def test_deletes_and_edits_reach_the_configmap_within_seconds(operator: Any) -> None:
    """Item 8: a deleted policy's rule leaves the ConfigMap within seconds, an edit arrives
    within 3 s, with the report loop 600 s away and no finalizer on any policy."""
    d: Deployed = operator()
    apply_all(d.kubectl, d.namespace, [audit("keep"), audit("gone")])
    d.wait("both rules", lambda: rule_ids(d) == {"keep", "gone"})
    d.wait("both statuses", lambda: reconciled(d, "keep") and reconciled(d, "gone"))
    assert not d.policy("gone")["metadata"].get("finalizers")

    d.kubectl("delete", "tlspolicy", "gone", "-n", d.namespace, "--wait=false")
    d.wait("the deleted rule to leave", lambda: rule_ids(d) == {"keep"}, timeout=5)

    patch = json.dumps({"spec": {"priority": 42}})
    d.kubectl("patch", "tlspolicy", "keep", "-n", d.namespace, "--type=merge", "-p", patch)
    d.wait(
        "the edit in the ConfigMap",
        lambda: [r["priority"] for r in (document(d) or {})["rules"]] == [42],
        timeout=3,
    )


def test_what_the_api_server_accepts_always_renders_a_loadable_policy(operator: Any) -> None:
    """Item 1: 16 policies x 64 recipientDomains with mtaSts (1,024 MTA-STS policies, past
    the gateway's 1,000): the newest is refused as Overflow, the rest load in a gateway."""
    d: Deployed = operator()
    mta_sts = {"mode": "testing", "mx": ["mx.example.net"]}
    manifests = [
        audit(f"p{i:02}", [f"d{j}.p{i:02}.example" for j in range(64)], mtaSts=mta_sts)
        for i in range(16)
    ]
    for m in manifests:  # one by one: creationTimestamp has 1 s resolution
        d.kubectl("apply", "-n", d.namespace, "-f", "-", stdin=json.dumps(m))
        if m is manifests[-2]:
            time.sleep(1.1)
    d.wait("every status", lambda: all(reconciled(d, f"p{i:02}") for i in range(16)))
    assert accepted(d, "p15") == ("False", "Overflow")
    assert all(accepted(d, f"p{i:02}") == ("True", "Accepted") for i in range(15))
    doc = PolicyDocument.model_validate(document(d))
    assert len(doc.mta_sts_policies) == 15 * 64 <= MAX_MTA_STS_POLICIES
    base = Config.model_validate(
        {"hostname": "mx.test", "domains": ["p00.example"], "upstreams": [{"address": "a:25"}]}
    )
    assert len(base.with_policy_document(doc).policy.rules) == 15
    d.wait("the Overflow event", lambda: ("Warning", "Overflow") in d.events("p15"))


def maximal(name: str) -> dict[str, Any]:
    """A policy as large as the CRD allows in its scope (64 items per list, long names)."""
    long = ".".join(["a" * 60] * 3 + ["b" * 44])  # names of 250 characters or so
    domains = [f"{name}-{i:02}.{long}.example" for i in range(64)]
    cidrs = [f"10.{i}.0.0/16" for i in range(64)]
    senders = [f"s{i:02}.{name}.{long}.example" for i in range(64)]
    return policy_manifest(
        name,
        {
            "mode": "audit",
            "scope": {"recipientDomains": domains, "senderDomains": senders, "clientCIDRs": cidrs},
        },
    )


def test_overflowing_the_configmap_budget_refuses_the_newest_and_serves_the_rest(
    operator: Any,
) -> None:
    """Item 2, at the documented default budget (3/4 of 1 MiB): 30 maximal policies do not
    all fit; the oldest are admitted, the rest are Accepted=False/Overflow with an event, the
    ConfigMap stays within budget, and deletes keep working (nothing freezes)."""
    d: Deployed = operator()
    first, rest = maximal("m00"), [maximal(f"m{i:02}") for i in range(1, 30)]
    d.kubectl("apply", "-n", d.namespace, "-f", "-", stdin=json.dumps(first))
    time.sleep(1.1)  # m00 is strictly the oldest
    apply_all(d.kubectl, d.namespace, rest)
    names = [f"m{i:02}" for i in range(30)]
    d.wait("every status", lambda: all(reconciled(d, n) for n in names), timeout=90)
    reasons = {n: accepted(d, n) for n in names}
    admitted = {n for n, r in reasons.items() if r == ("True", "Accepted")}
    overflow = {n for n, r in reasons.items() if r == ("False", "Overflow")}
    assert admitted | overflow == set(names)
    assert "m00" in admitted
    assert overflow, "30 maximal policies must not all fit the default budget"
    assert rule_ids(d) == admitted
    cm = d.get("configmap", CONFIGMAP)
    assert len(cm["data"]["policy.json"].encode()) <= DEFAULT_BUDGET_BYTES
    assert "ownerReferences" not in cm["metadata"]
    victim = sorted(overflow)[0]
    d.wait("an Overflow event", lambda: ("Warning", "Overflow") in d.events(victim))

    d.kubectl("delete", "tlspolicy", "m00", "-n", d.namespace, "--wait=false")
    d.wait("m00 to leave the ConfigMap", lambda: "m00" not in rule_ids(d), timeout=10)
    d.wait("the oldest overflowed policy to move in", lambda: victim in rule_ids(d), timeout=10)


def test_an_idle_namespace_writes_nothing(operator: Any) -> None:
    """Item 9: with reports read every second and nothing changing, no status is rewritten
    (resourceVersions stay put); an edit of one policy rewrites that one status only."""
    d: Deployed = operator(MXGATE_REPORT_INTERVAL="1")
    names = [f"i{i}" for i in range(5)]
    apply_all(d.kubectl, d.namespace, [audit(n) for n in names])
    d.wait("every status", lambda: all(reconciled(d, n) for n in names))
    d.wait(
        "the observed effect",
        lambda: all("observed" in (d.policy(n).get("status") or {}) for n in names),
    )
    d.reports.wait_ticks(2)  # two whole ticks after the observed effect was written

    def versions() -> dict[str, str]:
        items = d.get("tlspolicies")["items"]
        return {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in items}

    before = versions()
    d.reports.wait_ticks(5)
    assert versions() == before
    patch = json.dumps({"spec": {"priority": 3}})
    d.kubectl("patch", "tlspolicy", "i0", "-n", d.namespace, "--type=merge", "-p", patch)
    d.wait("i0 reconciled", lambda: reconciled(d, "i0"))
    d.reports.wait_ticks(3)
    after = versions()
    assert [n for n in names if after[n] != before[n]] == ["i0"]


def test_operator_logs_json_and_serves_metrics(operator: Any) -> None:
    """Issue 16 item 4: every log line is one JSON object (kopf's own lines too), and
    GET /metrics counts reconciles and report reads by result, with the time of the last
    successful reconcile and policies by admission reason."""
    port = free_port()
    d: Deployed = operator(MXGATE_METRICS_ADDRESS=f"127.0.0.1:{port}", MXGATE_REPORT_INTERVAL="1")
    apply_all(d.kubectl, d.namespace, [audit("seen")])
    d.wait("reconciled", lambda: reconciled(d, "seen"))

    def metrics() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("mxgate_operator_")
        }

    d.wait(
        "a report read",
        lambda: metrics().get('mxgate_operator_report_reads_total{result="success"}', 0) >= 1,
    )
    got = metrics()
    assert got['mxgate_operator_reconciles_total{result="success"}'] >= 1
    assert got['mxgate_operator_reconciles_total{result="error"}'] == 0
    assert got["mxgate_operator_last_successful_reconcile_timestamp_seconds"] > time.time() - 60
    assert got['mxgate_operator_policies{reason="Accepted"}'] == 1
    lines = [x for x in d.log.read_text().splitlines() if x.strip()]
    events = [json.loads(x) for x in lines]  # every line parses
    assert any(e.get("event") == "namespace_reconciled" for e in events)
    assert any(str(e.get("logger", "")).startswith("kopf") for e in events), lines[:5]


def certificates(d: Deployed) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in d.get("certificates")["items"]}


def test_only_certificates_the_chart_allows_are_requested(operator: Any) -> None:
    """Item 3: with the chart's allowlist, a ClusterIssuer, a foreign name, a 1 h duration or
    a renewBefore that re-issues hourly is refused (Accepted=False, CertificateNotAllowed)
    and no Certificate is created; an allowed request is served."""
    d: Deployed = operator(
        MXGATE_ALLOWED_ISSUERS="Issuer/*",
        MXGATE_ALLOWED_DNS_NAMES="mx1.example.test",
        MXGATE_MIN_CERTIFICATE_DURATION="24h",
    )
    ok = {"issuerRef": {"name": "ca", "kind": "Issuer"}, "dnsNames": ["mx1.example.test"]}
    bad = {
        "cluster-issuer": {**ok, "issuerRef": {"name": "production", "kind": "ClusterIssuer"}},
        "other-tenant": {**ok, "dnsNames": ["mx.other-tenant.example", "localhost"]},
        "one-hour": {**ok, "duration": "1h"},
        # a long duration renewed an hour after each issuance is a 1 h certificate in disguise
        "hourly-renewal": {**ok, "duration": "2160h", "renewBefore": "2159h"},
    }
    apply_all(
        d.kubectl,
        d.namespace,
        [audit("allowed", certificate=ok)]
        + [audit(name, certificate=cert, listener="internal") for name, cert in bad.items()],
    )
    names = ["allowed", *bad]
    d.wait("every status", lambda: all(reconciled(d, n) for n in names))
    assert accepted(d, "allowed") == ("True", "Accepted")
    for name in bad:
        assert accepted(d, name) == ("False", "CertificateNotAllowed"), name
    assert set(certificates(d)) == {"mxgate-public-mx"}
    assert rule_ids(d) == {"allowed"}


def test_a_certificate_request_never_decides_whether_a_rule_applies(operator: Any) -> None:
    """Item 4: an author's older certificate on the listener does not drop the
    administrator's later policy: its rule applies, its request is reported as
    CertificateReady=False/CertificateConflict on it alone, and the holder is the oldest."""
    d: Deployed = operator()
    author = {"issuerRef": {"name": "ca", "kind": "Issuer"}, "dnsNames": ["mx1.example.test"]}
    d.kubectl(
        *("apply", "-n", d.namespace, "-f", "-"),
        stdin=json.dumps(audit("author", certificate=author)),
    )
    time.sleep(1.1)  # strictly newer
    admin = {**author, "dnsNames": ["mx.example.test"]}
    spec = {"mode": "require", "scope": {"senderDomains": ["bank.test"]}, "certificate": admin}
    d.kubectl(
        *("apply", "-n", d.namespace, "-f", "-"),
        stdin=json.dumps(policy_manifest("admin", spec)),
    )
    d.wait("both statuses", lambda: reconciled(d, "author") and reconciled(d, "admin"))
    assert accepted(d, "admin") == ("True", "Accepted")
    assert rule_ids(d) == {"author", "admin"}
    cert = d.conditions("admin")["CertificateReady"]
    assert (cert["status"], cert["reason"]) == ("False", "CertificateConflict")
    assert certificates(d)["mxgate-public-mx"]["spec"]["dnsNames"] == ["mx1.example.test"]
    assert d.conditions("author")["CertificateReady"]["reason"] != "CertificateConflict"


def test_mta_sts_only_for_the_gateways_domains_and_names(operator: Any) -> None:
    """Item 5: publishing enforce with a foreign mx for the gateway's own domain, or any
    MTA-STS for a domain the gateway does not serve, is refused (MTASTSNotAllowed) and
    nothing is served; a policy within the chart's names is served."""
    d: Deployed = operator(
        MXGATE_GATEWAY_DOMAINS="accepted.test",
        MXGATE_ALLOWED_DNS_NAMES="mx1.example.test",
    )
    attacker = {"mode": "enforce", "mx": ["mx.attacker.example"], "maxAge": 31557600}
    apply_all(
        d.kubectl,
        d.namespace,
        [
            audit("attacker", ["accepted.test"], mtaSts=attacker),
            audit(
                "elsewhere",
                ["other.example"],
                mtaSts={"mode": "testing", "mx": ["mx1.example.test"]},
            ),
            audit("own", ["accepted.test"], mtaSts={"mode": "testing", "mx": ["mx1.example.test"]}),
        ],
    )
    d.wait("every status", lambda: all(reconciled(d, n) for n in ("attacker", "elsewhere", "own")))
    assert accepted(d, "attacker") == ("False", "MTASTSNotAllowed")
    assert accepted(d, "elsewhere") == ("False", "MTASTSNotAllowed")
    assert accepted(d, "own") == ("True", "Accepted")
    served = (document(d) or {}).get("mta_sts_policies", [])
    assert [(p["domain"], p["mx"]) for p in served] == [("accepted.test", ["mx1.example.test"])]


def test_a_second_operator_never_fights_the_first(operator: Any) -> None:
    """Item 7: a second operator of the same release (with the chart's environment, or run by
    hand with only ``-n``, and other settings) waits for the Lease instead of rewriting the
    Certificate; one of another release whose names collide refuses objects labelled for
    the first release."""
    d: Deployed = operator()
    cert = {"issuerRef": {"name": "ca", "kind": "Issuer"}, "dnsNames": ["mx1.example.test"]}
    apply_all(d.kubectl, d.namespace, [audit("served", certificate=cert), audit("plain")])
    d.wait("reconciled", lambda: reconciled(d, "served") and reconciled(d, "plain"))
    first = certificates(d)["mxgate-public-mx"]
    cm = d.get("configmap", CONFIGMAP)["metadata"]
    assert first["metadata"]["labels"]["mxgate.io/release"] == "mxgate"
    assert cm["labels"]["mxgate.io/release"] == "mxgate"

    same_release = operator(MXGATE_TLS_SECRET="not-the-gateways-secret")
    # run by hand: `mxgate-operator -n <namespace>` without the chart's MXGATE_NAMESPACE
    by_hand = operator(MXGATE_NAMESPACE="", MXGATE_TLS_SECRET="by-hand-secret")
    other_release = operator(
        MXGATE_PREFIX="other",
        MXGATE_POLICY_CONFIGMAP=CONFIGMAP,
        MXGATE_POLICY_BUDGET_BYTES="4096",
        MXGATE_TLS_SECRET="x",
    )
    d.kubectl(
        "patch",
        "tlspolicy",
        "plain",
        "-n",
        d.namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"priority": 9}}),
    )
    other_release.wait(
        "the other release to refuse the ConfigMap",
        lambda: b"owned_by_another_release" in other_release.log.read_bytes(),
        timeout=90,
    )
    for second in (same_release, by_hand):
        second.wait(
            "the second operator to start",
            lambda d=second: b"startup' succeeded" in d.log.read_bytes(),
            timeout=90,
        )
    time.sleep(6)  # more than one Lease attempt (every 5 s)
    d.wait("the first operator's edit", lambda: reconciled(d, "plain"))
    now = certificates(d)["mxgate-public-mx"]
    assert now["spec"]["secretName"] == first["spec"]["secretName"] == "mxgate-public-mx-tls"
    assert now["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert d.get("configmap", CONFIGMAP)["metadata"]["labels"]["mxgate.io/release"] == "mxgate"
    assert b"leader_elected" not in same_release.log.read_bytes()
    assert b"leader_elected" not in by_hand.log.read_bytes()
    assert b"no_leader_election" not in by_hand.log.read_bytes()
