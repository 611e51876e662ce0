"""The Python validator mirrors the CRD: same bounds, same CEL rules, same verdicts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from validation_table import BAD, GOOD, Case

from mxgate_gateway.config.model import Listener, Mode
from mxgate_operator import spec as S
from mxgate_operator.spec import go_duration_seconds, parse_policy


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def _walk(node: Any, path: str = "") -> Any:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.get("properties", {}).items():
            yield from _walk(value, f"{path}.{key}")
        if "items" in node:
            yield from _walk(node["items"], f"{path}[]")


@pytest.mark.parametrize("case", GOOD, ids=lambda c: c.id)
def test_good_policies_parse(case: Case) -> None:
    """Every good example parses without issues."""
    parsed = parse_policy(case.name, case.spec)
    assert parsed.issues == ()
    assert parsed.spec is not None


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_bad_policies_are_refused_at_their_path(case: Case) -> None:
    """Every bad example is refused with the table's field path and message fragment."""
    parsed = parse_policy(case.name, case.spec)
    assert parsed.spec is None
    hits = [i for i in parsed.issues if i.path == case.path and case.fragment in i.message]
    assert hits, parsed.issues


def test_defaults_match_the_crd(crd: dict[str, Any]) -> None:
    """Unset fields take the CRD's defaults."""
    props = _schema(crd)["properties"]["spec"]["properties"]
    parsed = parse_policy("p", {"mode": "audit", "scope": {"clientCIDRs": ["10.0.0.0/8"]}})
    assert parsed.spec is not None
    assert parsed.spec.mode is Mode.AUDIT
    assert parsed.spec.listener.value == props["listener"]["default"] == Listener.PUBLIC_MX
    assert parsed.spec.min_tls_version.value == props["minTLSVersion"]["default"]
    assert parsed.spec.priority == props["priority"]["default"]
    assert parsed.spec.refusal.value == props["refusal"]["default"]


def test_every_cel_message_is_mirrored(crd: dict[str, Any]) -> None:
    """Each CEL rule's message in the CRD is one of spec.py's messages, and vice versa."""
    crd_messages = {
        rule["message"]
        for _, node in _walk(_schema(crd))
        for rule in node.get("x-kubernetes-validations", [])
    }
    py_messages = {v for k, v in vars(S).items() if k.startswith("MSG_")}
    assert crd_messages == py_messages


def test_bounds_and_patterns_match_the_crd(crd: dict[str, Any]) -> None:
    """maxItems, maxLength and patterns in spec.py are the CRD's."""
    nodes = dict(_walk(_schema(crd)))
    scope = ".spec.scope"
    for dim in ("recipientDomains", "senderDomains", "clientCIDRs"):
        assert nodes[f"{scope}.{dim}"]["maxItems"] == S.MAX_SCOPE_ITEMS
    assert nodes[f"{scope}.recipientDomains[]"]["pattern"] == S.DOMAIN_PATTERN
    assert nodes[f"{scope}.senderDomains[]"]["pattern"] == S.DOMAIN_PATTERN
    assert nodes[".spec.certificate.dnsNames[]"]["pattern"] == S.HOST_PATTERN
    assert nodes[".spec.certificate.dnsNames"]["maxItems"] == S.MAX_DNS_NAMES
    assert nodes[".spec.certificate.issuerRef.name"]["pattern"] == S.ISSUER_PATTERN
    assert nodes[".spec.certificate.issuerRef.group"]["pattern"] == S.GROUP_PATTERN
    assert nodes[".spec.certificate.duration"]["pattern"] == S.DURATION_PATTERN
    assert nodes[".spec.priority"]["maximum"] == S.PRIORITY_BOUND
    assert nodes[".spec.mode"]["enum"] == [m.value for m in Mode]
    assert nodes[".spec.listener"]["enum"] == [x.value for x in Listener]


def test_crd_bounds_every_list_and_string(crd: dict[str, Any]) -> None:
    """Every spec/status list has maxItems and every free string maxLength or an enum (CEL cost)."""
    for path, node in _walk(_schema(crd)):
        if path in ("", ".metadata", ".apiVersion", ".kind"):
            continue
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "string" and "format" not in node:
            assert "maxLength" in node or "enum" in node, path


def test_every_field_is_described(crd: dict[str, Any]) -> None:
    """`kubectl explain` has a description for every field below spec and status."""
    for path, node in _walk(_schema(crd)):
        if path.startswith((".spec", ".status")) and not path.endswith("[]"):
            assert node.get("description"), path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2160h", 2160 * 3600), ("1h30m", 5400), ("90s", 90), ("5m", 300), ("1h1h", 7200)],
)
def test_go_duration_seconds(text: str, seconds: int) -> None:
    """Durations in h/m/s add up like Go's time.ParseDuration."""
    assert re.fullmatch(S.DURATION_PATTERN, text)
    assert go_duration_seconds(text) == seconds
