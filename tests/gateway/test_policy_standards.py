"""RFC 3207 §4 warnings: require for everyone on a public MX is flagged; scoped require is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mxgate_gateway.cli import check_config
from mxgate_gateway.config.model import Config
from mxgate_gateway.policy.standards import standards_warnings


def config(policy: dict[str, Any], listener: str = "public-mx") -> dict[str, Any]:
    return {
        "hostname": "mx.example.test",
        "listener": listener,
        "domains": ["accepted.test"],
        "upstreams": [{"address": "127.0.0.1:10025"}],
        "policy": policy,
    }


def rule(mode: str, listener: str | None = None, **scope: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "r", "mode": mode, "scope": scope}
    if listener:
        out["listener"] = listener
    return out


@pytest.mark.parametrize(
    ("policy", "listener", "fields"),
    [
        ({"mode": "opportunistic"}, "public-mx", []),
        ({"mode": "audit"}, "public-mx", []),
        ({"mode": "require"}, "public-mx", ["policy.mode"]),
        ({"mode": "require"}, "submission", []),
        ({"mode": "require"}, "internal", []),
        ({"rules": [rule("require", client_cidrs=["0.0.0.0/0"])]}, "public-mx",
         ["policy.rules[0]"]),
        ({"rules": [rule("require", client_cidrs=["10.0.0.0/8", "::/0"])]}, "public-mx",
         ["policy.rules[0]"]),
        ({"rules": [rule("audit", client_cidrs=["0.0.0.0/0"])]}, "public-mx", []),
        ({"rules": [rule("require", client_cidrs=["192.0.2.0/24"])]}, "public-mx", []),
        ({"rules": [rule("require", sender_domains=["bank.example"])]}, "public-mx", []),
        ({"rules": [rule("require", client_cidrs=["0.0.0.0/0"], sender_domains=["*.example"])]},
         "public-mx", []),
        ({"rules": [rule("require", "internal", client_cidrs=["0.0.0.0/0"])]}, "public-mx", []),
        ({"mode": "require", "rules": [rule("require", client_cidrs=["::/0"])]}, "public-mx",
         ["policy.mode", "policy.rules[0]"]),
    ],
)  # fmt: skip
def test_warnings_table(policy: dict[str, Any], listener: str, fields: list[str]) -> None:
    """Only a require that reaches every sender on a public-mx listener is flagged."""
    cfg = Config.model_validate(config(policy, listener))
    assert [field for field, _ in standards_warnings(cfg)] == fields
    assert all("RFC 3207" in message for _, message in standards_warnings(cfg))


def test_check_config_prints_the_warning_and_still_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mxgate check-config` accepts the file (it is valid) and warns on stderr."""
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config({"mode": "require"})))
    assert check_config(path, None) == 0
    out, err = capsys.readouterr()
    assert ": ok (" in out
    assert "warning: policy.mode:" in err
    assert "RFC 3207" in err
