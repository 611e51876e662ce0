"""A ClusterTLSPolicy has TLSPolicy's spec minus certificate: its priority names a decision
among equal floors, and its mtaSts / tlsRpt are published under a TLSPolicy's rules (the
chart's allowlists, one policy per domain, the conflict shown on both objects), with the
administrator's claim winning over any TLSPolicy's."""

from __future__ import annotations

import json
from ipaddress import ip_address
from typing import Any

import pytest

from mxgate_gateway.config.model import Config, Listener, PolicyDocument
from mxgate_gateway.policy import SessionFacts, decide_rcpt
from mxgate_operator.render.allowed import MTASTSRules
from mxgate_operator.render.floor_status import floor_status
from mxgate_operator.render.floors import (
    ClusterPolicyInput,
    FloorsResult,
    render_floors,
    with_tlspolicy_claims,
)
from mxgate_operator.render.gateway_config import (
    PolicyInput,
    Reason,
    floor_room,
    render_policies,
)
from mxgate_operator.render.mtasts import gateway_policies, mtasts_view
from mxgate_operator.spec import parse_policy
from mxgate_operator.spec_cluster import parse_cluster_policy

D = "accepted.test"
MX = "mx.accepted.test"
RULES = MTASTSRules(domains=(D, "other.test"), mx_names=(MX,))
PUBLISH = {
    "mode": "audit",
    "priority": 7,
    "scope": {"recipientDomains": [D, f"*.{D}"]},
    "mtaSts": {"mode": "enforce", "mx": [MX], "maxAge": 86400},
    "tlsRpt": {"rua": ["mailto:tlsrpt@accepted.test"]},
}
TESTING = {**PUBLISH, "mtaSts": {"mode": "testing", "mx": [MX]}}


def cluster(name: str, spec: Any, created: str = "2026-01-01T00:00:00Z") -> ClusterPolicyInput:
    return ClusterPolicyInput(name, f"uid-{name}", 3, parse_cluster_policy(name, spec), created)


def namespaced(name: str, spec: Any, created: str = "2025-01-01T00:00:00Z") -> PolicyInput:
    return PolicyInput("mail", name, f"uid-{name}", 1, parse_policy(name, spec), created)


def floors(*inputs: ClusterPolicyInput, rules: MTASTSRules = RULES) -> FloorsResult:
    return render_floors(list(inputs), floor_room(), mta_sts_rules=rules)


def status_of(policy: ClusterPolicyInput, result: FloorsResult) -> dict[str, Any]:
    admission = next(a for a in result.admissions if a.name == policy.name)
    return floor_status(policy=policy, admission=admission, previous={}, now="T").status


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_every_tlspolicy_field_but_certificate_parses_with_the_same_checks() -> None:
    """priority, mtaSts and tlsRpt parse as TLSPolicy's do, with the same issues."""
    spec = parse_cluster_policy("admin", PUBLISH).spec
    assert spec is not None
    assert spec.priority == 7
    assert spec.mta_sts is not None
    assert (spec.mta_sts.mode.value, spec.mta_sts.mx, spec.mta_sts.max_age) == (
        "enforce",
        (MX,),
        86400,
    )
    assert spec.tlsrpt_rua == ("mailto:tlsrpt@accepted.test",)
    for bad in (
        {**PUBLISH, "priority": 1_000_001},
        {**PUBLISH, "mtaSts": {"mode": "enforce"}},
        {**PUBLISH, "mtaSts": {"mode": "enforce", "mx": [MX], "maxAge": 60}},
        {**PUBLISH, "tlsRpt": {"rua": ["ftp://x"]}},
        {**PUBLISH, "scope": {"recipientDomains": [f"*.{D}"]}},
    ):
        ours = parse_cluster_policy("admin", bad)
        theirs = parse_policy("admin", bad)
        assert ours.spec is None
        assert ours.issues == theirs.issues


