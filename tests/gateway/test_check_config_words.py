"""`mxgate check-config` speaks the config file's language: one line per real mistake, in
words about the key (never the validation library's), no follow-on errors, and
`mxgate config-keys` / `check-config --help` list every key with its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mxgate_gateway.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASE = (
    "hostname: mx.example.test\ndomains: [accepted.test]\nupstreams: [{address: '127.0.0.1:25'}]\n"
)
JARGON = ("Input should", "valid tuple", "dictionary", "instance of", "pydantic", "Value error",
          "after validation", "Tuple", "model_type", "literal")  # fmt: skip


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    for word in JARGON:
        assert word not in err, err
    return [line.strip() for line in err.splitlines()[1:]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "hostname: mx.example.test\ndomains: accepted.test\nupstreams: [{address: 'h:25'}]\n",
            "domains: must be a list of domain names, not a single value: write [accepted.test]",
        ),
        (BASE + "listen: {smtp: 2525}\n",
         "listen.smtp: must be a host:port (YAML read it as a number: put it in quotes)"),
        (BASE + "listen: {htp: '127.0.0.1:8025'}\n",
         "listen.htp: unknown key (did you mean http?); `mxgate config-keys` lists every key"),
        (BASE + "tls: yes\n",
         "tls: must be a section of keys (a YAML mapping) with cert, key, not True"),
        (BASE + "tls: {cert: /etc/tls.crt}\n", "tls.key: is required (a file path)"),
        (BASE + "policy: {mode: enforce}\n",
         "policy.mode: must be one of opportunistic, audit or require, not 'enforce'"),
        (BASE + "limits: {max_recipients: ten}\n",
         "limits.max_recipients: must be a whole number, not 'ten'"),
        (BASE + "limits: {max_recipients: 5}\n",
         "limits.max_recipients: must be at least 100, not 5"),
        (BASE + "log: {level: verbose}\n",
         "log.level: must be one of debug, info, warning or error, not 'verbose'"),
        ("hostname: mx.example.test\n",
         "upstreams: is required: a list, each entry a section of keys (a YAML mapping) with "
         "address"),
        (BASE + "policy: {rules: [{id: Bad Id, mode: audit, scope: {client_cidrs: [10.0.0.0/8]}}]}"
         "\n",
         "policy.rules[0].id: 'Bad Id' has the wrong form: lowercase letters, digits and . _ / -, "
         "starting and ending with a letter or digit, at most 128 characters"),
    ],
    ids=["list-as-text", "port-as-number", "typo", "tls-yes", "tls-missing-key", "enum",
         "not-a-number", "below-minimum", "literal", "missing-section-list", "rule-id"],
)  # fmt: skip
def test_each_mistake_is_one_line_in_users_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    """The line names the key and says what it must be (and what it got)."""
    lines = _check(tmp_path, text, capsys)
    assert expected in lines, lines


def test_a_refused_list_entry_is_not_followed_by_list_too_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the entry's own mistake: not also "upstreams needs at least 1 entry"."""
    text = "hostname: mx.example.test\ndomains: [a.test]\nupstreams: ['127.0.0.1:25']\n"
    lines = _check(tmp_path, text, capsys)
    assert lines == [
        "upstreams[0]: must be a section of keys (a YAML mapping) with address, not '127.0.0.1:25'"
    ]


def test_every_mistake_in_a_file_is_listed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several independent mistakes: one line each, in file order, nothing repeated."""
    text = BASE + "listen: {smtp: 2525}\nlog: {level: loud, format: xml}\n"
    lines = _check(tmp_path, text, capsys)
    assert [line.split(":")[0] for line in lines] == ["listen.smtp", "log.format", "log.level"]


def _paths(tree: Any, prefix: str = "") -> set[str]:
    if isinstance(tree, dict):
        out = set()
        for key, value in tree.items():
            out.add(f"{prefix}{key}")
            out |= _paths(value, f"{prefix}{key}.")
        return out
    if isinstance(tree, list) and tree and isinstance(tree[0], dict):
        return set().union(*(_paths(item, prefix.rstrip(".") + "[].") for item in tree))
    return set()


def test_config_keys_lists_every_key_the_examples_use_with_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every key in examples/gateway-*.yaml is listed; surface keys show their defaults."""
    assert main(["config-keys"]) == 0
    listed = {
        line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line[2] != " "
    }
    used = set().union(*(_paths(yaml.safe_load(p.read_text())) for p in
                         sorted((ROOT / "examples").glob("gateway-*.yaml"))))  # fmt: skip
    assert used
    assert used <= set(listed), used - set(listed)
    assert "default 127.0.0.1:2525; host:port" in listed["listen.smtp"]
    assert "default opportunistic; one of: opportunistic | audit | require" in listed["policy.mode"]
    assert "default (required); list of domain names" in listed["domains"]
    assert "default (required); host:port" in listed["upstreams[].address"]


def test_check_config_help_lists_the_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """`mxgate check-config --help` ends with the same key list."""
    with pytest.raises(SystemExit):
        main(["check-config", "--help"])
    out = capsys.readouterr().out
    assert "every key of the config file" in out
    assert "upstreams[].connect_timeout" in out
    assert "default 10; number (seconds for timeouts), above 0, at most 300" in out
