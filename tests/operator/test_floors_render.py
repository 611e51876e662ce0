"""ClusterTLSPolicy → floors: parsed like a TLSPolicy, rendered first into every document,
with a status of their own; the issue 18 item 6 scenario through render → gateway decision."""

from __future__ import annotations

import json
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml
from validation_table import CERT

from mxgate_gateway.config.model import Config, Listener, PolicyDocument
from mxgate_gateway.policy import Action, SessionFacts, decide_rcpt
from mxgate_operator.render.floor_status import floor_status
from mxgate_operator.render.floors import ClusterPolicyInput, render_floors
from mxgate_operator.render.gateway_config import (
    Budget,
    PolicyInput,
    Reason,
    floor_room,
    render_policies,
)
from mxgate_operator.spec import parse_policy
from mxgate_operator.spec_cluster import parse_cluster_policy

CRDS = Path(__file__).resolve().parents[2] / "helm/mxgate/files/crds"
D = "accepted.test"
ADMIN = {"mode": "require", "scope": {"recipientDomains": [D]}}
AUTHOR = {
    "mode": "opportunistic",
    "priority": 1_000_000,
    "scope": {"recipientDomains": [D], "clientCIDRs": ["0.0.0.0/0", "::/0"]},
}
PLAINTEXT = SessionFacts(ip_address("203.0.113.9"), None, Listener.PUBLIC_MX)
BASE = Config.model_validate(
    {"hostname": "mx.test", "domains": [D], "upstreams": [{"address": "127.0.0.1:25"}]}
)


def cluster(name: str, spec: Any, created: str = "2026-01-01T00:00:00Z") -> ClusterPolicyInput:
    return ClusterPolicyInput(name, f"uid-{name}", 1, parse_cluster_policy(name, spec), created)


def namespaced(name: str, spec: Any, created: str = "2026-01-02T00:00:00Z") -> PolicyInput:
    return PolicyInput("mail", name, f"uid-{name}", 1, parse_policy(name, spec), created)


def decision_for(text: str) -> Action:
    doc = PolicyDocument.model_validate(json.loads(text))
    return decide_rcpt(BASE.with_policy_document(doc).policy, PLAINTEXT, "x.example", D).action


def test_issue_scenario_through_the_renderer() -> None:
    """An author's more specific opportunistic TLSPolicy beats a namespaced require (the
    defect), but not the administrator's ClusterTLSPolicy floor: the rendered document
    makes the gateway refuse plaintext mail for the domain."""
    admin_rule = namespaced("admin", {**ADMIN, "priority": 1_000_000, "certificate": CERT})
    author = namespaced("author", AUTHOR)
    weak = render_policies([admin_rule, author])
    assert decision_for(weak.text) is Action.ACCEPT
    floors = render_floors([cluster("admin", ADMIN)], floor_room())
    strong = render_policies([author], floors=floors)
    assert json.loads(strong.text)["floors"][0]["id"] == "cluster.mxgate.io/admin"
    assert decision_for(strong.text) is Action.REFUSE


def test_a_document_without_floors_has_no_floors_key() -> None:
    """A gateway older than floors still loads what the operator renders without floors."""
    out = render_policies([namespaced("author", AUTHOR)], floors=render_floors([], floor_room()))
    assert "floors" not in json.loads(out.text)


def test_floors_are_sorted_and_invalid_ones_are_refused() -> None:
    """Floors are sorted by id whatever the input order; an invalid spec is InvalidSpec with
    its field path; a TLSPolicy-only field (certificate) is ignored (the CRD prunes it)."""
    inputs = [
        cluster("zeta", {"mode": "audit", "scope": {"senderDomains": ["b.example"]}}),
        cluster("alpha", {**ADMIN, "certificate": CERT}),
        cluster("broken", {"mode": "require", "scope": {}}),
    ]
    result = render_floors(inputs, floor_room())
    assert [f.id for f in result.floors] == ["cluster.mxgate.io/alpha", "cluster.mxgate.io/zeta"]
    reasons = {a.name: (a.reason, a.message) for a in result.admissions}
    assert reasons["broken"][0] == "InvalidSpec"
    assert "spec.scope" in reasons["broken"][1]
    assert reasons["alpha"][0] == reasons["zeta"][0] == "Accepted"


def test_floors_take_the_budget_first_and_overflow_oldest_first() -> None:
    """Floors are admitted before any TLSPolicy, oldest first; past the budget the newest
    floor is Overflow, and TLSPolicies overflow before any admitted floor is dropped."""

    def floor(i: int) -> ClusterPolicyInput:
        return cluster(f"f{i}", ADMIN, f"2026-01-01T00:00:{i:02}Z")

    budget = Budget(bytes=700)
    result = render_floors([floor(i) for i in range(5)], floor_room(budget))
    admitted = [a.name for a in result.admissions if a.accepted]
    assert admitted == [f"f{i}" for i in range(len(admitted))]
    assert 0 < len(admitted) < 5
    assert {a.reason for a in result.admissions if not a.accepted} == {"Overflow"}
    out = render_policies([namespaced("author", AUTHOR)], budget, floors=result)
    assert len(out.text.encode()) <= budget.bytes
    assert out.admission("mail/author").reason is Reason.OVERFLOW
    assert len(PolicyDocument.model_validate(json.loads(out.text)).floors) == len(admitted)


