"""Standards warnings for a policy: choices that are valid but break RFC 3207 §4 on a public MX.

RFC 3207 §4: a publicly-referenced SMTP server MUST NOT require STARTTLS for
delivery to local mailboxes. ``require`` is allowed, but only as a deliberate,
scoped choice; this module names the configurations that amount to requiring
TLS from everyone on a ``public-mx`` listener. Pure: it must not log, print or
refuse anything; callers (``mxgate check-config``) decide how to show warnings.
"""

from __future__ import annotations

from ipaddress import ip_network

from mxgate_gateway.config.model import Config, Floor, Listener, Mode, Rule

RFC3207 = (
    "RFC 3207 §4: a publicly-referenced MX must not require STARTTLS; senders without"
    " TLS cannot deliver. Scope `require` with rules, or measure it with `audit` and"
    " `mxgate report` first"
)


def _applies_to_public_mx(rule: Rule | Floor, listener: Listener) -> bool:
    return listener is Listener.PUBLIC_MX and rule.listener in (None, Listener.PUBLIC_MX)


def _matches_everyone(rule: Rule | Floor) -> bool:
    """A scope that every session matches: only client networks, and one of them is /0."""
    scope = rule.scope
    if scope.recipient_domains or scope.sender_domains:
        return False
    return any(ip_network(c).prefixlen == 0 for c in scope.client_cidrs)


def standards_warnings(config: Config) -> list[tuple[str, str]]:
    """``(field path, message)`` for each setting that requires TLS from every sender.

    Only the default mode and rules that match every client are flagged; a
    ``require`` rule scoped to some senders, recipients or networks is the
    deliberate choice RFC 3207 leaves to the operator.
    """
    if config.listener is not Listener.PUBLIC_MX:
        return []
    policy = config.policy
    out: list[tuple[str, str]] = []
    if policy.mode is Mode.REQUIRE:
        out.append(("policy.mode", f"`require` as the default on a public-mx listener. {RFC3207}"))
    scoped: tuple[tuple[str, tuple[Rule | Floor, ...]], ...] = (
        ("rule", policy.rules),
        ("floor", policy.floors),
    )
    for kind, items in scoped:
        for i, rule in enumerate(items):
            if (
                rule.mode is Mode.REQUIRE
                and _applies_to_public_mx(rule, config.listener)
                and _matches_everyone(rule)
            ):
                out.append(
                    (
                        f"policy.{kind}s[{i}]",
                        f"{kind} {rule.id!r} requires TLS from every client network. {RFC3207}",
                    )
                )
    return out
