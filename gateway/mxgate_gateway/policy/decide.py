"""The policy decision: (policy snapshot, session facts, addresses) → Decision.

MAIL considers rules without a recipient scope (client network, sender domain);
RCPT considers every rule, so a recipient-scoped rule can override the MAIL
outcome for its recipients. The winning rule's requirement is then raised to every
matching floor (policy.floors). Pure: no I/O, no logging, no clock, no mutation.
"""

from __future__ import annotations

from mxgate_gateway.config.model import Mode, Policy, Refusal, Rule, TLSVersion
from mxgate_gateway.policy.decisions import (
    DEFAULT_RULE_ID,
    Action,
    Decision,
    Shortfall,
    Stage,
    refusal_reply,
)
from mxgate_gateway.policy.facts import SessionFacts, normalize_domain
from mxgate_gateway.policy.floors import Requirement, matching_floors, raise_to_floors
from mxgate_gateway.policy.match import winning_rule


def shortfall(facts: SessionFacts, minimum: TLSVersion) -> Shortfall:
    """Whether, and how, the session misses the required TLS version."""
    if facts.is_plaintext:
        return Shortfall.PLAINTEXT
    if not facts.meets(minimum):
        return Shortfall.WEAK_TLS
    return Shortfall.NONE


def _apply(
    *,
    rule_id: str,
    mode: Mode,
    minimum: TLSVersion,
    refusal: Refusal,
    facts: SessionFacts,
    stage: Stage,
    carried: bool,
) -> Decision:
    short = shortfall(facts, minimum)
    if short is Shortfall.NONE or mode is Mode.OPPORTUNISTIC:
        action, reply = Action.ACCEPT, None
    elif mode is Mode.AUDIT:
        action, reply = Action.WOULD_REFUSE, None
    else:
        action, reply = Action.REFUSE, refusal_reply(short, refusal, minimum)
    return Decision(
        action=action,
        rule_id=rule_id,
        mode=mode,
        reply=reply,
        stage=stage,
        carried=carried,
        shortfall=short,
        minimum=minimum,
    )


def _decide(
    policy: Policy,
    facts: SessionFacts,
    sender_domain: str | None,
    recipient_domain: str | None,
    stage: Stage,
) -> Decision:
    sender = normalize_domain(sender_domain)
    rule: Rule | None = winning_rule(
        policy.rules,
        listener=facts.listener,
        client_ip=facts.client_address,
        sender_domain=sender,
        recipient_domain=recipient_domain,
    )
    if rule is None:
        decided = Requirement(DEFAULT_RULE_ID, policy.mode, policy.min_tls_version, policy.refusal)
    else:
        decided = Requirement(
            rule.id,
            rule.mode,
            rule.min_tls_version,
            rule.refusal,
            recipient_scoped=bool(rule.scope.recipient_domains),
        )
    if policy.floors:
        floors = matching_floors(
            policy.floors,
            listener=facts.listener,
            client_ip=facts.client_address,
            sender_domain=sender,
            recipient_domain=recipient_domain,
        )
        decided = raise_to_floors(decided, floors)
    return _apply(
        rule_id=decided.rule_id,
        mode=decided.mode,
        minimum=decided.minimum,
        refusal=decided.refusal,
        facts=facts,
        stage=stage,
        carried=stage is Stage.RCPT and not decided.recipient_scoped,
    )


def decide_mail(policy: Policy, facts: SessionFacts, sender_domain: str | None) -> Decision:
    """Decide at MAIL FROM. ``sender_domain`` is None for the null sender ``<>``."""
    return _decide(policy, facts, sender_domain, None, Stage.MAIL)


def decide_rcpt(
    policy: Policy, facts: SessionFacts, sender_domain: str | None, recipient_domain: str
) -> Decision:
    """Decide at RCPT TO for one recipient.

    When no recipient-scoped rule wins, the result equals the MAIL decision and
    is marked ``carried``.
    """
    rcpt = normalize_domain(recipient_domain)
    # An empty recipient domain cannot match a recipient scope; "" stands in for it.
    return _decide(policy, facts, sender_domain, rcpt if rcpt is not None else "", Stage.RCPT)