def test_floor_status_conditions_and_events_only_on_transitions() -> None:
    """Accepted/Ready True with a Normal Ready event once; require on public-mx is
    StandardsCompliant=False with a Warning; the same inputs again change nothing."""
    policy = cluster("admin", ADMIN)
    (admission,) = render_floors([policy], floor_room()).admissions
    first = floor_status(policy=policy, admission=admission, previous={}, now="T1")
    conds = {c["type"]: (c["status"], c["reason"]) for c in first.status["conditions"]}
    assert conds == {
        "Accepted": ("True", "Accepted"),
        "StandardsCompliant": ("False", "RequireOnPublicMX"),
        "Ready": ("True", "Ready"),
    }
    assert first.status["floorId"] == "cluster.mxgate.io/admin"
    assert {(e.type, e.reason) for e in first.events} == {
        ("Warning", "RequireOnPublicMX"),
        ("Normal", "Ready"),
    }
    again = floor_status(policy=policy, admission=admission, previous=first.status, now="T2")
    assert again.status == first.status
    assert again.events == ()


def _spec_schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / name).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]  # type: ignore[no-any-return]


def _without_descriptions(schema: object) -> object:
    if isinstance(schema, dict):
        return {k: _without_descriptions(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [_without_descriptions(v) for v in schema]
    return schema


SHARED = ["mode", "listener", "minTLSVersion", "priority", "refusal", "scope", "mtaSts", "tlsRpt"]


@pytest.mark.parametrize("field", SHARED)
def test_cluster_crd_shares_the_tlspolicy_schema(field: str) -> None:
    """The ClusterTLSPolicy spec is TLSPolicy's minus certificate: every shared field
    validates exactly as the TLSPolicy CRD does (one validation, two kinds); mode, listener,
    minTLSVersion, refusal and scope are equal word for word, descriptions included."""
    ours = _spec_schema("clustertlspolicies.mxgate.io.yaml")
    theirs = _spec_schema("tlspolicies.mxgate.io.yaml")
    assert _without_descriptions(ours["properties"][field]) == _without_descriptions(
        theirs["properties"][field]
    )
    if field in ("mode", "listener", "minTLSVersion", "refusal", "scope"):
        assert ours["properties"][field] == theirs["properties"][field]
    assert set(ours["properties"]) == set(theirs["properties"]) - {"certificate"}
    assert ours["required"] == theirs["required"] == ["mode", "scope"]
    # TLSPolicy's spec-level CEL rules, minus the one about spec.certificate
    assert ours["x-kubernetes-validations"] == [
        r for r in theirs["x-kubernetes-validations"] if "certificate" not in r["rule"]
    ]


def test_cluster_crd_is_cluster_scoped_with_columns() -> None:
    """Cluster-scoped, short name ctlsp, printer columns for the floor and its readiness."""
    crd = yaml.safe_load((CRDS / "clustertlspolicies.mxgate.io.yaml").read_text())
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["shortNames"] == ["ctlsp"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:5] == ["Mode", "MinTLS", "Listener", "Ready", "Would-Refuse %"]
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_cluster_crd_shows_the_observed_effect_as_a_tlspolicy_does() -> None:
    """status.observed has TLSPolicy's fields and types, and the Would-Refuse % column
    (and every other column both kinds have) reads the same path."""

    def version(name: str) -> dict[str, Any]:
        return yaml.safe_load((CRDS / name).read_text())["spec"]["versions"][0]  # type: ignore[no-any-return]

    def observed(v: dict[str, Any]) -> object:
        status = v["schema"]["openAPIV3Schema"]["properties"]["status"]
        return _without_descriptions(status["properties"]["observed"])

    ours, theirs = (
        version("clustertlspolicies.mxgate.io.yaml"),
        version("tlspolicies.mxgate.io.yaml"),
    )
    assert observed(ours) == observed(theirs)
    paths = {c["name"]: (c["jsonPath"], c["type"]) for c in theirs["additionalPrinterColumns"]}
    shared = [c for c in ours["additionalPrinterColumns"] if c["name"] in paths]
    assert {c["name"] for c in shared} >= {"Ready", "Would-Refuse %", "Age", "Reason", "Message"}
    for column in shared:
        assert (column["jsonPath"], column["type"]) == paths[column["name"]]


def test_cluster_policy_parser_mirrors_the_name_rule() -> None:
    """A name longer than 63 characters is refused, as the CRD's CEL rule does."""
    assert parse_cluster_policy("a" * 64, ADMIN).spec is None
    assert parse_cluster_policy("a" * 63, ADMIN).spec is not None


def test_the_cluster_policy_example_renders_a_floor() -> None:
    """examples/clustertlspolicy-*.yaml parse without issues and render as floors."""
    examples = sorted((CRDS.parents[3] / "examples").glob("clustertlspolicy-*.yaml"))
    assert examples
    for path in examples:
        doc = yaml.safe_load(path.read_text())
        assert doc["kind"] == "ClusterTLSPolicy"
        name = doc["metadata"]["name"]
        parsed = parse_cluster_policy(name, doc["spec"])
        assert parsed.issues == ()
        result = render_floors([ClusterPolicyInput(name, "u", 1, parsed)], floor_room())
        assert [f.id for f in result.floors] == [f"cluster.mxgate.io/{name}"]
        if "mtaSts" in doc["spec"]:  # published for its domains, by every gateway
            assert result.admissions[0].publication == "Published"
            assert [d for d, _ in result.mta_sts] == doc["spec"]["scope"]["recipientDomains"]
