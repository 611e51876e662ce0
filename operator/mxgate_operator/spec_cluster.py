"""Parse a ClusterTLSPolicy (metadata.name + spec) into a typed floor spec with field-path issues.

A ClusterTLSPolicy's spec is TLSPolicy's minus ``certificate``: mode, listener, minTLSVersion,
priority, refusal, scope, mtaSts and tlsRpt, with the same checks (spec.parse_shared).
Pure: never touches the API, never logs; an invalid spec is a value, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from mxgate_gateway.config.model import Listener, Mode, Refusal, TLSVersion
from mxgate_operator.checks import Checker, Issue
from mxgate_operator.spec import MAX_NAME, ScopeSpec, parse_shared
from mxgate_operator.spec_mtasts import MTASTSSpec

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
    shared, _ = parse_shared(c, c.mapping("spec", spec), lambda _mode: None)
    if shared is None:
        return ParsedFloor(None, tuple(c.issues))
    return ParsedFloor(
        FloorSpec(
            mode=shared.mode,
            scope=shared.scope,
            listener=shared.listener,
            min_tls_version=shared.min_tls_version,
            refusal=shared.refusal,
            priority=shared.priority,
            mta_sts=shared.mta_sts,
            tlsrpt_rua=shared.tlsrpt_rua,
        )
    )
