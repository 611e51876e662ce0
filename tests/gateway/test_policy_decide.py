"""Each mode at each stage, the reply codes, and the default: the policy as a table."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxgate_gateway.config.model import Listener, Mode, Policy
from mxgate_gateway.policy import (
    DEFAULT_RULE_ID,
    Action,
    SessionFacts,
    Shortfall,
    Stage,
    decide_mail,
    decide_rcpt,
    domain_of,
    trace_header_value,
)

TLS13, TLS12, PLAIN = "TLSv1.3", "TLSv1.2", None


def facts(tls: str | None, ip: str = "192.0.2.10", listener: str = "public-mx") -> SessionFacts:
    return SessionFacts(client_ip=ip_address(ip), tls_version=tls, listener=Listener(listener))


def policy(mode: str = "opportunistic", *rules: dict[str, object], **kw: object) -> Policy:
    return Policy.model_validate({"mode": mode, "rules": list(rules), **kw})


@pytest.mark.parametrize(
    ("mode", "minimum", "refusal", "tls", "action", "reply", "short"),
    [
        # opportunistic never refuses (RFC 3207 §4)
        ("opportunistic", "1.2", "permanent", PLAIN, Action.ACCEPT, None, Shortfall.PLAINTEXT),
        ("opportunistic", "1.3", "permanent", TLS12, Action.ACCEPT, None, Shortfall.WEAK_TLS),
        ("opportunistic", "1.2", "permanent", TLS13, Action.ACCEPT, None, Shortfall.NONE),
        # audit accepts but records what require would have done
        ("audit", "1.2", "permanent", PLAIN, Action.WOULD_REFUSE, None, Shortfall.PLAINTEXT),
        ("audit", "1.3", "permanent", TLS12, Action.WOULD_REFUSE, None, Shortfall.WEAK_TLS),
        ("audit", "1.2", "permanent", TLS12, Action.ACCEPT, None, Shortfall.NONE),
        ("audit", "1.2", "permanent", "TLSv1.1", Action.WOULD_REFUSE, None, Shortfall.WEAK_TLS),
        # require refuses: 530 5.7.0 for plaintext, 550 5.7.10 for weak TLS
        (
            "require", "1.2", "permanent", PLAIN, Action.REFUSE,
            (530, "5.7.0 Must issue a STARTTLS command first"), Shortfall.PLAINTEXT,
        ),
        (
            "require", "1.3", "permanent", TLS12, Action.REFUSE,
            (550, "5.7.10 Encryption too weak: TLS 1.3 or later required"), Shortfall.WEAK_TLS,
        ),
        ("require", "1.3", "permanent", TLS13, Action.ACCEPT, None, Shortfall.NONE),
        ("require", "1.2", "permanent", TLS13, Action.ACCEPT, None, Shortfall.NONE),
        # the soft variant answers 450 4.7.x: the sender keeps the mail and retries
        (
            "require", "1.2", "temporary", PLAIN, Action.REFUSE,
            (450, "4.7.0 Must issue a STARTTLS command first (TLS required, try again)"),
            Shortfall.PLAINTEXT,
        ),
        (
            "require", "1.3", "temporary", TLS12, Action.REFUSE,
            (450, "4.7.10 Encryption too weak: TLS 1.3 or later required (try again)"),
            Shortfall.WEAK_TLS,
        ),
        # an unknown protocol name never satisfies a minimum
        ("require", "1.2", "permanent", "SSLv3", Action.REFUSE, None, Shortfall.WEAK_TLS),
    ],
)  # fmt: skip
@pytest.mark.parametrize("via", ["default", "rule"])
@pytest.mark.parametrize("stage", [Stage.MAIL, Stage.RCPT])
def test_each_mode_at_each_stage(
    mode: str,
    minimum: str,
    refusal: str,
    tls: str | None,
    action: Action,
    reply: tuple[int, str] | None,
    short: Shortfall,
    via: str,
    stage: Stage,
) -> None:
    """A mode acts alike as the default or as a rule, at MAIL or at RCPT."""
    if via == "default":
        pol = policy(mode, min_tls_version=minimum, refusal=refusal)
        rule_id = DEFAULT_RULE_ID
    else:
        rule = {"id": "r1", "mode": mode, "min_tls_version": minimum, "refusal": refusal}
        scope_key = "recipient_domains" if stage is Stage.RCPT else "sender_domains"
        pol = policy("opportunistic", {**rule, "scope": {scope_key: ["x.test"]}})
        rule_id = "r1"
    f = facts(tls)
    if stage is Stage.MAIL:
        d = decide_mail(pol, f, "x.test")
    else:
        d = decide_rcpt(pol, f, "other.test", "x.test")
    assert (d.action, d.rule_id, d.mode, d.shortfall, d.stage) == (
        action,
        rule_id,
        Mode(mode),
        short,
        stage,
    )
    if reply is not None or action is not Action.REFUSE:
        assert d.reply == reply
    else:
        assert d.reply is not None
        assert d.reply[0] == 550
        assert d.reply[1].startswith("5.7.10 ")


def test_recipient_rules_are_not_considered_at_mail() -> None:
    """A recipient-scoped rule is ignored at MAIL and applies at RCPT, to its domain only."""
    pol = policy(
        "audit", {"id": "fin", "mode": "require", "scope": {"recipient_domains": ["fin.test"]}}
    )
    f = facts(PLAIN)
    assert decide_mail(pol, f, "s.test").rule_id == DEFAULT_RULE_ID
    assert decide_rcpt(pol, f, "s.test", "fin.test").action is Action.REFUSE
    other = decide_rcpt(pol, f, "s.test", "other.test")
    assert (other.action, other.rule_id, other.carried) == (
        Action.WOULD_REFUSE,
        DEFAULT_RULE_ID,
        True,
    )


def test_rcpt_decision_carries_the_mail_decision_when_no_recipient_rule_wins() -> None:
    """Without a winning recipient rule, RCPT repeats MAIL's decision and marks it carried."""
    pol = policy(
        "opportunistic", {"id": "bank", "mode": "audit", "scope": {"sender_domains": ["bank.test"]}}
    )
    f = facts(PLAIN)
    mail = decide_mail(pol, f, "bank.test")
    rcpt = decide_rcpt(pol, f, "bank.test", "any.test")
    assert (mail.rule_id, mail.action, mail.carried) == ("bank", Action.WOULD_REFUSE, False)
    assert (rcpt.rule_id, rcpt.action, rcpt.carried) == ("bank", Action.WOULD_REFUSE, True)


