"""Precedence: most specific scope wins, then priority, then the stricter mode; by table."""

from __future__ import annotations

import random
from ipaddress import ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxgate_gateway.config.model import Listener, Policy, Rule
from mxgate_gateway.policy import DEFAULT_RULE_ID, SessionFacts, decide_rcpt
from mxgate_gateway.policy.match import domain_strength, winning_rule

FACTS = SessionFacts(ip_address("192.0.2.10"), None, Listener.PUBLIC_MX)
SENDER, RECIPIENT = "mail.bank.test", "fin.corp.test"


def rule(rid: str, mode: str = "audit", prio: int = 0, **scope: list[str]) -> dict[str, object]:
    return {"id": rid, "mode": mode, "priority": prio, "scope": scope}


S = "sender_domains"
R = "recipient_domains"
C = "client_cidrs"


@pytest.mark.parametrize(
    ("rules", "winner"),
    [
        ([], DEFAULT_RULE_ID),
        # specificity 1: more constrained dimensions win, whatever the priority
        ([rule("one", prio=99, **{S: ["mail.bank.test"]}),
          rule("two", **{S: ["*.test"], C: ["0.0.0.0/0"]})], "two"),
        ([rule("two", **{R: ["*.test"], S: ["*.test"]}),
          rule("three", **{R: ["*.test"], S: ["*.test"], C: ["0.0.0.0/0"]})], "three"),
        # specificity 2: with equal dimensions, recipient strength, then sender, then client
        ([rule("rcpt", **{R: ["*.test"]}), rule("sender", **{S: ["mail.bank.test"]})], "rcpt"),
        ([rule("sender", **{S: ["*.test"]}), rule("net", **{C: ["192.0.2.10/32"]})], "sender"),
        # an exact domain beats a wildcard; a longer wildcard beats a shorter one
        ([rule("wild", **{S: ["*.bank.test"]}), rule("exact", **{S: ["mail.bank.test"]})], "exact"),
        ([rule("short", **{S: ["*.test"]}), rule("long", **{S: ["*.bank.test"]})], "long"),
        # entries within a dimension are ORed: the strongest matching entry counts
        ([rule("or", **{S: ["*.test", "mail.bank.test"]}), rule("wild", **{S: ["*.bank.test"]})],
         "or"),
        # a longer CIDR prefix beats a shorter one
        ([rule("wide", **{C: ["192.0.0.0/8"]}), rule("narrow", **{C: ["192.0.2.0/24"]})], "narrow"),
        # specificity 3: a listener-bound rule beats an otherwise equal unbound one
        ([rule("any", **{S: ["*.test"]}),
          {**rule("mx", **{S: ["*.test"]}), "listener": "public-mx"}], "mx"),
        # equal specificity: higher priority wins even against a stricter mode
        ([rule("strict", "require", prio=1, **{S: ["*.test"]}),
          rule("lax", "opportunistic", prio=2, **{S: ["*.test"]})], "lax"),
        # equal specificity and priority: the stricter mode wins
        ([rule("lax", "opportunistic", **{S: ["*.test"]}),
          rule("audit", "audit", **{S: ["*.test"]})], "audit"),
        ([rule("audit", "audit", **{S: ["*.test"]}),
          rule("strict", "require", **{S: ["*.test"]})], "strict"),
        # same mode: the higher minimum TLS version, then permanent over temporary
        ([rule("v12", "require", **{S: ["*.test"]}),
          {**rule("v13", "require", **{S: ["*.test"]}), "min_tls_version": "1.3"}], "v13"),
        ([{**rule("soft", "require", **{S: ["*.test"]}), "refusal": "temporary"},
          rule("hard", "require", **{S: ["*.test"]})], "hard"),
        # complete ties: the smallest rule id, independent of order
        ([rule("b", **{S: ["*.test"]}), rule("a", **{S: ["*.test"]})], "a"),
        # a rule must match in every dimension it constrains (ANDed)
        ([rule("and", **{S: ["mail.bank.test"], C: ["198.51.100.0/24"]})], DEFAULT_RULE_ID),
        ([rule("self", **{S: ["*.mail.bank.test"]})], DEFAULT_RULE_ID),
        ([rule("v6", **{C: ["::/0"]})], DEFAULT_RULE_ID),
    ],
)  # fmt: skip
def test_precedence_table(rules: list[dict[str, object]], winner: str) -> None:
    """The rule in the winner column decides, in either rule order."""
    for ordered in (rules, list(reversed(rules))):
        pol = Policy.model_validate({"mode": "opportunistic", "rules": ordered})
        assert decide_rcpt(pol, FACTS, SENDER, RECIPIENT).rule_id == winner


@pytest.mark.parametrize(
    ("pattern", "domain", "strength"),
    [
        ("bank.test", "bank.test", 2),
        ("bank.test", "mail.bank.test", None),
        ("*.bank.test", "mail.bank.test", 2),
        ("*.bank.test", "a.b.bank.test", 2),
        ("*.bank.test", "bank.test", None),
        ("*.bank.test", "evilbank.test", None),
        ("*.test", "bank.test", 1),
    ],
)
def test_domain_patterns(pattern: str, domain: str, strength: int | None) -> None:
    """`*.d` matches names below d at any depth, not d itself; exact matches outrank it."""
    assert domain_strength(pattern, domain) == strength


_ids = st.text("abcdefgh", min_size=1, max_size=4)
_rules = st.lists(
    st.builds(
        lambda rid, mode, prio, scope: Rule.model_validate(
            {"id": rid, "mode": mode, "priority": prio, "scope": scope}
        ),
        _ids,
        st.sampled_from(["opportunistic", "audit", "require"]),
        st.integers(-2, 2),
        st.sampled_from(
            [
                {S: ["*.test"]},
                {S: ["mail.bank.test"]},
                {C: ["192.0.2.0/24"]},
                {R: ["fin.corp.test"]},
                {S: ["*.test"], C: ["0.0.0.0/0"]},
            ]
        ),
    ),
    max_size=6,
    unique_by=lambda r: r.id,
)


@given(_rules, st.randoms())
def test_the_winner_does_not_depend_on_rule_order(rules: list[Rule], rnd: random.Random) -> None:
    """Shuffling the rules never changes which one wins."""
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    first, second = (
        winning_rule(
            tuple(rs),
            listener=Listener.PUBLIC_MX,
            client_ip=FACTS.client_ip,
            sender_domain=SENDER,
            recipient_domain=RECIPIENT,
        )
        for rs in (rules, shuffled)
    )
    assert (first and first.id) == (second and second.id)
