"""Shared fixtures for operator tests: the canonical CRD, golden-file updating."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# tests/operator is not a package (it would shadow the stdlib `operator`); make its
# helper modules (validation_table) importable by name.
sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "helm" / "mxgate" / "files" / "crds" / "tlspolicies.mxgate.io.yaml"
GOLDEN = Path(__file__).parent / "golden"


def load_crd() -> dict[str, Any]:
    data = yaml.safe_load(CRD_PATH.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    """The TLSPolicy CRD exactly as the chart ships it."""
    return load_crd()


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Any:
    """Compare text with tests/operator/golden/<name>; rewrite it under --update-golden."""
    update = bool(request.config.getoption("--update-golden", default=False))

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.exists(), f"missing golden file {path}; run pytest --update-golden"
        assert text == path.read_text(), f"{name} differs from golden (pytest --update-golden)"

    return check