def test_a_recipient_rule_overrides_a_sender_exemption_for_its_recipients() -> None:
    """An opportunistic sender exemption does not stop a recipient domain's require rule."""
    pol = policy(
        "opportunistic",
        {"id": "legacy", "mode": "opportunistic", "scope": {"sender_domains": ["old.test"]}},
        {"id": "fin", "mode": "require", "scope": {"recipient_domains": ["fin.test"]}},
    )
    d = decide_rcpt(pol, facts(PLAIN), "old.test", "fin.test")
    assert (d.rule_id, d.action, d.carried) == ("fin", Action.REFUSE, False)


@pytest.mark.parametrize(
    ("sender", "expected"),
    [(None, DEFAULT_RULE_ID), ("", DEFAULT_RULE_ID), ("bank.test", "bank"), ("BANK.test.", "bank")],
)
def test_null_sender_matches_no_sender_rule(sender: str | None, expected: str) -> None:
    """The null sender `<>` matches no sender scope; sender domains match case-insensitively."""
    pol = policy(
        "opportunistic",
        {"id": "bank", "mode": "require", "scope": {"sender_domains": ["bank.test"]}},
    )
    assert decide_mail(pol, facts(PLAIN), sender).rule_id == expected


@pytest.mark.parametrize(
    ("rule_listener", "session_listener", "applies"),
    [
        (None, "public-mx", True),
        (None, "submission", True),
        ("submission", "submission", True),
        ("submission", "public-mx", False),
        ("internal", "public-mx", False),
    ],
)
def test_listener_scoped_rules_apply_only_on_their_listener(
    rule_listener: str | None, session_listener: str, applies: bool
) -> None:
    """A rule bound to a listener is invisible to sessions on other listeners."""
    rule = {"id": "sub", "mode": "require", "scope": {"client_cidrs": ["0.0.0.0/0"]}}
    if rule_listener:
        rule["listener"] = rule_listener
    d = decide_mail(policy("opportunistic", rule), facts(PLAIN, listener=session_listener), None)
    assert (d.rule_id == "sub") is applies
    assert d.refused is applies


