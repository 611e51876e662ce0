"""``--policy FILE``: a gateway config, the gateway's policy file, or TLSPolicy YAML → a Policy.

Everything is validated by the gateway's own config model (field paths in every
error), so the replay runs the rules the gateway would run. A TLSPolicy becomes
the rule the operator renders for it (id ``namespace/name``); several may share
a file (``---`` or a ``kind: List``). Reads one file; must not decide anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from mxgate_gateway.config.loader import read_text, validate
from mxgate_gateway.config.model import Config, Listener, Policy, PolicyDocument, Rule
from mxgate_gateway.errors import ConfigError
from mxgate_gateway.estimate.estimator import Replay

TLSPOLICY_GROUP = "mxgate.io/"


def _documents(text: str, source: str) -> list[object]:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("(file)", f"not valid YAML: {exc}")]) from None


def _objects(docs: list[object]) -> Iterator[Mapping[str, object]]:
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == "List":
            items = doc.get("items")
            yield from (
                (i for i in items if isinstance(i, Mapping)) if isinstance(items, list) else ()
            )
        elif isinstance(doc, Mapping):
            yield doc


def _sorted(names: object) -> object:
    """Scope lists sorted as the operator renders them; anything else is left to validation."""
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return sorted(names)
    return names or []


def tlspolicy_rule(obj: Mapping[str, object], source: str) -> Rule:
    """The gateway rule of one TLSPolicy object, as the operator renders it."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    scope = spec.get("scope")
    scope = scope if isinstance(scope, Mapping) else {}
    rule_id = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
    data = {
        "id": rule_id,
        "mode": spec.get("mode"),
        "min_tls_version": spec.get("minTLSVersion", "1.2"),
        "priority": spec.get("priority", 0),
        "refusal": spec.get("refusal", "permanent"),
        "listener": spec.get("listener", "public-mx"),
        "scope": {
            "recipient_domains": _sorted(scope.get("recipientDomains")),
            "sender_domains": _sorted(scope.get("senderDomains")),
            "client_cidrs": _sorted(scope.get("clientCIDRs")),
        },
    }
    return validate(Rule, data, f"{source} ({rule_id})")


def load_replay(path: Path, listener: Listener | None = None) -> Replay:
    """Read ``path`` as a gateway config, a policy file or TLSPolicies; ConfigError if none."""
    source = str(path)
    docs = _documents(read_text(path), source)
    objects = list(_objects(docs))
    policies = [o for o in objects if str(o.get("apiVersion", "")).startswith(TLSPOLICY_GROUP)]
    if policies:
        kinds = {o.get("kind") for o in policies}
        if kinds != {"TLSPolicy"}:
            raise ConfigError(source, [("kind", f"only TLSPolicy can be replayed, got {kinds}")])
        rules = tuple(tlspolicy_rule(o, source) for o in policies)
        policy = validate(Policy, {"rules": [r.model_dump() for r in rules]}, source)
        name = f"{source} ({len(rules)} TLSPolicy rule(s), default mode opportunistic)"
        return Replay(policy, listener or Listener.PUBLIC_MX, name)
    if len(docs) != 1:
        raise ConfigError(source, [("(file)", "expected one YAML document or TLSPolicies")])
    doc = docs[0]
    if isinstance(doc, Mapping) and ("hostname" in doc or "upstreams" in doc):
        config = validate(Config, doc, source)
        name = f"{source} (gateway config, {len(config.policy.rules)} rule(s))"
        return Replay(config.policy, listener or config.listener, name)
    policy_doc = validate(PolicyDocument, doc, source)
    policy = Policy(
        mode=policy_doc.mode or Policy().mode, rules=policy_doc.rules, floors=policy_doc.floors
    )
    name = f"{source} (policy file, {len(policy.rules)} rule(s))"
    return Replay(policy, listener or Listener.PUBLIC_MX, name)
