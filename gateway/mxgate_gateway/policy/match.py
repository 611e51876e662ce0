"""Scope matching and rule precedence: which rules apply, and which one wins.

A rule matches when every scope dimension it constrains matches (dimensions are
ANDed, entries within one dimension are ORed) and its listener, if set, is the
session's. This module must not build replies or look at TLS state: it answers
"does it match, and how specifically" only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from mxgate_gateway.config.model import Floor, Listener, Mode, Refusal, Rule, TLSVersion

_MODE_STRICTNESS = {Mode.OPPORTUNISTIC: 0, Mode.AUDIT: 1, Mode.REQUIRE: 2}
_VERSION_STRICTNESS = {TLSVersion.TLS1_2: 0, TLSVersion.TLS1_3: 1}
_REFUSAL_STRICTNESS = {Refusal.TEMPORARY: 0, Refusal.PERMANENT: 1}


@dataclass(frozen=True, order=True)
class Specificity:
    """How specifically a rule matched one transaction; larger is more specific.

    Compared field by field: the number of scope dimensions the rule constrains,
    then the strength of its recipient, sender and client matches (0 when the
    dimension is unconstrained), then whether the rule is bound to a listener.
    A domain match's strength is the pattern's label count without ``*``
    (``bank.example`` = 2 beats ``*.example`` = 1); a CIDR's is its prefix length.
    """

    dimensions: int
    recipient: int
    sender: int
    client: int
    listener: int


def domain_strength(pattern: str, domain: str) -> int | None:
    """Strength of ``pattern`` matching ``domain`` (both lower-case), or None.

    ``bank.example`` matches only itself; ``*.bank.example`` matches any name
    below ``bank.example`` at any depth, but not ``bank.example`` itself.
    """
    if pattern.startswith("*."):
        base = pattern[2:]
        if domain.endswith("." + base):
            return base.count(".") + 1
        return None
    if domain == pattern:
        return pattern.count(".") + 1
    return None


def best_domain_strength(patterns: tuple[str, ...], domain: str | None) -> int | None:
    """The strongest matching pattern's strength; a missing domain matches nothing."""
    if domain is None:
        return None
    strengths = [s for p in patterns if (s := domain_strength(p, domain)) is not None]
    return max(strengths) if strengths else None


@lru_cache(maxsize=4096)
def _network(cidr: str) -> IPv4Network | IPv6Network:
    return ip_network(cidr)


def best_cidr_strength(cidrs: tuple[str, ...], ip: IPv4Address | IPv6Address) -> int | None:
    """The longest matching prefix length among ``cidrs``, or None."""
    lengths = [
        net.prefixlen for c in cidrs if (net := _network(c)).version == ip.version and ip in net
    ]
    return max(lengths) if lengths else None


def specificity(
    rule: Rule | Floor,
    *,
    listener: Listener,
    client_ip: IPv4Address | IPv6Address,
    sender_domain: str | None,
    recipient_domain: str | None,
) -> Specificity | None:
    """How specifically ``rule`` (or floor) matches, or None if it does not apply.

    ``recipient_domain=None`` means "deciding at MAIL": rules with a recipient
    scope do not apply there.
    """
    if rule.listener is not None and rule.listener is not listener:
        return None
    scope = rule.scope
    strengths = [0, 0, 0]
    dims = 0
    if scope.recipient_domains:
        s = best_domain_strength(scope.recipient_domains, recipient_domain)
        if s is None:
            return None
        strengths[0], dims = s, dims + 1
    if scope.sender_domains:
        s = best_domain_strength(scope.sender_domains, sender_domain)
        if s is None:
            return None
        strengths[1], dims = s, dims + 1
    if scope.client_cidrs:
        s = best_cidr_strength(scope.client_cidrs, client_ip)
        if s is None:
            return None
        strengths[2], dims = s, dims + 1
    recipient, sender, client = strengths
    return Specificity(dims, recipient, sender, client, int(rule.listener is not None))


def strictness(rule: Rule) -> tuple[int, int, int]:
    """Mode (require > audit > opportunistic), then minimum TLS, then permanent > temporary."""
    return (
        _MODE_STRICTNESS[rule.mode],
        _VERSION_STRICTNESS[rule.min_tls_version],
        _REFUSAL_STRICTNESS[rule.refusal],
    )


def precedence_key(rule: Rule, spec: Specificity) -> tuple[Specificity, int, tuple[int, int, int]]:
    """Sort key: the largest key wins (specificity, then priority, then strictness)."""
    return (spec, rule.priority, strictness(rule))


def winning_rule(
    rules: tuple[Rule, ...],
    *,
    listener: Listener,
    client_ip: IPv4Address | IPv6Address,
    sender_domain: str | None,
    recipient_domain: str | None,
) -> Rule | None:
    """The rule that decides, or None when no rule matches.

    Full ties (same specificity, priority and strictness) go to the smallest rule
    id, so the outcome never depends on the order rules were written or rendered.
    """
    best: Rule | None = None
    best_key: tuple[Specificity, int, tuple[int, int, int]] | None = None
    for rule in rules:
        spec = specificity(
            rule,
            listener=listener,
            client_ip=client_ip,
            sender_domain=sender_domain,
            recipient_domain=recipient_domain,
        )
        if spec is None:
            continue
        key = precedence_key(rule, spec)
        if (
            best is None
            or best_key is None
            or key > best_key
            or (key == best_key and rule.id < best.id)
        ):
            best, best_key = rule, key
    return best
