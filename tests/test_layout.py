"""The layout rule: `gateway/` and `operator/` are plain folders, never packages."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_component_folders_are_not_packages() -> None:
    """Neither `gateway/` nor `operator/` holds an `__init__.py`."""
    assert not (ROOT / "gateway" / "__init__.py").exists()
    assert not (ROOT / "operator" / "__init__.py").exists()
    assert (ROOT / "gateway" / "mxgate_gateway" / "__init__.py").is_file()
    assert (ROOT / "operator" / "mxgate_operator" / "__init__.py").is_file()


def test_import_operator_is_the_standard_library() -> None:
    """`import operator` resolves to the stdlib module, even from the repository root."""
    code = "import operator, sys; print(operator.__file__); assert operator.itemgetter"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out.startswith(sys.base_prefix) or "/lib/python" in out
    assert "mxgate_operator" not in out
    assert not out.startswith(str(ROOT / "operator"))
    assert importlib.import_module("operator").__name__ == "operator"


def test_both_import_packages_are_importable() -> None:
    """The distribution's two import packages import side by side."""
    gw = importlib.import_module("mxgate_gateway")
    op = importlib.import_module("mxgate_operator")
    assert gw.__version__ == op.__version__


def test_version_is_pyprojects_and_mxgate_version_prints_it() -> None:
    """`mxgate --version` prints the version pyproject.toml declares (one source of truth)."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version = declared["project"]["version"]
    assert importlib.import_module("mxgate_gateway").__version__ == version
    out = subprocess.run(
        [sys.executable, "-m", "mxgate_gateway.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == f"mxgate {version}"
