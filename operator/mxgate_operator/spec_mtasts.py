"""Parse a TLSPolicy's ``spec.mtaSts`` and ``spec.tlsRpt`` (RFC 8461 / RFC 8460) with field paths.

Mirrors the CRD's bounds and CEL rules for those two fields exactly (same message text,
checked by tests/operator/test_spec.py). Pure: never touches the API, never logs; an
invalid field is an ``Issue`` on the shared ``Checker``, not an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mxgate_gateway.config.model import MTASTSMode
from mxgate_operator.checks import Checker

MX_PATTERN = r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
RUA_PATTERN = r"^(mailto:[^\s,;@]+@[^\s,;@]+|https://[^\s,;/]+(/[^\s,;]*)?)$"
MAX_MX = 16
MAX_RUA = 4
MAX_RUA_LENGTH = 512
MIN_MAX_AGE = 86_400  # one day; RFC 8461 §5 recommends weeks
MAX_MAX_AGE = 31_557_600  # RFC 8461 §3.2
DEFAULT_MAX_AGE = 604_800

MSG_MTASTS_MX = "mtaSts.mx needs at least one pattern unless mode is 'none' (RFC 8461 §3.2)"
MSG_MTASTS_DOMAINS = (
    "mtaSts and tlsRpt need a scope.recipientDomains entry without '*.':"
    " records are published per recipient domain"
)


@dataclass(frozen=True)
class MTASTSSpec:
    """``spec.mtaSts``: the policy to serve for each recipient domain in scope."""

    mode: MTASTSMode
    mx: tuple[str, ...] = ()
    max_age: int = DEFAULT_MAX_AGE


def parse_mtasts(c: Checker, spec: Mapping[str, object]) -> MTASTSSpec | None:
    """``spec.mtaSts`` as a value (None when absent); problems go to ``c``."""
    if "mtaSts" not in spec:
        return None
    path = "spec.mtaSts"
    s = c.mapping(path, spec.get("mtaSts"))
    if "mode" not in s:
        c.add(f"{path}.mode", "Required value")
    mode = c.string(f"{path}.mode", s.get("mode"), enum=[m.value for m in MTASTSMode])
    mx = c.string_set(
        f"{path}.mx",
        s.get("mx"),
        max_items=MAX_MX,
        item=lambda p, v: c.string(p, v, max_length=253, pattern=MX_PATTERN),
    )
    max_age = c.integer(
        f"{path}.maxAge", s.get("maxAge"), default=DEFAULT_MAX_AGE, lo=MIN_MAX_AGE, hi=MAX_MAX_AGE
    )
    raw_mx = s.get("mx")
    if mode is not None and mode != "none" and not (isinstance(raw_mx, list) and raw_mx):
        c.add(path, MSG_MTASTS_MX)
    if mode is None:
        return None
    return MTASTSSpec(MTASTSMode(mode), mx, max_age)


def parse_tlsrpt(c: Checker, spec: Mapping[str, object]) -> tuple[str, ...]:
    """``spec.tlsRpt.rua``: where senders send TLS-RPT reports (empty when absent)."""
    if "tlsRpt" not in spec:
        return ()
    path = "spec.tlsRpt"
    s = c.mapping(path, spec.get("tlsRpt"))
    if "rua" not in s:
        c.add(f"{path}.rua", "Required value")
    return c.string_set(
        f"{path}.rua",
        s.get("rua"),
        max_items=MAX_RUA,
        min_items=1 if "rua" in s else 0,
        item=lambda p, v: c.string(p, v, max_length=MAX_RUA_LENGTH, pattern=RUA_PATTERN),
    )


def check_published_domains(c: Checker, spec: Mapping[str, object]) -> None:
    """The spec-level CEL rule: MTA-STS/TLS-RPT need a concrete recipient domain."""
    if "mtaSts" not in spec and "tlsRpt" not in spec:
        return
    scope = spec.get("scope")
    domains = scope.get("recipientDomains") if isinstance(scope, Mapping) else None
    concrete = [d for d in domains or [] if isinstance(d, str) and not d.startswith("*.")]
    if not concrete:
        c.add("spec", MSG_MTASTS_DOMAINS)
