"""Rendering: policies → one canonical gateway policy file, ConfigMap and Certificates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from validation_table import BAD, CERT, GOOD

from mxgate_gateway.config.loader import load_policy_document, parse_text, validate
from mxgate_gateway.config.model import PolicyDocument
from mxgate_operator.render.certificates import (
    certificate_manifest,
    certificate_state,
    plan_certificates,
)
from mxgate_operator.render.configmap import configmap_manifest, needs_apply
from mxgate_operator.render.gateway_config import Budget, PolicyInput, Reason, render_policies
from mxgate_operator.spec import parse_policy


def policy(name: str, spec: Any, created: str = "2026-01-01T00:00:00Z") -> PolicyInput:
    return PolicyInput("mail", name, f"uid-{name}", 1, parse_policy(name, spec), created)


MIXED = [
    policy(
        "partners",
        {
            "mode": "require",
            "listener": "public-mx",
            "priority": 100,
            "scope": {"senderDomains": ["bank.example", "a.bank.example"]},
            "certificate": CERT,
        },
    ),
    policy(
        "audit-all-inbound", {"mode": "audit", "scope": {"recipientDomains": ["*.example.org"]}}
    ),
    policy(
        "internal-nets",
        {
            "mode": "require",
            "listener": "internal",
            "scope": {"clientCIDRs": ["10.0.0.0/8", "192.168.0.0/16"]},
            "certificate": {**CERT, "dnsNames": ["relay.internal.example"]},
        },
    ),
    policy("broken", {"mode": "audit", "scope": {"clientCIDRs": ["10.0.0.1/8"]}}),
    policy(
        "partners-twin",
        {
            "mode": "audit",
            "listener": "public-mx",
            "priority": 100,
            "scope": {"senderDomains": ["a.bank.example", "bank.example"]},
        },
    ),
    policy(
        "other-cert",
        {
            "mode": "require",
            "listener": "public-mx",
            "priority": 5,
            "scope": {"senderDomains": ["x.example"]},
            "certificate": {**CERT, "dnsNames": ["mx9.example.com"]},
        },
        created="2026-02-01T00:00:00Z",
    ),
]


def test_rendered_document_matches_golden(golden: Any) -> None:
    """The mixed example renders to exactly the golden bytes."""
    result = render_policies(MIXED)
    golden("policy-mixed.json", result.text)


def test_render_is_independent_of_input_order() -> None:
    """Any order of the same policies gives identical bytes, hash and admissions."""
    a = render_policies(MIXED)
    b = render_policies(list(reversed(MIXED)))
    assert (a.text, a.config_hash, a.admissions) == (b.text, b.config_hash, b.admissions)


def test_the_older_policy_wins_a_conflict() -> None:
    """A newer policy cannot unseat a running one, whatever the names."""
    old = policy(
        "zz-old",
        {"mode": "audit", "scope": {"senderDomains": ["a.test"]}},
        created="2026-01-01T00:00:00Z",
    )
    new = policy(
        "aa-new",
        {"mode": "opportunistic", "scope": {"senderDomains": ["a.test"]}},
        created="2026-03-01T00:00:00Z",
    )
    result = render_policies([new, old])
    assert result.admission("mail/zz-old").accepted
    assert result.admission("mail/aa-new").reason is Reason.CONFLICT
    assert "mail/zz-old" in result.admission("mail/aa-new").message


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("partners", Reason.ACCEPTED),
        ("audit-all-inbound", Reason.ACCEPTED),
        ("internal-nets", Reason.ACCEPTED),
        ("broken", Reason.INVALID),
        ("partners-twin", Reason.CONFLICT),
        ("other-cert", Reason.ACCEPTED),  # its rule applies; its certificate request not
    ],
)
def test_each_policy_is_admitted_or_skipped_with_a_reason(name: str, reason: Reason) -> None:
    """Invalid and conflicting policies are skipped with a reason; the rest still render."""
    result = render_policies(MIXED)
    admission = result.admission(f"mail/{name}")
    assert admission.reason is reason
    assert admission.message
    ids = [r.id for r in result.document.rules]
    assert (f"mail/{name}" in ids) is (reason is Reason.ACCEPTED)


def test_invalid_message_names_the_field_path() -> None:
    """An invalid policy's message carries the field path of its mistake."""
    msg = render_policies(MIXED).admission("mail/broken").message
    assert "spec.scope.clientCIDRs[0]" in msg


