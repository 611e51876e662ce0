"""The examples in examples/ against the CRD the chart renders: every ready-to-apply TLSPolicy
fits its OpenAPI schema (unknown fields refused, as kubectl's strict field validation does),
schema-level mistakes are refused, and the admission policy's CEL reads fields that exist.
CEL rules themselves run in the real API server (tests/e2e); jsonschema cannot run CEL.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from crdschema import errors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOOD = sorted(EXAMPLES.glob("tlspolicy-*.yaml"))


@pytest.fixture(scope="module")
def crd_schema(helm_cli, values_file) -> dict[str, Any]:
    """The v1alpha1 openAPIV3Schema of the CRD the chart renders (not the source file)."""
    values = values_file()
    done = helm_cli.run(*helm_cli.template_args(values), "--show-only", "templates/crds.yaml")
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    (crd,) = [d for d in docs if d["spec"]["names"]["kind"] == "TLSPolicy"]
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_there_are_examples_to_check() -> None:
    """examples/ holds ready-to-apply TLSPolicies (an empty glob would prove nothing)."""
    assert len(GOOD) >= 2


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_example_fits_the_rendered_crd_schema(crd_schema, path: Path) -> None:
    """Each ready-to-apply TLSPolicy is valid against the CRD schema, unknown fields refused."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == "mxgate.io/v1alpha1"
    assert doc["kind"] == "TLSPolicy"
    assert errors(crd_schema, doc) == []


BASE = {
    "apiVersion": "mxgate.io/v1alpha1",
    "kind": "TLSPolicy",
    "metadata": {"name": "x"},
    "spec": {"mode": "audit", "scope": {"senderDomains": ["bank.example"]}},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "mode"), "enforce"),
        (("spec", "listener"), "public"),
        (("spec", "minTLSVersion"), 1.2),
        (("spec", "priority"), "high"),
        (("spec", "scope", "senderDomains"), "bank.example"),
        (("spec", "scope", "senderDomainz"), ["bank.example"]),
        (("spec", "scope", "clientCIDRs"), [f"10.{i}.0.0/16" for i in range(300)]),
        (("spec", "certificat"), {}),
    ],
    ids=["mode-enum", "listener-enum", "tls-version-type", "priority-type", "list-type",
         "unknown-scope-field", "max-items", "unknown-spec-field"],
)  # fmt: skip
def test_schema_level_mistakes_are_refused(crd_schema, path, value) -> None:
    """A wrong enum, type, bound or field name fails the rendered schema."""
    doc = copy.deepcopy(BASE)
    assert errors(crd_schema, doc) == []
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert errors(crd_schema, doc) != []


def test_invalid_example_with_a_schema_mistake_is_refused(crd_schema) -> None:
    """examples/invalid-tlspolicy-unknown-mode.yaml is refused by the schema alone."""
    doc = yaml.safe_load((EXAMPLES / "invalid-tlspolicy-unknown-mode.yaml").read_text("utf-8"))
    assert any("enforce" in e for e in errors(crd_schema, doc))


def test_admission_policy_reads_fields_the_crd_defines(crd_schema, render) -> None:
    """The ValidatingAdmissionPolicy's CEL uses spec.mode/spec.listener with their enum values."""
    policy = render().get("ValidatingAdmissionPolicy")
    expression = policy["spec"]["validations"][0]["expression"]
    spec = crd_schema["properties"]["spec"]["properties"]
    assert "object.spec.mode" in expression
    assert "require" in spec["mode"]["enum"]
    assert "object.spec.listener" in expression
    assert "public-mx" in spec["listener"]["enum"]
