"""Floors (ClusterTLSPolicy): a matching floor raises the decision, no rule can lower it.

Precedence is docs/policy.md "Floors": the most specific rule (or the default) is chosen
as without floors, then its mode is raised to the strictest matching floor and its minimum
TLS version to the highest. Properties over random rules, floors and sessions; then the
issue 18 item 6 scenario by example.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxgate_gateway.config.model import (
    Config,
    Floor,
    Listener,
    Mode,
    Policy,
    PolicyDocument,
    Rule,
    TLSVersion,
)
from mxgate_gateway.policy import (
    DEFAULT_RULE_ID,
    Action,
    Decision,
    SessionFacts,
    Stage,
    decide_mail,
    decide_rcpt,
)
from mxgate_gateway.policy.decide import shortfall
from mxgate_gateway.policy.floors import MODE_ORDER, VERSION_ORDER, matching_floors
from mxgate_gateway.policy.match import winning_rule

ACTION_ORDER = {Action.ACCEPT: 0, Action.WOULD_REFUSE: 1, Action.REFUSE: 2}
D = "fin.corp.test"
S, R, C = "sender_domains", "recipient_domains", "client_cidrs"
SCOPES = [
    {R: [D]},
    {R: ["*.corp.test"]},
    {R: [D], C: ["0.0.0.0/0", "::/0"]},
    {S: ["*.test"]},
    {S: ["mail.bank.test"]},
    {C: ["192.0.2.0/24"]},
    {C: ["0.0.0.0/0", "::/0"]},
    {S: ["*.test"], R: [D], C: ["192.0.2.10/32"]},
]
_modes = st.sampled_from(["opportunistic", "audit", "require"])
_versions = st.sampled_from(["1.2", "1.3"])
_refusals = st.sampled_from(["permanent", "temporary"])
_listeners = st.sampled_from([None, "public-mx", "internal"])


def _rule(
    rid: str,
    mode: str,
    version: str,
    prio: int,
    refusal: str,
    lst: str | None,
    scope: dict[str, list[str]],
) -> Rule:
    return Rule.model_validate(
        {"id": f"ns/{rid}", "mode": mode, "min_tls_version": version, "priority": prio,
         "refusal": refusal, "listener": lst, "scope": scope}
    )  # fmt: skip


def _floor(
    fid: str, mode: str, version: str, refusal: str, lst: str | None, scope: dict[str, list[str]]
) -> Floor:
    return Floor.model_validate(
        {"id": f"cluster.mxgate.io/{fid}", "mode": mode, "min_tls_version": version,
         "refusal": refusal, "listener": lst, "scope": scope}
    )  # fmt: skip


_ids = st.text("abcdefgh", min_size=1, max_size=4)
_scopes = st.sampled_from(SCOPES)
rules = st.lists(
    st.builds(_rule, _ids, _modes, _versions, st.integers(-2, 2), _refusals, _listeners, _scopes),
    max_size=6,
    unique_by=lambda r: r.id,
)
floors = st.lists(
    st.builds(_floor, _ids, _modes, _versions, _refusals, _listeners, _scopes),
    max_size=4,
    unique_by=lambda f: f.id,
)
facts = st.builds(
    SessionFacts,
    st.sampled_from([ip_address(a) for a in ("192.0.2.10", "198.51.100.7", "2001:db8::1")]),
    st.sampled_from([None, "TLSv1.2", "TLSv1.3"]),
    st.sampled_from(list(Listener)),
)
senders = st.sampled_from([None, "mail.bank.test", "other.example"])
recipients = st.sampled_from([D, "hr.corp.test", "elsewhere.example"])
defaults = st.builds(lambda m, v: (Mode(m), TLSVersion(v)), _modes, _versions)


@dataclass(frozen=True)
class Scenario:
    """One random case: the default, rules, floors, session, sender and recipient."""

    default: tuple[Mode, TLSVersion]
    rs: list[Rule]
    fs: list[Floor]
    f: SessionFacts
    sender: str | None
    rcpt: str

    def values(
        self,
    ) -> tuple[tuple[Mode, TLSVersion], list[Rule], list[Floor], SessionFacts, str | None, str]:
        return self.default, self.rs, self.fs, self.f, self.sender, self.rcpt


scenarios = st.builds(Scenario, defaults, rules, floors, facts, senders, recipients)


def policy(default: tuple[Mode, TLSVersion], rs: list[Rule], fs: list[Floor]) -> Policy:
    return Policy(mode=default[0], min_tls_version=default[1], rules=tuple(rs), floors=tuple(fs))


def decisions(pol: Policy, f: SessionFacts, sender: str | None, rcpt: str) -> list[Decision]:
    return [decide_mail(pol, f, sender), decide_rcpt(pol, f, sender, rcpt)]


def floors_for(
    fs: list[Floor], f: SessionFacts, sender: str | None, rcpt: str | None
) -> tuple[Floor, ...]:
    return matching_floors(
        fs, listener=f.listener, client_ip=f.client_address, sender_domain=sender,
        recipient_domain=rcpt,
    )  # fmt: skip


def floor_alone(floor: Floor, f: SessionFacts) -> Action:
    """What the floor would do by itself, as the only requirement."""
    if shortfall(f, floor.min_tls_version).value == "none" or floor.mode is Mode.OPPORTUNISTIC:
        return Action.ACCEPT
    return Action.WOULD_REFUSE if floor.mode is Mode.AUDIT else Action.REFUSE


@settings(max_examples=400, deadline=None)
@given(scenarios)
def test_the_decision_is_at_least_every_matching_floor(
    case: Scenario,
) -> None:
    """For any rules and floors, the decision's mode, and its action, are at least those of
    every floor that matches the session (MAIL and RCPT alike)."""
    default, rs, fs, f, sender, rcpt = case.values()
    pol = policy(default, rs, fs)
    for d, at in zip(decisions(pol, f, sender, rcpt), (None, rcpt), strict=True):
        for floor in floors_for(fs, f, sender, at):
            assert MODE_ORDER[d.mode] >= MODE_ORDER[floor.mode], (d, floor)
            assert ACTION_ORDER[d.action] >= ACTION_ORDER[floor_alone(floor, f)], (d, floor)


@settings(max_examples=400, deadline=None)
@given(scenarios)
def test_floors_raise_the_winning_rule_to_the_join_and_no_further(
    case: Scenario,
) -> None:
    """The enforced mode and minimum are exactly the strictest of the winning rule (or the
    default) and the matching floors, each dimension on its own."""
    default, rs, fs, f, sender, rcpt = case.values()
    pol = policy(default, rs, fs)
    for d, at in zip(decisions(pol, f, sender, rcpt), (None, rcpt), strict=True):
        win = winning_rule(
            pol.rules, listener=f.listener, client_ip=f.client_address,
            sender_domain=sender, recipient_domain=at,
        )  # fmt: skip
        base = (win.mode, win.min_tls_version) if win else default
        matched = floors_for(fs, f, sender, at)
        want_mode = max([base[0], *(x.mode for x in matched)], key=MODE_ORDER.__getitem__)
        want_tls = max(
            [base[1], *(x.min_tls_version for x in matched)], key=VERSION_ORDER.__getitem__
        )
        assert (d.mode, d.minimum) == (want_mode, want_tls), (d, base, matched)
        if d.refused and d.reply is not None and d.shortfall.value == "weak_tls":
            assert f"TLS {want_tls.value} or later" in d.reply[1]


@settings(max_examples=400, deadline=None)
@given(defaults, rules, facts, senders, recipients)
def test_without_floors_the_decision_is_what_it_was(
    default: tuple[Mode, TLSVersion],
    rs: list[Rule],
    f: SessionFacts,
    sender: str | None,
    rcpt: str,
) -> None:
    """No floors: the decision is today's (the winning rule or the default, applied as is),
    computed here independently of the floor code."""
    pol = policy(default, rs, [])
    for d, at in zip(decisions(pol, f, sender, rcpt), (None, rcpt), strict=True):
        win = winning_rule(
            pol.rules, listener=f.listener, client_ip=f.client_address,
            sender_domain=sender, recipient_domain=at,
        )  # fmt: skip
        mode, minimum = (win.mode, win.min_tls_version) if win else default
        assert d.rule_id == (win.id if win else DEFAULT_RULE_ID)
        assert (d.mode, d.minimum) == (mode, minimum)
        short = shortfall(f, minimum)
        want = (
            Action.ACCEPT
            if short.value == "none" or mode is Mode.OPPORTUNISTIC
            else Action.WOULD_REFUSE
            if mode is Mode.AUDIT
            else Action.REFUSE
        )
        assert d.action is want
        assert d.carried is (d.stage is Stage.RCPT and not (win and win.scope.recipient_domains))


@settings(max_examples=400, deadline=None)
@given(defaults, rules, floors, rules, facts, senders, recipients)
def test_adding_namespaced_rules_never_goes_below_the_floors(
    default: tuple[Mode, TLSVersion],
    rs: list[Rule],
    fs: list[Floor],
    extra: list[Rule],
    f: SessionFacts,
    sender: str | None,
    rcpt: str,
) -> None:
    """Whatever rules an author adds (any scope, mode, priority), every decision stays at or
    above what the floors alone demand: the author can tighten, never weaken."""
    known = {r.id for r in rs}
    more = [r for r in extra if r.id not in known]
    floors_only = policy((Mode.OPPORTUNISTIC, TLSVersion.TLS1_2), [], fs)
    with_rules = policy(default, rs + more, fs)
    for alone, d in zip(
        decisions(floors_only, f, sender, rcpt), decisions(with_rules, f, sender, rcpt), strict=True
    ):
        assert MODE_ORDER[d.mode] >= MODE_ORDER[alone.mode]
        assert ACTION_ORDER[d.action] >= ACTION_ORDER[alone.action]
        at = rcpt if d.stage is Stage.RCPT else None
        for floor in floors_for(fs, f, sender, at):  # judged apart from the engine, too
            assert ACTION_ORDER[d.action] >= ACTION_ORDER[floor_alone(floor, f)], (d, floor)


@settings(max_examples=400, deadline=None)
@given(scenarios)
def test_an_rcpt_decision_is_carried_exactly_when_it_repeats_mails(
    case: Scenario,
) -> None:
    """``carried`` (not counted again by /report and the metrics) exactly when the RCPT
    decision repeats MAIL's (rule, mode, minimum, action and reply) and no recipient-scoped
    rule won: a recipient rule's RCPT decision is its own, whichever floor raised it, and
    a recipient-scoped floor that changed anything (the mode or only the minimum, even when
    another floor names the decision) makes it a new one."""
    default, rs, fs, f, sender, rcpt = case.values()
    pol = policy(default, rs, fs)
    mail, d = decisions(pol, f, sender, rcpt)
    win = winning_rule(
        pol.rules, listener=f.listener, client_ip=f.client_address,
        sender_domain=sender, recipient_domain=rcpt,
    )  # fmt: skip
    same = (d.rule_id, d.mode, d.minimum, d.action, d.reply) == (
        mail.rule_id, mail.mode, mail.minimum, mail.action, mail.reply,
    )  # fmt: skip
    assert d.carried is (same and not (win and win.scope.recipient_domains)), (d, mail, win)


def test_a_recipient_floor_raising_only_the_minimum_is_not_a_repeat_of_mail() -> None:
    """Found by the property above: a recipient-scoped floor raises the minimum to 1.3, a
    network floor raises the mode to audit and names the decision. MAIL (no recipient yet)
    accepts a TLS 1.2 session; the RCPT decision would refuse it, so it is counted."""
    by_rcpt = _floor("a", "opportunistic", "1.3", "permanent", None, {R: [D]})
    by_net = _floor("b", "audit", "1.2", "permanent", None, {C: ["203.0.113.0/24"]})
    pol = Policy(floors=(by_rcpt, by_net))
    mail = decide_mail(pol, TLS12, None)
    rcpt = decide_rcpt(pol, TLS12, None, D)
    assert (mail.rule_id, mail.action, mail.minimum) == (
        by_net.id, Action.ACCEPT, TLSVersion.TLS1_2,
    )  # fmt: skip
    assert (rcpt.rule_id, rcpt.action, rcpt.minimum) == (
        by_net.id, Action.WOULD_REFUSE, TLSVersion.TLS1_3,
    )  # fmt: skip
    assert not rcpt.carried


def test_a_recipient_rule_raised_by_an_unscoped_floor_is_counted_under_the_floor() -> None:
    """MAIL is the default's (opportunistic, counted under it); at RCPT the author's
    recipient rule wins and a network-wide audit floor raises it: that RCPT decision is the
    floor's own, so /report counts it under the floor (it used to be taken for a repeat of
    MAIL and dropped, undercounting the floor's would-refuse)."""
    from mxgate_gateway.report.loss import LossReport  # noqa: PLC0415

    floor = _floor("audit-all", "audit", "1.2", "permanent", None, {C: ["0.0.0.0/0", "::/0"]})
    rule = _rule("fin", "opportunistic", "1.2", 0, "permanent", None, {R: [D]})
    pol = Policy(rules=(rule,), floors=(floor,))
    mail = decide_mail(pol, FACTS, "any.example")
    rcpt = decide_rcpt(pol, FACTS, "any.example", D)
    assert (mail.rule_id, mail.action) == (floor.id, Action.WOULD_REFUSE)
    assert (rcpt.rule_id, rcpt.action, rcpt.carried) == (floor.id, Action.WOULD_REFUSE, False)
    report = LossReport(clock=lambda: 0.0)
    for d in (mail, rcpt, decide_rcpt(pol, FACTS, "any.example", "elsewhere.example")):
        report.record_decision(d)
    rules = report.window().rules
    assert rules[(floor.id, "audit", "would_refuse")] == 2  # MAIL, and the fin.corp.test RCPT


