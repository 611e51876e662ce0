"""Parse a ClusterTLSPolicy (metadata.name + spec) into a typed floor spec with field-path issues.

A ClusterTLSPolicy's spec is TLSPolicy's mode, listener, minTLSVersion, refusal and scope
(the same checks, from spec.py); it has no certificate, MTA-STS, TLS-RPT or priority.
Pure: never touches the API, never logs; an invalid spec is a value, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from mxgate_gateway.config.model import Listener, Mode, Refusal, TLSVersion
from mxgate_operator.checks import Checker, Issue
from mxgate_operator.spec import MAX_NAME, ScopeSpec, parse_scope

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
    if "scope" not in s:
        c.add("spec.scope", "Required value")
    scope = parse_scope(c, s.get("scope"))
    if c.issues or mode is None or listener is None or tls is None or refusal is None:
        return ParsedFloor(None, tuple(c.issues))
    return ParsedFloor(
        FloorSpec(
            mode=Mode(mode),
            scope=scope,
            listener=Listener(listener),
            min_tls_version=TLSVersion(tls),
            refusal=Refusal(refusal),
        )
    )
