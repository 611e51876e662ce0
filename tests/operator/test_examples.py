"""The TLSPolicy examples: good ones are valid and render; each invalid one has one mistake."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mxgate_gateway.config.loader import parse_text, validate
from mxgate_gateway.config.model import PolicyDocument
from mxgate_operator.render.gateway_config import PolicyInput, render_policies
from mxgate_operator.spec import parse_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOOD = sorted(EXAMPLES.glob("tlspolicy-*.yaml"))
BAD = sorted(EXAMPLES.glob("invalid-tlspolicy-*.yaml"))


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def expected_fragment(path: Path) -> str:
    """The `# expect:` comment of an invalid example: a fragment of the refusal message."""
    match = re.search(r"^# expect: (.+)$", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} lacks an '# expect:' comment"
    return match.group(1).strip()


def test_there_are_examples() -> None:
    """At least three good and five invalid TLSPolicy examples exist."""
    assert len(GOOD) >= 3
    assert len(BAD) >= 5


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_examples_are_valid(path: Path) -> None:
    """Each tlspolicy-*.yaml parses without a single issue."""
    body = load(path)
    assert body["kind"] == "TLSPolicy"
    assert parse_policy(body["metadata"]["name"], body.get("spec")).issues == ()


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_invalid_examples_make_exactly_one_mistake(path: Path) -> None:
    """Each invalid-tlspolicy-*.yaml has exactly one issue, the one its comment names."""
    body = load(path)
    issues = parse_policy(body["metadata"]["name"], body.get("spec")).issues
    assert len(issues) == 1, issues
    assert expected_fragment(path) in issues[0].message


def test_good_examples_render_together_into_a_loadable_file() -> None:
    """All good examples in one namespace are accepted and render a file the gateway loads."""
    inputs = [
        PolicyInput(
            "mail", b["metadata"]["name"], "uid", 1, parse_policy(b["metadata"]["name"], b["spec"])
        )
        for b in map(load, GOOD)
    ]
    result = render_policies(inputs)
    assert all(a.accepted for a in result.admissions), result.admissions
    doc = validate(PolicyDocument, parse_text(result.text, "rendered"), "rendered")
    assert len(doc.rules) == len(GOOD)
