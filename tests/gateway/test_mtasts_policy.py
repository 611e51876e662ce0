"""MTA-STS policy text, policy id and DNS records, checked against RFC 8461 and RFC 8460."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from mxgate_gateway.config.model import (
    MTASTS,
    Config,
    MTASTSMode,
    MTASTSPolicy,
    PolicyDocument,
    TLSRPTSettings,
)
from mxgate_gateway.mtasts.policy import (
    dns_records,
    mx_matches,
    pattern_covered_by,
    policy_id,
    render_policy,
    sts_txt_record,
    tlsrpt_txt_record,
)

# RFC 8461 §3.2 ABNF, one field per line (the policy-term is CRLF when we write).
FIELD = {
    "version": re.compile(r"^version: STSv1$"),
    "mode": re.compile(r"^mode: (testing|enforce|none)$"),
    "mx": re.compile(r"^mx: (\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+$"),
    "max_age": re.compile(r"^max_age: [0-9]{1,10}$"),
}

RFC_EXAMPLE = MTASTSPolicy(
    domain="example.com",
    mode=MTASTSMode.ENFORCE,
    mx=("mail.example.com", "*.example.net", "backupmx.example.com"),
    max_age=604800,
)


def test_rfc_8461_example_policy_renders_line_by_line() -> None:
    """The RFC 8461 §3.2 example policy renders exactly, each line ended by CRLF."""
    text = render_policy(RFC_EXAMPLE)
    assert text.split("\r\n") == [
        "version: STSv1",
        "mode: enforce",
        "mx: mail.example.com",
        "mx: *.example.net",
        "mx: backupmx.example.com",
        "max_age: 604800",
        "",
    ]
    assert "\n" not in text.replace("\r\n", "")


@pytest.mark.parametrize("mode", list(MTASTSMode))
@pytest.mark.parametrize("max_age", [86400, 604800, 31557600])
def test_every_line_matches_the_rfc_grammar(mode: MTASTSMode, max_age: int) -> None:
    """Each line is one §3.2 field, version first, required fields exactly once."""
    policy = MTASTSPolicy(domain="a.test", mode=mode, mx=("mx.a.test", "*.b.test"), max_age=max_age)
    lines = render_policy(policy).removesuffix("\r\n").split("\r\n")
    names = [line.split(":", 1)[0] for line in lines]
    assert names[0] == "version"
    assert names.count("version") == names.count("mode") == names.count("max_age") == 1
    for line, name in zip(lines, names, strict=True):
        assert FIELD[name].fullmatch(line), line
    assert f"mode: {mode.value}" in lines
    assert f"max_age: {max_age}" in lines


def test_mode_none_may_omit_mx() -> None:
    """A ``none`` policy (withdrawing MTA-STS) needs no mx line (RFC 8461 §3.2)."""
    text = render_policy(MTASTSPolicy(domain="a.test", mode=MTASTSMode.NONE))
    assert text == "version: STSv1\r\nmode: none\r\nmax_age: 604800\r\n"


@pytest.mark.parametrize(
    "change",
    [
        {"mode": MTASTSMode.TESTING},
        {"mx": ("mail.example.com", "*.example.net")},
        {"mx": ("backupmx.example.com", "mail.example.com", "*.example.net")},
        {"max_age": 604801},
    ],
)
def test_policy_id_changes_exactly_when_the_text_changes(change: dict[str, object]) -> None:
    """Any change to the policy text gives a new id; the same text always gives the same id."""
    changed = RFC_EXAMPLE.model_copy(update=change)
    assert render_policy(changed) != render_policy(RFC_EXAMPLE)
    assert policy_id(render_policy(changed)) != policy_id(render_policy(RFC_EXAMPLE))
    same = MTASTSPolicy.model_validate(RFC_EXAMPLE.model_dump())
    assert policy_id(render_policy(same)) == policy_id(render_policy(RFC_EXAMPLE))


def test_policy_id_syntax_and_txt_record() -> None:
    """The id is 1-32 alphanumerics and the TXT value is ``v=STSv1; id=<id>`` (§3.1)."""
    id_ = policy_id(render_policy(RFC_EXAMPLE))
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", id_)
    assert sts_txt_record(id_) == f"v=STSv1; id={id_}"


@pytest.mark.parametrize("bad", ["", "a" * 33, "2016-08-31", "id with space", "é"])
def test_txt_record_refuses_ids_outside_the_rfc_syntax(bad: str) -> None:
    """An id that is not 1-32 alphanumerics is never published."""
    with pytest.raises(ValueError, match="RFC 8461"):
        sts_txt_record(bad)


@pytest.mark.parametrize(
    ("rua", "record"),
    [
        (["mailto:reports@example.com"], "v=TLSRPTv1; rua=mailto:reports@example.com"),
        (
            ["https://reporting.example.com/v1/tlsrpt"],
            "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
        ),
        (
            ["mailto:a@example.com", "https://r.example.com/tlsrpt"],
            "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/tlsrpt",
        ),
    ],
)
def test_tlsrpt_record_matches_rfc_8460_examples(rua: list[str], record: str) -> None:
    """The ``_smtp._tls`` TXT value is written as RFC 8460 §3 shows it."""
    assert tlsrpt_txt_record(rua) == record


@pytest.mark.parametrize(
    "bad",
    [
        "http://insecure.example.com/tlsrpt",
        "ftp://example.com/x",
        "mailto:no-at-sign",
        "mailto:a,b@example.com",
        "https://example.com/a;b",
        "https://example.com/a b",
        "reports@example.com",
    ],
)
def test_tlsrpt_record_refuses_bad_uris(bad: str) -> None:
    """Only mailto: and https: URIs without separators or spaces may be published."""
    with pytest.raises(ValueError, match="RFC 8460"):
        tlsrpt_txt_record([bad])


def test_dns_records_name_both_txt_records_and_the_policy_url() -> None:
    """The records a user publishes carry absolute names and the values above."""
    recs = dns_records(RFC_EXAMPLE, rua=["mailto:tlsrpt@example.com"])
    assert recs.mta_sts.name == "_mta-sts.example.com."
    assert recs.mta_sts.value == f"v=STSv1; id={recs.policy_id}"
    assert recs.tlsrpt is not None
    assert recs.tlsrpt.name == "_smtp._tls.example.com."
    assert recs.tlsrpt.value == "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"
    assert recs.policy_url == "https://mta-sts.example.com/.well-known/mta-sts.txt"
    assert recs.policy_text == render_policy(RFC_EXAMPLE)
    assert dns_records(RFC_EXAMPLE).tlsrpt is None


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.Example.com.", True),
        ("mail.example.com", "mail2.example.com", False),
        ("*.example.com", "mx1.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
    ],
)
def test_mx_pattern_matching(pattern: str, host: str, matches: bool) -> None:
    """A ``*.`` pattern matches exactly one leftmost label (RFC 8461 §4.1)."""
    assert mx_matches(pattern, host) is matches


@pytest.mark.parametrize(
    ("pattern", "dns_names", "covered"),
    [
        ("mx1.example.com", ["mx1.example.com"], True),
        ("mx1.example.com", ["*.example.com"], True),
        ("mx1.example.com", ["mx2.example.com"], False),
        ("*.example.com", ["*.example.com"], True),
        ("*.example.com", ["mx1.example.com", "mx2.example.com"], False),
        ("a.b.example.com", ["*.example.com"], False),
    ],
)
def test_mx_pattern_coverage_by_certificate(
    pattern: str, dns_names: list[str], covered: bool
) -> None:
    """An mx pattern is covered only if every host it admits is a certificate name."""
    assert pattern_covered_by(pattern, dns_names) is covered


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"domain": "a.test", "mode": "enforce"}, "mx needs at least one pattern"),
        ({"domain": "a.test", "mx": ["mx.a.test"], "max_age": 86399}, "greater than or equal"),
        ({"domain": "a.test", "mx": ["mx.a.test"], "max_age": 31557601}, "less than or equal"),
        ({"domain": "a.test", "mx": ["mx..a.test"]}, "not a domain"),
        ({"domain": "a.test", "mx": ["a.*.test"]}, "not a domain"),
        ({"domain": "a.test", "mode": "report", "mx": ["mx.a.test"]}, "Input should be"),
    ],
)
def test_policy_config_is_validated(data: dict[str, object], message: str) -> None:
    """Policies outside RFC 8461 (bounds, mx syntax, modes) are refused at config load."""
    with pytest.raises(ValidationError, match=message):
        MTASTSPolicy.model_validate(data)


def test_section_refuses_duplicate_domains_and_inverted_limits() -> None:
    """One policy per domain; the decompressed cap is never below the compressed cap."""
    pol = {"domain": "a.test", "mx": ["mx.a.test"]}
    with pytest.raises(ValidationError, match="duplicate MTA-STS policy"):
        MTASTS.model_validate({"policies": [pol, pol]})
    with pytest.raises(ValidationError, match="max_decompressed_bytes"):
        TLSRPTSettings(max_compressed_bytes=4096, max_decompressed_bytes=2048)


def test_policy_document_policies_append_to_config() -> None:
    """Operator-rendered MTA-STS policies join the main config's, keeping its tlsrpt settings."""
    config = Config.model_validate(
        {
            "hostname": "mx.a.test",
            "domains": ["a.test"],
            "upstreams": [{"address": "127.0.0.1:25"}],
            "mta_sts": {
                "policies": [{"domain": "a.test", "mx": ["mx.a.test"]}],
                "tlsrpt": {"enabled": True},
            },
        }
    )
    doc = PolicyDocument(mta_sts_policies=(MTASTSPolicy(domain="b.test", mx=("mx.b.test",)),))
    merged = config.with_policy_document(doc)
    assert merged.mta_sts is not None
    assert [p.domain for p in merged.mta_sts.policies] == ["a.test", "b.test"]
    assert merged.mta_sts.tlsrpt.enabled
    assert config.with_policy_document(PolicyDocument()).mta_sts == config.mta_sts


def test_policy_document_may_not_redefine_a_configured_domain() -> None:
    """A domain's MTA-STS policy comes from one place: a second definition is refused on load."""
    config = Config.model_validate(
        {
            "hostname": "mx.a.test",
            "domains": ["a.test"],
            "upstreams": [{"address": "127.0.0.1:25"}],
            "mta_sts": {"policies": [{"domain": "a.test", "mx": ["mx.a.test"]}]},
        }
    )
    doc = PolicyDocument(mta_sts_policies=(MTASTSPolicy(domain="a.test", mx=("mx2.a.test",)),))
    with pytest.raises(ValidationError, match=r"duplicate MTA-STS policy for domain 'a\.test'"):
        config.with_policy_document(doc)