def test_rendered_text_loads_in_the_gateway(tmp_path: Path) -> None:
    """Contract: the rendered file loads through the gateway's own loader."""
    path = tmp_path / "policy.json"
    result = render_policies(MIXED + [policy(c.id, c.spec) for c in GOOD + BAD if c.name == "t"])
    path.write_text(result.text)
    doc = load_policy_document(path)
    assert doc == result.document
    assert len(doc.rules) >= 4


_domain = st.from_regex(r"\A(\*\.)?[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}\Z")
_cidr = st.builds(lambda a, p: f"10.{a}.0.0/{p}", st.integers(0, 255), st.sampled_from([16]))
_spec = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["opportunistic", "audit"]),
        "listener": st.sampled_from(["public-mx", "submission", "internal"]),
        "priority": st.integers(-1_000_000, 1_000_000),
        "minTLSVersion": st.sampled_from(["1.2", "1.3"]),
        "scope": st.fixed_dictionaries(
            {
                "recipientDomains": st.lists(_domain, max_size=3, unique=True),
                "clientCIDRs": st.lists(_cidr, min_size=1, max_size=3, unique=True),
            }
        ),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_spec, max_size=6))
def test_any_valid_policies_render_a_loadable_file(specs: list[dict[str, Any]]) -> None:
    """Property: whatever valid policies exist, the rendered file loads in the gateway model."""
    result = render_policies([policy(f"p{i}", s) for i, s in enumerate(specs)])
    doc = validate(PolicyDocument, parse_text(result.text, "rendered"), "rendered")
    assert doc == result.document
    assert json.loads(result.text)["version"] == 1


def test_certificates_one_per_listener_with_owners(golden: Any) -> None:
    """One Certificate per listener, deterministic Secret name, owned by its policies."""
    result = render_policies(MIXED)
    plans = plan_certificates("mxgate", result.accepted, excluded=result.certificate_conflicts)
    assert [(p.name, p.secret_name) for p in plans] == [
        ("mxgate-internal", "mxgate-internal-tls"),
        ("mxgate-public-mx", "mxgate-public-mx-tls"),
    ]
    manifests = [certificate_manifest(p, "mail") for p in plans]
    owners = manifests[1]["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o["uid"]) for o in owners] == [
        ("TLSPolicy", "partners", "uid-partners")
    ]
    golden("certificates-mixed.json", json.dumps(manifests, indent=2, sort_keys=True) + "\n")


def test_certificate_requests_never_decide_which_rules_apply() -> None:
    """Issue 18 item 4: a newer policy whose certificate differs from the listener's still
    has its rule rendered; only its request is refused (reported on it alone), the oldest
    request (by creation, not by last edit) is served, and editing the holder's dnsNames
    later evicts nothing."""
    holder = policy(
        "author",
        {"mode": "audit", "scope": {"senderDomains": ["a.test"]}, "certificate": CERT},
        created="2026-01-01T00:00:00Z",
    )
    admin_spec = {
        "mode": "require",
        "scope": {"senderDomains": ["bank.example"]},
        "certificate": {**CERT, "dnsNames": ["mx.example.com"]},
    }
    admin = policy("admin", admin_spec, created="2026-02-01T00:00:00Z")
    result = render_policies([admin, holder])
    assert result.admission("mail/admin").accepted
    assert "mail/admin" in {r.id for r in result.document.rules}
    assert set(result.certificate_conflicts) == {"mail/admin"}
    plans = plan_certificates("mxgate", result.accepted, excluded=result.certificate_conflicts)
    assert [(p.spec.dns_names, [o.name for o in p.owners]) for p in plans] == [
        (tuple(CERT["dnsNames"]), ["author"])
    ]
    edited = policy(
        "author",
        {
            "mode": "audit",
            "scope": {"senderDomains": ["a.test"]},
            "certificate": {**CERT, "dnsNames": ["other.example.com"]},
        },
        created="2026-01-01T00:00:00Z",
    )
    again = render_policies([admin, edited])
    assert [a.rule_id for a in again.admissions if a.accepted] == ["mail/admin", "mail/author"]