FACTS = SessionFacts(ip_address("203.0.113.9"), None, Listener.PUBLIC_MX)
TLS12 = SessionFacts(ip_address("203.0.113.9"), "TLSv1.2", Listener.PUBLIC_MX)
AUTHOR = _rule("author", "opportunistic", "1.2", 0, "permanent", None,
               {R: [D], C: ["0.0.0.0/0", "::/0"]})  # fmt: skip
ADMIN_RULE = _rule("admin", "require", "1.2", 1_000_000, "permanent", None, {R: [D]})
ADMIN_FLOOR = _floor("admin", "require", "1.2", "permanent", None, {R: [D]})


def test_issue_scenario_namespaced_require_is_overridden_by_a_more_specific_rule() -> None:
    """Without floors (the problem): the author's two-dimension opportunistic rule for D
    beats the administrator's require for D, whatever its priority."""
    pol = Policy(rules=(ADMIN_RULE, AUTHOR))
    d = decide_rcpt(pol, FACTS, "any.example", D)
    assert (d.rule_id, d.action) == ("ns/author", Action.ACCEPT)


def test_issue_scenario_a_cluster_floor_holds_against_the_more_specific_rule() -> None:
    """With the administrator's require as a floor, the author's rule still wins the
    precedence, but the decision is raised to require and names the floor."""
    pol = Policy(rules=(AUTHOR,), floors=(ADMIN_FLOOR,))
    d = decide_rcpt(pol, FACTS, "any.example", D)
    assert (d.rule_id, d.mode, d.action) == ("cluster.mxgate.io/admin", Mode.REQUIRE, Action.REFUSE)
    assert d.reply == (530, "5.7.0 Must issue a STARTTLS command first")
    assert not d.carried
    assert decide_rcpt(pol, TLS12, "any.example", D).action is Action.ACCEPT
    other = decide_rcpt(pol, FACTS, "any.example", "hr.corp.test")
    assert (other.rule_id, other.action) == (DEFAULT_RULE_ID, Action.ACCEPT)


