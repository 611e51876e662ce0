"""values.yaml and values.schema.json: every value documented, the schema strict, and values
that cannot work refused by helm with a message naming the problem.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import mxgate_gateway
from mxgate_gateway.config.model import Limits, ProxyProtocol, SMTPOptions, TLSRPTSettings

CHART = Path(__file__).resolve().parents[2] / "helm" / "mxgate"


def _with(path: str, value: Any) -> dict[str, Any]:
    """Overrides with one dotted path set (the `refused` fixture adds the required values)."""
    values: dict[str, Any] = {}
    node = values
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return values


REFUSED: list[tuple[str, Any, str]] = [
    # (dotted path, bad value, text helm's error must contain)
    ("gatway", {}, "additional properties 'gatway' not allowed"),
    ("gateway.replicas", 3, "additional properties 'replicas' not allowed"),
    ("gateway.policy.mode", "strict", "value must be one of"),
    ("gateway.policy.minTLSVersion", "1.1", "value must be one of"),
    ("gateway.listener", "public", "value must be one of"),
    ("gateway.hostname", "mx1.example.com.", "/gateway/hostname"),
    ("gateway.domains", ["ex ample.com"], "/gateway/domains/0"),
    ("gateway.upstreams", [{"address": "postfix.mail.svc"}], "/gateway/upstreams/0/address"),
    ("gateway.upstreams", [{"tls": "none"}], "missing property 'address'"),
    ("gateway.limits.maxRecipients", 50, "minimum"),
    ("gateway.limits.drainTimeout", -1, "minimum"),
    ("gateway.proxyProtocol.trustedNetworks", ["10.0.0.0"], "trustedNetworks/0"),
    ("gateway.service.type", "ExternalName", "value must be one of"),
    ("gateway.service.externalTrafficPolicy", "local", "value must be one of"),
    ("gateway.runAsUser", 0, "minimum"),
    ("gateway.podAntiAffinity", "always", "value must be one of"),
    ("admissionPolicy.action", "Audit", "value must be one of"),
    ("image.digest", "latest", "/image/digest"),
    ("crds.keep", "yes", "got string, want boolean"),
]


@pytest.mark.parametrize(("path", "value", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_values_that_violate_the_schema_are_refused(refused, path, value, message) -> None:
    """helm refuses a misspelt key, a wrong enum, a bad pattern or an out-of-range number."""
    assert message in refused(_with(path, value))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (_with("gateway.hostname", ""), "gateway.hostname is required"),
        (_with("gateway.domains", []), "gateway.domains is required"),
        (_with("gateway.upstreams", []), "gateway.upstreams is required"),
        (_with("gateway.proxyProtocol", {"enabled": True}), "trustedNetworks is required"),
    ],
    ids=["hostname", "domains", "upstreams", "proxy-trusted-networks"],
)
def test_values_the_chart_cannot_work_without_fail_with_a_clear_message(
    refused, values, message
) -> None:
    """Missing hostname, domains, upstreams or PROXY trusted networks stop the install."""
    assert message in refused(values)


def test_the_defaults_alone_are_refused_naming_the_first_required_value(refused) -> None:
    """values.yaml as shipped cannot install: helm names gateway.hostname."""
    assert "gateway.hostname is required" in refused({}, required=False)


def test_every_value_in_values_yaml_is_commented() -> None:
    """Each value has a comment above it, or sits inside a commented value (e.g. resources)."""
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    uncommented = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(- )?([A-Za-z_][A-Za-z0-9_]*):", line)
        if not match:
            continue
        indent = len(match.group(1)) + (2 if match.group(2) else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        inherited = any(documented for _, documented in stack)
        documented = inherited or (i > 0 and lines[i - 1].strip().startswith("#"))
        is_section = line.rstrip().endswith(":")
        if not documented and not is_section:
            uncommented.append(line.strip())
        stack.append((indent, documented))
    assert uncommented == []


def test_schema_describes_every_default_value_and_is_strict_at_the_top() -> None:
    """Each top-level section is closed; every key in values.yaml appears in the schema."""
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False

    def check(node: Any, sch: dict[str, Any], where: str) -> None:
        if not isinstance(node, dict) or "properties" not in sch:
            return
        assert sch.get("additionalProperties") is False, f"{where} is not closed"
        for key, value in node.items():
            assert key in sch["properties"], f"{where}.{key} is missing from the schema"
            check(value, sch["properties"][key], f"{where}.{key}")

    check(values, schema, "(values)")


SECTIONS = [
    ("gateway.limits", Limits),
    ("gateway.smtp", SMTPOptions),
    ("gateway.proxyProtocol", ProxyProtocol),
    ("mtaSts.tlsRpt", TLSRPTSettings),
]


def _section(path: str) -> dict[str, Any]:
    node: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for key in path.split("."):
        node = node[key]
    return node


def _snake(key: str) -> str:
    return re.sub(r"([A-Z]+)", r"_\1", key).lower()


@pytest.mark.parametrize(("section", "model"), SECTIONS, ids=[s for s, _ in SECTIONS])
def test_chart_values_cover_every_gateway_setting_of_the_section(section, model) -> None:
    """Each modelled section names every field of its gateway model (camelCase)."""
    assert {_snake(k) for k in _section(section)} == set(model.model_fields)


@pytest.mark.parametrize(("section", "model"), SECTIONS, ids=[s for s, _ in SECTIONS])
def test_defaults_match_the_gateway_model_defaults(section, model) -> None:
    """A chart default is the gateway's own default, so leaving it alone changes nothing."""
    for key, value in _section(section).items():
        default = model.model_fields[_snake(key)].default
        assert (list(default) if isinstance(default, tuple) else default) == value, key


def test_chart_app_version_is_the_package_version() -> None:
    """The default image tag (appVersion) is the version the wheel in that image carries."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["appVersion"] == mxgate_gateway.__version__
