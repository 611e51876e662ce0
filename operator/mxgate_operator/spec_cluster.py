"""Parse a ClusterTLSPolicy (metadata.name + spec) into a typed floor spec with field-path issues.

A ClusterTLSPolicy's spec is TLSPolicy's minus ``certificate``: mode, listener, minTLSVersion,
priority, refusal, scope, mtaSts and tlsRpt, with the same checks (spec.py, spec_mtasts.py).
Pure: never touches the API, never logs; an invalid spec is a value, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from mxgate_gateway.config.model import Listener, Mode, Refusal, TLSVersion
from mxgate_operator.checks import Checker, Issue
from mxgate_operator.spec import MAX_NAME, PRIORITY_BOUND, ScopeSpec, parse_scope
from mxgate_operator.spec_mtasts import (
    MTASTSSpec,
    check_published_domains,
    parse_mtasts,
    parse_tlsrpt,
)

MSG_CLUSTER_NAME = (
    "metadata.name must be at most 63 characters"
    " (it becomes part of the floor id cluster.mxgate.io/<name>)"
)


@dataclass(frozen=True)
class FloorSpec:
    """What a ClusterTLSPolicy demands where its scope matches: a minimum, never a maximum."""

    mode: Mode
    scope: ScopeSpec
    listener: Listener = Listener.PUBLIC_MX
    min_tls_version: TLSVersion = TLSVersion.TLS1_2
    refusal: Refusal = Refusal.PERMANENT
    priority: int = 0  # which floor a decision is reported under among equals (floors.py)
    mta_sts: MTASTSSpec | None = None  # spec.mtaSts: published cluster-wide (render/floors.py)
    tlsrpt_rua: tuple[str, ...] = ()  # spec.tlsRpt.rua


@dataclass(frozen=True)
class ParsedFloor:
    """A parse outcome: ``spec`` when valid, otherwise every ``issue`` found."""

    spec: FloorSpec | None
    issues: tuple[Issue, ...] = ()


def parse_cluster_policy(name: str, spec: object) -> ParsedFloor:
    """Parse and validate one ClusterTLSPolicy exactly as the API server would."""
    c = Checker()
    if len(name) > MAX_NAME:
        c.add("(root)", MSG_CLUSTER_NAME)
    if spec is None:
        c.add("spec", "Required value")
        return ParsedFloor(None, tuple(c.issues))
    s = c.mapping("spec", spec)
    mode = c.string("spec.mode", s.get("mode"), enum=[m.value for m in Mode])
    if "mode" not in s:
        c.add("spec.mode", "Required value")
    listener = c.string(
        "spec.listener", s.get("listener"), default="public-mx", enum=[x.value for x in Listener]
    )
    tls = c.string("spec.minTLSVersion", s.get("minTLSVersion"), default="1.2", enum=["1.2", "1.3"])
    refusal = c.string(
        "spec.refusal", s.get("refusal"), default="permanent", enum=[r.value for r in Refusal]
    )
    bound = PRIORITY_BOUND
    priority = c.integer("spec.priority", s.get("priority"), default=0, lo=-bound, hi=bound)
    if "scope" not in s:
        c.add("spec.scope", "Required value")
    scope = parse_scope(c, s.get("scope"))
    mta_sts, rua = parse_mtasts(c, s), parse_tlsrpt(c, s)
    check_published_domains(c, s)
    if c.issues or mode is None or listener is None or tls is None or refusal is None:
        return ParsedFloor(None, tuple(c.issues))
    return ParsedFloor(
        FloorSpec(
            mode=Mode(mode),
            scope=scope,
            listener=Listener(listener),
            min_tls_version=TLSVersion(tls),
            refusal=Refusal(refusal),
            priority=priority,
            mta_sts=mta_sts,
            tlsrpt_rua=rua,
        )
    )
