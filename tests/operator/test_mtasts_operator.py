"""MTA-STS in the operator: served policies, DNS records in status, conditions, conflicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from validation_table import CERT

from mxgate_gateway.config.model import Config, PolicyDocument
from mxgate_gateway.mtasts.policy import policy_id, render_policy
from mxgate_operator import spec_mtasts as M
from mxgate_operator.render.allowed import MTASTSRules
from mxgate_operator.render.certificates import plan_certificates
from mxgate_operator.render.gateway_config import PolicyInput, Reason, render_policies
from mxgate_operator.render.mtasts import published_domains
from mxgate_operator.render.status import policy_status
from mxgate_operator.spec import parse_policy

NOW = "2026-11-28T12:00:00Z"
MTA = {
    "mode": "audit",
    "scope": {"recipientDomains": ["example.com", "example.org", "*.example.net"]},
    "certificate": CERT,  # dnsNames: mx1.example.com
    "mtaSts": {"mode": "testing", "mx": ["mx1.example.com"]},
    "tlsRpt": {"rua": ["mailto:tlsrpt@example.com"]},
}


def inp(name: str, spec: dict[str, Any], created: str = NOW) -> PolicyInput:
    return PolicyInput("mail", name, f"uid-{name}", 1, parse_policy(name, spec), created)


def status_for(
    spec: dict[str, Any], previous: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    p = inp("p", spec)
    result = render_policies([p])
    plans = plan_certificates("mxgate", result.accepted)
    out = policy_status(
        generation=1,
        rule_id="mail/p",
        admission=result.admission("mail/p"),
        spec=p.parsed.spec,
        config_hash=result.config_hash,
        plan=plans[0] if plans else None,
        cert_state=None,
        effect=None,
        previous=previous or {},
        now=NOW,
    )
    return out.status, [(e.type, e.reason) for e in out.events]


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_rendered_document_serves_one_policy_per_concrete_domain() -> None:
    """The gateway policy file carries the MTA-STS policy for each non-wildcard domain."""
    result = render_policies([inp("p", MTA)])
    doc = PolicyDocument.model_validate_json(result.text)
    assert [m.domain for m in doc.mta_sts_policies] == ["example.com", "example.org"]
    assert {m.mode.value for m in doc.mta_sts_policies} == {"testing"}
    spec = parse_policy("p", MTA).spec
    assert spec is not None
    assert published_domains(spec) == ("example.com", "example.org")


def test_documents_without_mta_sts_keep_their_bytes() -> None:
    """Policies without spec.mtaSts render exactly the keys they always did."""
    plain = {k: v for k, v in MTA.items() if k not in ("mtaSts", "tlsRpt")}
    assert set(json.loads(render_policies([inp("p", plain)]).text)) == {"version", "rules"}


def test_status_lists_the_records_and_the_id_the_gateway_serves() -> None:
    """status.mtaSts holds the TXT records; the id is the hash of the text the gateway serves."""
    status, _ = status_for(MTA)
    served = PolicyDocument.model_validate_json(render_policies([inp("p", MTA)]).text)
    config = Config.model_validate(
        {
            "hostname": "mx1.example.com",
            "domains": ["example.com"],
            "upstreams": [{"address": "127.0.0.1:25"}],
        }
    ).with_policy_document(served)
    assert config.mta_sts is not None
    text = render_policy(config.mta_sts.policies[0])
    mta = status["mtaSts"]
    assert mta["policyId"] == policy_id(text)
    assert mta["domains"] == ["example.com", "example.org"]
    assert mta["policyURLs"][0] == "https://mta-sts.example.com/.well-known/mta-sts.txt"
    assert {(r["name"], r["value"]) for r in mta["records"]} == {
        ("_mta-sts.example.com.", f"v=STSv1; id={policy_id(text)}"),
        ("_mta-sts.example.org.", f"v=STSv1; id={policy_id(text)}"),
        ("_smtp._tls.example.com.", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"),
        ("_smtp._tls.example.org.", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"),
    }
    assert conds(status)["MTASTSRecordsRendered"] == ("True", "RecordsRendered")
    assert conds(status)["MXCoveredByCertificate"] == ("True", "Covered")


def test_changed_policy_says_so_and_posts_an_event() -> None:
    """A new policy id flips the records condition to RecordsChanged with a Normal event."""
    first, _ = status_for(MTA)
    enforce = {**MTA, "mtaSts": {"mode": "enforce", "mx": ["mx1.example.com"]}}
    second, events = status_for(enforce, previous=first)
    assert second["mtaSts"]["policyId"] != first["mtaSts"]["policyId"]
    assert conds(second)["MTASTSRecordsRendered"] == ("True", "RecordsChanged")
    assert ("Normal", "MTASTSRecordsChanged") in events
    third, events = status_for(enforce, previous=second)
    assert conds(third)["MTASTSRecordsRendered"] == ("True", "RecordsRendered")
    assert events == []


@pytest.mark.parametrize(
    ("mx", "cert", "expected"),
    [
        (["mx1.example.com"], True, ("True", "Covered")),
        (["mx1.example.com", "mx2.example.com"], True, ("False", "MXNotCovered")),
        (["*.example.com"], True, ("False", "MXNotCovered")),
        (["mx1.example.com"], False, ("Unknown", "NoCertificate")),
    ],
)
def test_mx_patterns_are_checked_against_the_certificate(
    mx: list[str], cert: bool, expected: tuple[str, str]
) -> None:
    """Every mx pattern must be a dnsName of the listener's certificate (or say why not)."""
    spec = {**MTA, "mtaSts": {"mode": "enforce", "mx": mx}}
    if not cert:
        del spec["certificate"]
    status, _ = status_for(spec)
    assert conds(status)["MXCoveredByCertificate"] == expected