@pytest.mark.parametrize(
    ("rule", "floor", "want"),
    [
        # (mode, version, refusal) of the rule and the floor -> (named, mode, version in reply)
        (("require", "1.2", "temporary"), ("audit", "1.3", "permanent"),
         ("floor", "require", "1.3", 450)),
        (("audit", "1.3", "temporary"), ("require", "1.2", "permanent"),
         ("floor", "require", "1.3", 550)),
        (("require", "1.3", "temporary"), ("require", "1.2", "permanent"),
         ("rule", "require", "1.3", 450)),
        (("opportunistic", "1.2", "permanent"), ("opportunistic", "1.3", "permanent"),
         ("floor", "opportunistic", "1.3", None)),
    ],
)  # fmt: skip
def test_each_dimension_is_raised_on_its_own(
    rule: tuple[str, str, str], floor: tuple[str, str, str], want: tuple[str, str, str, int | None]
) -> None:
    """Mode and minimum TLS are raised separately; the refusal (5xx/4xx) follows whoever set
    the mode; an unchanged requirement keeps the rule's name."""
    r = _rule("r", rule[0], rule[1], 0, rule[2], None, {R: [D]})
    fl = _floor("f", floor[0], floor[1], floor[2], None, {C: ["0.0.0.0/0"]})
    d = decide_rcpt(Policy(rules=(r,), floors=(fl,)), TLS12, None, D)
    named, mode, version, code = want
    assert d.rule_id == (r.id if named == "rule" else fl.id)
    assert d.mode is Mode(mode)
    assert (d.reply[0] if d.reply else None) == code
    if code is not None:
        assert d.reply is not None
        assert f"TLS {version} or later" in d.reply[1]


