"""``--policy FILE``: a gateway config, the gateway's policy file, or policy objects → a Policy.

Everything is validated by the gateway's own config model (field paths in every
error), so the replay runs the rules the gateway would run. A TLSPolicy becomes
the rule the operator renders for it (id ``namespace/name``), a ClusterTLSPolicy
the floor (id ``cluster.mxgate.io/name``); several of either may share a file
(``---``, or a ``kind: List`` as ``kubectl get tlsp,ctlsp -A -o yaml`` prints).
Any other Kubernetes object is an error naming it. Reads one file; must not decide
anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from mxgate_gateway.config.loader import read_text, validate
from mxgate_gateway.config.model import (
    FLOOR_ID_PREFIX,
    Config,
    Floor,
    Listener,
    Policy,
    PolicyDocument,
    Rule,
)
from mxgate_gateway.errors import ConfigError
from mxgate_gateway.estimate.estimator import Replay

TLSPOLICY_GROUP = "mxgate.io/"
TLSPOLICY, CLUSTER_TLSPOLICY = "TLSPolicy", "ClusterTLSPolicy"


def _documents(text: str, source: str) -> list[object]:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("(file)", f"not valid YAML: {exc}")]) from None


def _is_list(doc: object) -> bool:
    return isinstance(doc, Mapping) and doc.get("kind") == "List"


def _objects(docs: list[object]) -> Iterator[Mapping[str, object]]:
    for doc in docs:
        if isinstance(doc, Mapping) and _is_list(doc):
            items = doc.get("items")
            yield from (
                (i for i in items if isinstance(i, Mapping)) if isinstance(items, list) else ()
            )
        elif isinstance(doc, Mapping):
            yield doc


def _is_kube_object(obj: Mapping[str, object]) -> bool:
    """An API object (apiVersion and kind); gateway configs and policy files have neither."""
    return "apiVersion" in obj and "kind" in obj


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _sorted(names: object) -> object:
    """Scope lists sorted as the operator renders them; anything else is left to validation."""
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return sorted(names)
    return names or []


def _scoped(scoped_id: str, spec: Mapping[str, object]) -> dict[str, object]:
    """The fields a rule and a floor share, from the spec both kinds share, with the CRD's
    defaults (the operator's render/gateway_config.to_rule and render/floors.to_floor)."""
    scope = _mapping(spec.get("scope"))
    return {
        "id": scoped_id,
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


def tlspolicy_rule(obj: Mapping[str, object], source: str) -> Rule:
    """The gateway rule of one TLSPolicy object, as the operator renders it."""
    meta = _mapping(obj.get("metadata"))
    rule_id = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
    data = _scoped(rule_id, _mapping(obj.get("spec")))
    return validate(Rule, data, f"{source} ({rule_id})")


def clustertlspolicy_floor(obj: Mapping[str, object], source: str) -> Floor:
    """The gateway floor of one ClusterTLSPolicy object, as the operator renders it."""
    floor_id = f"{FLOOR_ID_PREFIX}{_mapping(obj.get('metadata')).get('name')}"
    data = _scoped(floor_id, _mapping(obj.get("spec")))
    return validate(Floor, data, f"{source} ({floor_id})")


def _describe(obj: Mapping[str, object]) -> str:
    meta = _mapping(obj.get("metadata"))
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')} ({obj.get('apiVersion')})"


def _policy_objects(objects: list[Mapping[str, object]], source: str) -> tuple[Policy, str]:
    """TLSPolicies → rules and ClusterTLSPolicies → floors, or an error naming the others."""
    unknown = [
        o
        for o in objects
        if not str(o.get("apiVersion", "")).startswith(TLSPOLICY_GROUP)
        or o.get("kind") not in (TLSPOLICY, CLUSTER_TLSPOLICY)
    ]
    if unknown:
        raise ConfigError(
            source,
            [
                ("kind", f"{_describe(o)} cannot be replayed: only TLSPolicy and ClusterTLSPolicy")
                for o in unknown
            ],
        )
    if not objects:
        raise ConfigError(source, [("items", "no TLSPolicy or ClusterTLSPolicy to replay")])
    rules = [tlspolicy_rule(o, source) for o in objects if o.get("kind") == TLSPOLICY]
    floors = [
        clustertlspolicy_floor(o, source) for o in objects if o.get("kind") == CLUSTER_TLSPOLICY
    ]
    data = {"rules": [r.model_dump() for r in rules], "floors": [f.model_dump() for f in floors]}
    policy = validate(Policy, data, source)
    name = (
        f"{source} ({len(rules)} TLSPolicy rule(s), {len(floors)} ClusterTLSPolicy floor(s),"
        " default mode opportunistic)"
    )
    return policy, name


def load_replay(path: Path, listener: Listener | None = None) -> Replay:
    """Read ``path`` as a gateway config, a policy file or policy objects; ConfigError if none."""
    source = str(path)
    docs = _documents(read_text(path), source)
    objects = list(_objects(docs))
    if any(_is_list(d) for d in docs) or any(_is_kube_object(o) for o in objects):
        policy, name = _policy_objects(objects, source)
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