@pytest.mark.parametrize(
    ("address", "domain"),
    [
        ("user@Example.ORG", "example.org"),
        ("<user@example.org>", "example.org"),
        ('"a@b"@example.org', "example.org"),
        ("", None),
        ("<>", None),
        ("postmaster", None),
        ("user@", None),
    ],
)
def test_domain_of(address: str, domain: str | None) -> None:
    """The sender domain is the part after the last @, lower-cased; `<>` has none."""
    assert domain_of(address) == domain


@pytest.mark.parametrize(
    ("tls", "value"), [(TLS13, "TLSv1.3"), (TLS12, "TLSv1.2"), (PLAIN, "none"), ("SSLv3", "other")]
)
def test_trace_header_value(tls: str | None, value: str) -> None:
    """The trace header carries the TLS version, or `none` for plaintext."""
    assert trace_header_value(facts(tls)) == value


def test_ipv4_mapped_client_matches_ipv4_rules() -> None:
    """A client seen as ::ffff:192.0.2.1 on a dual-stack socket matches IPv4 CIDRs."""
    pol = policy(
        "opportunistic",
        {"id": "net", "mode": "require", "scope": {"client_cidrs": ["192.0.2.0/24"]}},
    )
    assert decide_mail(pol, facts(PLAIN, ip="::ffff:192.0.2.1"), None).rule_id == "net"


_rules = st.lists(
    st.builds(
        lambda i, mode, v, scope: {
            "id": f"r{i}",
            "mode": mode,
            "min_tls_version": v,
            "scope": scope,
        },
        st.integers(0, 99),
        st.sampled_from(["opportunistic", "audit", "require"]),
        st.sampled_from(["1.2", "1.3"]),
        st.sampled_from(
            [
                {"sender_domains": ["*.test"]},
                {"recipient_domains": ["x.test"]},
                {"client_cidrs": ["192.0.2.0/24"]},
                {"client_cidrs": ["::/0"], "sender_domains": ["s.test"]},
            ]
        ),
    ),
    max_size=5,
    unique_by=lambda r: r["id"],
)


@given(
    st.sampled_from(["opportunistic", "audit", "require"]),
    _rules,
    st.sampled_from([TLS13, TLS12, PLAIN]),
    st.sampled_from(["192.0.2.7", "2001:db8::7"]),
    st.sampled_from([None, "s.test", "other.example"]),
)
def test_every_decision_is_consistent(
    mode: str, rules: list[dict[str, object]], tls: str | None, ip: str, sender: str | None
) -> None:
    """Whatever the rules: the action follows the mode, replies come only with REFUSE."""
    pol = policy(mode, *rules)
    ids = {r.id: r for r in pol.rules}
    f = facts(tls, ip)
    for d in (decide_mail(pol, f, sender), decide_rcpt(pol, f, sender, "x.test")):
        rule = ids.get(d.rule_id)
        assert rule is not None or d.rule_id == DEFAULT_RULE_ID
        assert d.mode is (rule.mode if rule else Mode(mode))
        if d.shortfall is Shortfall.NONE or d.mode is Mode.OPPORTUNISTIC:
            assert d.action is Action.ACCEPT
        elif d.mode is Mode.AUDIT:
            assert d.action is Action.WOULD_REFUSE
        else:
            assert d.action is Action.REFUSE
        assert (d.reply is not None) is (d.action is Action.REFUSE)
        if d.stage is Stage.MAIL:
            assert rule is None or not rule.scope.recipient_domains
