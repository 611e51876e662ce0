"""Floors: raise a decided requirement to every matching ClusterTLSPolicy floor, never lower it.

Precedence (docs/policy.md, "Floors"): the most specific rule (or the default) is chosen
exactly as without floors; then mode becomes the strictest of it and every matching
floor (opportunistic < audit < require) and the minimum TLS version the highest. This
module must not choose among rules, build replies or look at TLS state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address

from mxgate_gateway.config.model import Floor, Listener, Mode, Refusal, TLSVersion
from mxgate_gateway.policy.match import specificity

MODE_ORDER = {Mode.OPPORTUNISTIC: 0, Mode.AUDIT: 1, Mode.REQUIRE: 2}
VERSION_ORDER = {TLSVersion.TLS1_2: 0, TLSVersion.TLS1_3: 1}


@dataclass(frozen=True)
class Requirement:
    """What one decision enforces, and which rule (or floor) it is reported under.

    ``recipient_scoped`` tells an RCPT decision from one that repeats the MAIL decision.
    """

    rule_id: str
    mode: Mode
    minimum: TLSVersion
    refusal: Refusal
    recipient_scoped: bool = False

    def at_least(self, mode: Mode, minimum: TLSVersion) -> bool:
        """True when this requirement is as strict as ``mode`` and ``minimum`` (or stricter)."""
        return (
            MODE_ORDER[self.mode] >= MODE_ORDER[mode]
            and VERSION_ORDER[self.minimum] >= VERSION_ORDER[minimum]
        )


def matching_floors(
    floors: Iterable[Floor],
    *,
    listener: Listener,
    client_ip: IPv4Address | IPv6Address,
    sender_domain: str | None,
    recipient_domain: str | None,
) -> tuple[Floor, ...]:
    """The floors whose listener and scope match (``recipient_domain=None``: at MAIL)."""
    return tuple(
        f
        for f in floors
        if specificity(
            f,
            listener=listener,
            client_ip=client_ip,
            sender_domain=sender_domain,
            recipient_domain=recipient_domain,
        )
        is not None
    )


def _strength(floor: Floor) -> tuple[int, int]:
    return (MODE_ORDER[floor.mode], VERSION_ORDER[floor.min_tls_version])


def raise_to_floors(decided: Requirement, floors: Iterable[Floor]) -> Requirement:
    """``decided`` raised to every floor in ``floors`` (all of which matched); never lowered.

    Unchanged when it already meets them all (it keeps its rule id and refusal). Otherwise
    the result is reported under the floor that raised it most (among those that raised
    anything: mode first, then version; ties to the highest priority, then the smallest id)
    and, when a floor raised the mode, answers with that floor's refusal (permanent or
    temporary); a raised minimum alone keeps the rule's refusal.

    ``recipient_scoped`` on the result says it is not a repeat of the MAIL decision: the
    decided rule was recipient-scoped (a recipient rule's decision is its own, whichever
    floor raised it), or the recipient-scoped floors changed anything (the result differs
    from raising ``decided`` to the other floors alone, which is exactly what MAIL got).
    """
    matched = list(floors)
    raised = _raise(decided, matched)
    if decided.recipient_scoped or raised == decided:
        return raised
    unscoped = [f for f in matched if not f.scope.recipient_domains]
    if len(unscoped) == len(matched):
        return raised
    return replace(raised, recipient_scoped=raised != _raise(decided, unscoped))


def _raise(decided: Requirement, matched: list[Floor]) -> Requirement:
    """``decided`` raised to ``matched``, named and answered as raise_to_floors says; its
    ``recipient_scoped`` is left as ``decided``'s."""
    if not matched:
        return decided
    mode = max([decided.mode, *(f.mode for f in matched)], key=MODE_ORDER.__getitem__)
    minimum = max(
        [decided.minimum, *(f.min_tls_version for f in matched)], key=VERSION_ORDER.__getitem__
    )
    if mode is decided.mode and minimum is decided.minimum:
        return decided
    floor_of = (MODE_ORDER[decided.mode], VERSION_ORDER[decided.minimum])
    raisers = [
        f for f in matched if any(a > b for a, b in zip(_strength(f), floor_of, strict=True))
    ]
    top = max(_strength(f) for f in raisers)
    raiser = min((f for f in raisers if _strength(f) == top), key=lambda f: (-f.priority, f.id))
    refusal = raiser.refusal if mode is not decided.mode else decided.refusal
    return replace(decided, rule_id=raiser.id, mode=mode, minimum=minimum, refusal=refusal)
