"""Issue 18 item 1, as a property: whatever TLSPolicies and ClusterTLSPolicies exist, valid or
not, whatever the budget and the chart's allowlists, the operator renders a file every gateway
loads, within the budget, the same bytes in any listing order, with one admission per policy
whose verdict matches what the document holds.

The strategies draw every spec field (certificates, MTA-STS, TLS-RPT, refusal, priority) from
small pools so that conflicts, shared MTA-STS domains and overflow happen often.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from mxgate_gateway.config.model import Config, PolicyDocument
from mxgate_operator.render.allowed import CertificateRules, MTASTSRules
from mxgate_operator.render.floors import ClusterPolicyInput
from mxgate_operator.render.gateway_config import (
    Budget,
    PolicyInput,
    Reason,
    RenderResult,
    floors_within,
    render_policies,
)
from mxgate_operator.spec import parse_policy
from mxgate_operator.spec_cluster import parse_cluster_policy

DOMAINS = ["accepted.test", "other.test", "a.accepted.test", "*.accepted.test", "foreign.example"]
RECIPIENTS = [*DOMAINS, "accepted.test", "other.test", "accepted.test"]  # mostly the gateway's
NAMES = ["mx1.accepted.test", "mx2.accepted.test", "evil.example"]
MX = [*NAMES, "mx1.accepted.test", "mx2.accepted.test", "*.accepted.test"]  # mostly allowed
GATEWAY = Config.model_validate(
    {
        "hostname": "mx1.accepted.test",
        "domains": ["accepted.test", "other.test"],
        "upstreams": [{"address": "127.0.0.1:25"}],
    }
)
RULES = CertificateRules.parse("Issuer/*", "mx1.accepted.test,mx2.accepted.test", "24h")
MTA_RULES = MTASTSRules(("accepted.test", "other.test"), RULES.dns_names)

_domains = st.lists(st.sampled_from(DOMAINS), max_size=3, unique=True)
# one in five CIDRs has host bits set: an invalid policy now and then, never most of them
_cidrs = st.lists(
    st.sampled_from(["10.0.0.0/8", "::/0", "192.0.2.0/24", "2001:db8::/32", "10.0.0.1/8"]),
    max_size=2,
    unique=True,
)
_certificate = st.fixed_dictionaries(
    {
        "issuerRef": st.sampled_from(
            [{"name": "ca", "kind": "Issuer"}, {"name": "prod", "kind": "ClusterIssuer"}]
        ),
        "dnsNames": st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True),
    },
    optional={
        "duration": st.sampled_from(["1h", "24h", "2160h"]),
        "renewBefore": st.sampled_from(["1h", "8h", "23h"]),
    },
)
_mta_sts = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["enforce", "testing", "none"]),
        "mx": st.lists(st.sampled_from(MX), min_size=1, max_size=2, unique=True),
    },
    optional={"maxAge": st.sampled_from([86400, 604800])},
)
_mode = st.sampled_from(["opportunistic", "audit", "require"])
_common: dict[str, Any] = {
    "minTLSVersion": st.sampled_from(["1.2", "1.3"]),
    "priority": st.integers(-2, 2),
    "refusal": st.sampled_from(["permanent", "temporary"]),
    "mtaSts": _mta_sts,
    "tlsRpt": st.fixed_dictionaries({"rua": st.just(["mailto:tlsrpt@accepted.test"])}),
}
_scope = st.fixed_dictionaries(
    {
        "recipientDomains": st.lists(
            st.sampled_from(RECIPIENTS), min_size=1, max_size=2, unique=True
        )
    },
    optional={"senderDomains": _domains, "clientCIDRs": _cidrs},
)
_tls_policy = st.fixed_dictionaries(
    {"mode": _mode, "scope": _scope},
    optional={
        **_common,
        "listener": st.sampled_from(["public-mx", "internal"]),
        "certificate": _certificate,
    },
)
_cluster_policy = st.fixed_dictionaries({"mode": _mode, "scope": _scope}, optional=_common)
_created = st.integers(0, 5).map(lambda s: f"2026-01-01T00:00:0{s}Z")


@st.composite
def _namespace(draw: st.DrawFn) -> tuple[list[PolicyInput], list[ClusterPolicyInput], Budget]:
    specs = draw(st.lists(st.tuples(_tls_policy, _created), max_size=8))
    floors = draw(st.lists(st.tuples(_cluster_policy, _created), max_size=3))
    policies = [
        PolicyInput("mail", f"p{i}", f"uid-p{i}", 1, parse_policy(f"p{i}", s), c)
        for i, (s, c) in enumerate(specs)
    ]
    cluster = [
        ClusterPolicyInput(f"c{i}", f"uid-c{i}", 1, parse_cluster_policy(f"c{i}", s), c)
        for i, (s, c) in enumerate(floors)
    ]
    budget = Budget(
        bytes=draw(st.integers(300, 20_000)),
        rules=draw(st.integers(1, 10)),
        mta_sts_policies=draw(st.integers(1, 4)),
    )
    return policies, cluster, budget


def _render(
    policies: list[PolicyInput], cluster: list[ClusterPolicyInput], budget: Budget
) -> RenderResult:
    """As the operator does: the floors first (cluster.py), then the namespace's policies."""
    floors = floors_within(cluster, budget, MTA_RULES)
    return render_policies(policies, budget, RULES, MTA_RULES, floors)


@settings(max_examples=300, deadline=None)
@given(_namespace())
def test_whatever_exists_renders_a_file_every_gateway_loads(
    case: tuple[list[PolicyInput], list[ClusterPolicyInput], Budget],
) -> None:
    policies, cluster, budget = case
    result = _render(policies, cluster, budget)
    text = result.text

    assert len(text.encode()) <= budget.bytes
    doc = PolicyDocument.model_validate(json.loads(text))
    GATEWAY.with_policy_document(doc)  # merges into a gateway's own config: loadable
    assert len(doc.rules) <= budget.rules
    assert len(doc.mta_sts_policies) <= budget.mta_sts_policies
    event(f"{len(doc.floors)} floors, {len(doc.mta_sts_policies)} MTA-STS policies")

    # one verdict per policy; an accepted policy's rule is served, a refused one's is not
    assert sorted(a.rule_id for a in result.admissions) == sorted(
        f"mail/{p.name}" for p in policies
    )
    served = {rule.id for rule in doc.rules}
    for admission in result.admissions:
        event(admission.reason.value)
        assert (admission.rule_id in served) is admission.accepted, admission
        assert admission.accepted is (admission.reason is Reason.ACCEPTED)
        assert admission.message

    # the listing order never changes the bytes (the API server's order is not ours)
    assert _render(policies[::-1], cluster[::-1], budget).text == text