def test_recipient_floors_do_not_apply_at_mail() -> None:
    """At MAIL the recipient is unknown: a recipient-scoped floor waits for RCPT."""
    pol = Policy(floors=(ADMIN_FLOOR,))
    assert decide_mail(pol, FACTS, "any.example").action is Action.ACCEPT
    assert decide_rcpt(pol, FACTS, "any.example", D).action is Action.REFUSE


def test_floor_on_another_listener_does_not_apply() -> None:
    """A floor bound to the internal listener leaves public-mx sessions alone."""
    internal = ADMIN_FLOOR.model_copy(update={"listener": Listener.INTERNAL})
    pol = Policy(rules=(AUTHOR,), floors=(internal,))
    assert decide_rcpt(pol, FACTS, None, D).action is Action.ACCEPT


def test_an_old_policy_file_without_floors_loads_and_merges() -> None:
    """A gateway reads a policy file written before floors existed; a file with floors
    merges them after the config's own, and a floor id equal to a rule id is refused."""
    base = Config.model_validate(
        {"hostname": "mx.test", "domains": [D], "upstreams": [{"address": "a:25"}],
         "policy": {"floors": [ADMIN_FLOOR.model_dump()]}}
    )  # fmt: skip
    old = PolicyDocument.model_validate({"version": 1, "rules": [AUTHOR.model_dump(mode="json")]})
    assert base.with_policy_document(old).policy.floors == (ADMIN_FLOOR,)
    other = _floor("other", "audit", "1.3", "permanent", None, {S: ["*.test"]})
    new = PolicyDocument.model_validate({"floors": [other.model_dump(mode="json")]})
    assert base.with_policy_document(new).policy.floors == (ADMIN_FLOOR, other)
    clash = {"id": ADMIN_FLOOR.id, "mode": "audit", "scope": {R: [D]}}
    with pytest.raises(ValueError, match="also a rule id"):
        Policy.model_validate({"rules": [clash], "floors": [ADMIN_FLOOR.model_dump()]})