def test_configmap_applied_only_when_its_hash_changes() -> None:
    """The same render gives the same applied hash; a changed policy changes it."""
    first = configmap_manifest("mxgate-policy", "mail", render_policies(MIXED))
    again = configmap_manifest("mxgate-policy", "mail", render_policies(MIXED[::-1]))
    assert not needs_apply(again, first)
    assert needs_apply(first, None)
    changed = render_policies(
        [*MIXED[:1], policy("new", {"mode": "audit", "scope": {"senderDomains": ["n.test"]}})]
    )
    assert needs_apply(configmap_manifest("mxgate-policy", "mail", changed), first)


def test_the_shared_configmap_carries_no_owner_per_policy() -> None:
    """No ownerReferences on the shared object (issue 18 item 2): it would grow per policy."""
    manifest = configmap_manifest("mxgate-policy", "mail", render_policies(MIXED))
    assert "ownerReferences" not in manifest["metadata"]
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mxgate-operator"


def mta_sts_policy(name: str, domains: int, created: str) -> PolicyInput:
    spec = {
        "mode": "audit",
        "scope": {"recipientDomains": [f"d{i}.{name}.example" for i in range(domains)]},
        "mtaSts": {"mode": "testing", "mx": ["mx.example.net"]},
    }
    return policy(name, spec, created)


def test_what_is_rendered_always_loads_past_the_mtasts_limit() -> None:
    """16 policies x 64 published domains = 1,024 MTA-STS policies, past the gateway's 1,000:
    the oldest 15 are admitted (960), the newest is refused as Overflow, and the document
    loads in the gateway's own model (issue 18 item 1)."""
    policies = [mta_sts_policy(f"p{i:02}", 64, f"2026-01-01T00:00:{i:02}Z") for i in range(16)]
    result = render_policies(policies[::-1])
    reasons = {a.rule_id: a.reason for a in result.admissions}
    assert [r for r in reasons.values() if r is not Reason.ACCEPTED] == [Reason.OVERFLOW]
    assert reasons["mail/p15"] is Reason.OVERFLOW
    assert len(result.document.mta_sts_policies) == 15 * 64
    PolicyDocument.model_validate(json.loads(result.text))


def test_overflow_admits_the_oldest_first_within_the_byte_budget() -> None:
    """Past the byte budget the newest policies get Overflow, whatever order they are listed;
    the rendered bytes stay within the budget, and a newer small policy cannot unseat older."""
    policies = [mta_sts_policy(f"p{i:02}", 64, f"2026-01-01T00:00:{i:02}Z") for i in range(8)]
    one = len(render_policies(policies[:1]).text.encode())
    budget = Budget(bytes=one * 5 // 2)
    result = render_policies(policies[::-1], budget)
    accepted = [a.rule_id for a in result.admissions if a.accepted]
    assert accepted == ["mail/p00", "mail/p01"]
    assert len(result.text.encode()) <= budget.bytes
    overflow = result.admission("mail/p02")
    assert overflow.reason is Reason.OVERFLOW
    assert f"of {budget.bytes} bytes" in overflow.message
    assert render_policies(policies, budget).text == result.text


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=12),
    budget=st.integers(min_value=200, max_value=60_000),
)
def test_the_budget_is_never_exceeded(sizes: list[int], budget: int) -> None:
    """Any mix of policies and any budget: the rendered document fits and the gateway loads it."""
    policies = [
        mta_sts_policy(f"p{i:02}", n, f"2026-01-01T00:00:{i:02}Z") for i, n in enumerate(sizes)
    ]
    result = render_policies(policies, Budget(bytes=budget))
    assert len(result.text.encode()) <= budget
    PolicyDocument.model_validate(json.loads(result.text))


@pytest.mark.parametrize(
    ("status", "ready", "not_after"),
    [
        (None, None, None),
        ({}, None, None),
        (
            {
                "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
                "notAfter": "2027-01-01T00:00:00Z",
            },
            True,
            "2027-01-01T00:00:00Z",
        ),
        (
            {"conditions": [{"type": "Ready", "status": "False", "reason": "DoesNotExist"}]},
            False,
            None,
        ),
        ({"conditions": [{"type": "Issuing", "status": "True"}]}, None, None),
    ],
)
def test_certificate_state_mirrors_ready_and_not_after(
    status: dict[str, Any] | None, ready: bool | None, not_after: str | None
) -> None:
    """CertificateReady mirrors the Certificate's Ready condition and notAfter."""
    obj = None if status is None else {"status": status}
    state = certificate_state(obj)
    assert (state.ready, state.not_after) == (ready, not_after)