def test_priority_is_rendered_only_when_set() -> None:
    """A floor carries its priority into the document; priority 0 is left out, so a
    document without floor priorities is byte for byte what it was before."""
    plain = {"mode": "require", "scope": {"recipientDomains": [D]}}
    zero = render_policies([], floors=floors(cluster("a", plain)))
    assert "priority" not in json.loads(zero.text)["floors"][0]
    seven = render_policies([], floors=floors(cluster("a", {**plain, "priority": 7})))
    assert json.loads(seven.text)["floors"][0]["priority"] == 7
    doc = PolicyDocument.model_validate(json.loads(seven.text))
    assert doc.floors[0].priority == 7


def test_priority_names_the_decision_among_floors_raising_equally() -> None:
    """Rendered end to end: of two require floors for the same domain, the one with the
    higher priority names the refusal and answers with its refusal (temporary: 4xx)."""
    low = {"mode": "require", "scope": {"recipientDomains": [D]}}
    high = {**low, "priority": 5, "refusal": "temporary"}
    result = floors(cluster("aaa", low), cluster("zzz", high))
    doc = PolicyDocument.model_validate(json.loads(render_policies([], floors=result).text))
    base = Config.model_validate(
        {"hostname": "mx.test", "domains": [D], "upstreams": [{"address": "127.0.0.1:25"}]}
    )
    facts = SessionFacts(ip_address("203.0.113.9"), None, Listener.PUBLIC_MX)
    d = decide_rcpt(base.with_policy_document(doc).policy, facts, None, D)
    assert d.rule_id == "cluster.mxgate.io/zzz"
    assert d.reply is not None
    assert d.reply[0] // 100 == 4


def test_a_cluster_publication_is_served_in_every_document_with_tlspolicy_records() -> None:
    """The MTA-STS policy goes into the document every gateway serves; status.mtaSts lists
    exactly the records the same spec would give on a TLSPolicy (one renderer)."""
    admin = cluster("admin", PUBLISH)
    result = floors(admin)
    out = render_policies([], floors=result)
    served = json.loads(out.text)["mta_sts_policies"]
    assert served == [{"domain": D, "max_age": 86400, "mode": "enforce", "mx": [MX]}]
    status = status_of(admin, result)
    as_tlspolicy = parse_policy("x", {**PUBLISH, "mode": "audit"}).spec
    view = mtasts_view(as_tlspolicy, None, {})
    assert view is not None
    assert status["mtaSts"] == view.status
    names = [r["name"] for r in status["mtaSts"]["records"]]
    assert names == [f"_mta-sts.{D}.", f"_smtp._tls.{D}."]
    conds = conditions(status)
    assert conds["MTASTSRecordsRendered"][:2] == ("True", "RecordsRendered")
    assert conds["Ready"][:2] == ("True", "Ready")
    assert "MXCoveredByCertificate" not in conds


def test_tlsrpt_alone_lists_its_record_and_serves_no_policy() -> None:
    """tlsRpt without mtaSts: a _smtp._tls record in status, nothing in the document."""
    spec = {k: v for k, v in PUBLISH.items() if k != "mtaSts"}
    admin = cluster("admin", spec)
    result = floors(admin)
    assert result.mta_sts == ()
    status = status_of(admin, result)
    assert [r["name"] for r in status["mtaSts"]["records"]] == [f"_smtp._tls.{D}."]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"scope": {"recipientDomains": ["foreign.test"]}}, "not one of the gateway's domains"),
        ({"mtaSts": {"mode": "enforce", "mx": ["mx.foreign.test"]}}, "not a name of this"),
    ],
)
def test_the_chart_allowlists_refuse_a_publication_but_keep_the_floor(
    change: dict[str, Any], words: str
) -> None:
    """A domain that is not the gateway's, or an mx that is not its name: MTASTSNotAllowed,
    nothing published, Ready=False with a Warning; the floor still applies."""
    admin = cluster("admin", {**PUBLISH, **change})
    result = floors(admin)
    assert [f.id for f in result.floors] == ["cluster.mxgate.io/admin"]
    assert result.mta_sts == ()
    admission = result.admissions[0]
    out = floor_status(policy=admin, admission=admission, previous={}, now="T")
    conds = conditions(out.status)
    assert conds["Accepted"][:2] == ("True", "Accepted")
    status, reason, message = conds["MTASTSRecordsRendered"]
    assert (status, reason) == ("False", "MTASTSNotAllowed")
    assert words in message
    assert "this floor still applies" in message
    assert conds["Ready"][:2] == ("False", "MTASTSNotAllowed")
    assert ("Warning", "MTASTSNotAllowed") in {(e.type, e.reason) for e in out.events}
    assert "mtaSts" not in out.status


