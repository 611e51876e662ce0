"""The config contract: valid files load, invalid ones fail with field paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from mxgate_gateway.config.loader import load_config, load_policy_document, merge_policy
from mxgate_gateway.config.model import Mode
from mxgate_gateway.errors import ConfigError

MINIMAL = """
hostname: mx.example.test
domains: [accepted.test]
upstreams:
  - address: 127.0.0.1:10025
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_minimal_config_gets_safe_defaults(tmp_path: Path) -> None:
    """A minimal file loads with opportunistic policy and no TLS."""
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.policy.mode is Mode.OPPORTUNISTIC
    assert cfg.tls is None
    assert cfg.listen.smtp == "127.0.0.1:2525"
    assert cfg.limits.max_recipients >= 100


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (MINIMAL.replace("127.0.0.1:10025", "nowhere"), "upstreams[0].address"),
        (MINIMAL + "policy: {mode: enforce}\n", "policy.mode"),
        (MINIMAL.replace("[accepted.test]", "[]"), "domains"),
        (MINIMAL.replace("[accepted.test]", "['bad domain']"), "domains[0]"),
        (MINIMAL + "listen: {smtp: '[::]:99999'}\n", "listen.smtp"),
        (MINIMAL + "unknown_key: 1\n", "unknown_key"),
        (
            MINIMAL + "policy: {rules: [{id: a, mode: require, scope: {}}]}\n",
            "policy.rules[0].scope",
        ),
        (
            MINIMAL
            + "policy: {rules: [{id: r, mode: audit, scope: {client_cidrs: [10.0.0.1/8]}}]}\n",
            "policy.rules[0].scope.client_cidrs[0]",
        ),
    ],
)
def test_invalid_config_names_the_field(tmp_path: Path, text: str, path: str) -> None:
    """Every error carries the dotted path of the offending field."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert path in [p for p, _ in info.value.errors], info.value.errors


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """Broken YAML is reported with its line, not a traceback."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "hostname: [unclosed\n"))
    assert info.value.errors[0][0].startswith("line ")


def test_policy_document_rules_are_appended_and_ids_stay_unique(tmp_path: Path) -> None:
    """The operator's policy file adds rules; a clashing id is refused."""
    cfg = load_config(
        write(
            tmp_path,
            MINIMAL
            + "policy: {rules: [{id: a, mode: audit, scope: {sender_domains: [x.test]}}]}\n",
        )
    )
    doc = load_policy_document(
        write(
            tmp_path,
            '{"version": 1, "mode": "audit", "rules": [{"id": "b", "mode": "require",'
            ' "scope": {"recipient_domains": ["*.accepted.test"]}}]}',
            "p.json",
        )
    )
    merged = merge_policy(cfg, doc)
    assert [r.id for r in merged.policy.rules] == ["a", "b"]
    assert merged.policy.mode is Mode.AUDIT
    clash = doc.model_copy(update={"rules": (cfg.policy.rules[0],)})
    with pytest.raises(ConfigError):
        merge_policy(cfg, clash)