def test_a_floor_requiring_tls_from_everyone_is_flagged_like_a_rule() -> None:
    """RFC 3207 §4: a require floor for every client network on public-mx is warned about,
    exactly like such a rule; a floor scoped to one recipient domain is not."""
    from mxgate_gateway.policy.standards import standards_warnings  # noqa: PLC0415

    everyone = _floor("all", "require", "1.2", "permanent", None, {C: ["0.0.0.0/0", "::/0"]})
    config = Config.model_validate(
        {"hostname": "mx.test", "domains": [D], "upstreams": [{"address": "a:25"}],
         "policy": {"floors": [everyone.model_dump(), ADMIN_FLOOR.model_dump()]}}
    )  # fmt: skip
    assert [path for path, _ in standards_warnings(config)] == ["policy.floors[0]"]


@pytest.mark.parametrize(
    ("a_priority", "b_priority", "named", "klass"),
    [
        (0, 0, "cluster.mxgate.io/a", 5),  # equal priorities: the smallest id (5xx)
        (0, 5, "cluster.mxgate.io/b", 4),  # the higher priority names it (its refusal: 4xx)
        (-1, -2, "cluster.mxgate.io/a", 5),
    ],
)
def test_floor_priority_chooses_among_floors_that_raise_equally(
    a_priority: int, b_priority: int, named: str, klass: int
) -> None:
    """Two floors raising the decision to the same mode and minimum: the one with the
    highest priority (then the smallest id) names the decision and gives its refusal;
    priority never changes how strict the decision is."""
    a = _floor("a", "require", "1.2", "permanent", None, {R: [D]})
    b = _floor("b", "require", "1.2", "temporary", None, {C: ["0.0.0.0/0", "::/0"]})
    a = a.model_copy(update={"priority": a_priority})
    b = b.model_copy(update={"priority": b_priority})
    d = decide_rcpt(Policy(rules=(AUTHOR,), floors=(a, b)), FACTS, None, D)
    assert (d.rule_id, d.mode, d.action) == (named, Mode.REQUIRE, Action.REFUSE)
    assert d.reply is not None
    assert d.reply[0] // 100 == klass


def test_floor_priority_never_outranks_a_stricter_floor() -> None:
    """A low-priority floor that raises more (1.3) still names the decision: priority only
    breaks ties between floors that raise equally."""
    strict = _floor("strict", "require", "1.3", "permanent", None, {R: [D]})
    loud = _floor("loud", "require", "1.2", "temporary", None, {R: [D]})
    loud = loud.model_copy(update={"priority": 1_000_000})
    d = decide_rcpt(Policy(floors=(strict, loud)), TLS12, None, D)
    assert (d.rule_id, d.action) == (strict.id, Action.REFUSE)
    with pytest.raises(ValueError, match="less than or equal"):
        Floor.model_validate({**strict.model_dump(), "priority": 1_000_001})