def test_two_cluster_policies_claiming_a_domain_the_older_serves_both_show_it() -> None:
    """A different policy for the same domain: the older ClusterTLSPolicy serves, the newer
    one is MTASTSConflict naming it, and the older one's condition names the newer."""
    old = cluster("old", PUBLISH, "2026-01-01T00:00:00Z")
    new = cluster("new", TESTING, "2026-01-02T00:00:00Z")
    result = floors(new, old)
    assert [owner for _, (owner, _) in result.mta_sts] == ["cluster.mxgate.io/old"]
    new_conds = conditions(status_of(new, result))
    assert new_conds["MTASTSRecordsRendered"][:2] == ("False", "MTASTSConflict")
    assert "cluster.mxgate.io/old" in new_conds["MTASTSRecordsRendered"][2]
    old_conds = conditions(status_of(old, result))
    assert old_conds["MTASTSRecordsRendered"][0] == "True"
    assert "cluster.mxgate.io/new" in old_conds["MTASTSRecordsRendered"][2]
    same = floors(cluster("twin", PUBLISH, "2026-01-03T00:00:00Z"), old)
    assert {a.publication for a in same.admissions} == {"Published"}


def test_the_administrators_claim_wins_over_an_older_tlspolicy() -> None:
    """A TLSPolicy publishing a different MTA-STS policy for a ClusterTLSPolicy's domain is
    refused with MTASTSConflict naming the floor, even when it is older; the
    ClusterTLSPolicy's condition names the TLSPolicy. The same policy is no conflict."""
    admin = cluster("admin", PUBLISH, "2026-06-01T00:00:00Z")
    author_spec = {
        "mode": "opportunistic",
        "scope": {"recipientDomains": [D]},
        "mtaSts": {"mode": "testing", "mx": [MX]},
    }
    author = namespaced("author", author_spec, "2025-01-01T00:00:00Z")
    result = floors(admin)
    out = render_policies([author], mta_sts_rules=RULES, floors=result)
    refused = out.admission("mail/author")
    assert refused.reason is Reason.MTASTS_CONFLICT
    assert "cluster.mxgate.io/admin" in refused.message
    assert json.loads(out.text)["mta_sts_policies"][0]["mode"] == "enforce"
    spec = author.parsed.spec
    assert spec is not None
    claimed = with_tlspolicy_claims(result, [("mail/author", gateway_policies(spec))])
    message = conditions(status_of(admin, claimed))["MTASTSRecordsRendered"][2]
    assert "TLSPolicy mail/author" in message
    assert "MTASTSConflict" in message
    agreeing = {**author_spec, "mtaSts": PUBLISH["mtaSts"]}
    fine = render_policies([namespaced("author", agreeing)], mta_sts_rules=RULES, floors=result)
    assert fine.admission("mail/author").accepted
    assert with_tlspolicy_claims(result, [("mail/x", ())]) == result


def test_publication_takes_budget_and_overflows_without_dropping_the_floor() -> None:
    """Published domains count against the gateway's MTA-STS limit; past it the floor is
    still admitted and the publication is Overflow."""
    result = render_floors([cluster("admin", PUBLISH)], floor_room(), max_mta_sts=0)
    assert [a.reason for a in result.admissions] == ["Accepted"]
    assert result.admissions[0].publication == "Overflow"
    assert result.mta_sts == ()
    sized = floors(cluster("admin", PUBLISH))
    bare = floors(cluster("admin", {k: v for k, v in PUBLISH.items() if k != "mtaSts"}))
    assert sized.size > bare.size