def test_tls_rpt_alone_publishes_only_the_report_record() -> None:
    """With only spec.tlsRpt there is no policy to serve and no mx condition."""
    spec = {k: v for k, v in MTA.items() if k != "mtaSts"}
    status, _ = status_for(spec)
    assert [r["name"] for r in status["mtaSts"]["records"]] == [
        "_smtp._tls.example.com.",
        "_smtp._tls.example.org.",
    ]
    assert "MXCoveredByCertificate" not in conds(status)
    assert (
        PolicyDocument.model_validate_json(render_policies([inp("p", spec)]).text).mta_sts_policies
        == ()
    )


def test_plain_policies_have_no_mta_sts_status() -> None:
    """Policies without the two fields keep the four conditions and no status.mtaSts."""
    status, _ = status_for({"mode": "audit", "scope": {"senderDomains": ["a.test"]}})
    assert "mtaSts" not in status
    assert set(conds(status)) == {"Accepted", "CertificateReady", "StandardsCompliant", "Ready"}


def test_two_policies_may_not_publish_different_mta_sts_for_one_domain() -> None:
    """The older policy keeps the domain; the newer differing one is not accepted."""
    old = inp("old", MTA, "2026-01-01T00:00:00Z")
    other = {
        **MTA,
        "priority": 7,
        "mtaSts": {"mode": "enforce", "mx": ["mx1.example.com"]},
    }
    new = inp("new", other, "2026-02-01T00:00:00Z")
    same = inp("same", {**MTA, "mode": "opportunistic", "priority": 5}, "2026-03-01T00:00:00Z")
    result = render_policies([new, old, same])
    assert result.admission("mail/old").accepted
    assert result.admission("mail/new").reason is Reason.MTASTS_CONFLICT
    assert "mail/old" in result.admission("mail/new").message
    assert result.admission("mail/same").accepted
    doc = PolicyDocument.model_validate_json(result.text)
    assert {m.mode.value for m in doc.mta_sts_policies} == {"testing"}


def test_crd_bounds_and_patterns_are_the_parser_constants(crd: dict[str, Any]) -> None:
    """The CRD's mtaSts/tlsRpt bounds and patterns are spec_mtasts's constants."""
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    mta = spec["properties"]["mtaSts"]["properties"]
    rua = spec["properties"]["tlsRpt"]["properties"]["rua"]
    assert mta["mx"]["items"]["pattern"] == M.MX_PATTERN
    assert mta["mx"]["maxItems"] == M.MAX_MX
    assert (mta["maxAge"]["minimum"], mta["maxAge"]["maximum"]) == (M.MIN_MAX_AGE, M.MAX_MAX_AGE)
    assert mta["maxAge"]["default"] == M.DEFAULT_MAX_AGE
    assert rua["items"]["pattern"] == M.RUA_PATTERN
    assert (rua["maxItems"], rua["items"]["maxLength"]) == (M.MAX_RUA, M.MAX_RUA_LENGTH)


def test_mta_sts_only_for_the_gateways_domains_and_names() -> None:
    """Issue 18 item 5: a policy may publish MTA-STS only for the gateway's domains, with mx
    among the gateway's names; anything else is Accepted=False MTASTSNotAllowed."""
    rules = MTASTSRules(("example.com", "example.org"), ("mx1.example.com", "*.mx.example.com"))
    ok = inp("ok", MTA)
    foreign = inp("foreign", {**MTA, "scope": {"recipientDomains": ["accepted.test"]}})
    attacker = inp(
        "attacker",
        {**MTA, "mtaSts": {"mode": "enforce", "mx": ["mx.attacker.example"], "maxAge": 31557600}},
    )
    wild = inp("wild", {**MTA, "mtaSts": {"mode": "testing", "mx": ["*.example.com"]}})
    covered = inp("covered", {**MTA, "mtaSts": {"mode": "testing", "mx": ["a.mx.example.com"]}})
    for p in (ok, foreign, attacker, wild, covered):
        result = render_policies([p], mta_sts_rules=rules)
        reason = result.admission(p.rule_id).reason
        expected = Reason.ACCEPTED if p in (ok, covered) else Reason.MTASTS_NOT_ALLOWED
        assert reason is expected, (p.name, result.admission(p.rule_id).message)


def test_a_second_claim_is_shown_on_both_policies() -> None:
    """The older claim serves; the differing newer one is refused, and the older one's
    Accepted message names it (first claim never wins silently)."""
    old = inp("old", MTA, "2026-01-01T00:00:00Z")
    rival = {**MTA, "priority": 7, "mtaSts": {"mode": "enforce", "mx": ["mx1.example.com"]}}
    new = inp("new", rival, "2026-02-01T00:00:00Z")
    result = render_policies([new, old])
    assert result.admission("mail/new").reason is Reason.MTASTS_CONFLICT
    assert "mail/old" in result.admission("mail/new").message
    held = result.admission("mail/old")
    assert held.accepted
    assert "mail/new" in held.message
