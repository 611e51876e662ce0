"""The chart README's values table is generated from values.yaml's `# --` comments
(scripts/chart-values-doc.py, `make chart-docs`) and checked in; it must be current, and every
value must be documented by its own comment or its parent's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "mxgate"


def _doc_script() -> ModuleType:
    path = REPO / "scripts" / "chart-values-doc.py"
    spec = importlib.util.spec_from_file_location("chart_values_doc", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


DOC = _doc_script()
VALUES = (CHART / "values.yaml").read_text(encoding="utf-8")


def _leaves(tree: Any, prefix: str = "") -> list[str]:
    if isinstance(tree, dict) and tree:
        return [p for k, v in tree.items() for p in _leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_chart_readme_values_table_is_current() -> None:
    """The README holds exactly the table values.yaml generates (else: make chart-docs)."""
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    assert DOC.BEGIN in readme
    assert DOC.render_readme(readme, VALUES) == readme, "stale values table: make chart-docs"


def test_every_value_is_documented_by_itself_or_a_parent() -> None:
    """No knob without a `# --` comment on it or on the map that holds it."""
    documented = {path for path, _ in DOC.documented(VALUES)}
    missing = [
        leaf
        for leaf in _leaves(yaml.safe_load(VALUES))
        if not any(leaf == d or leaf.startswith(d + ".") for d in documented)
    ]
    assert missing == []


def test_table_rows_carry_path_type_default_and_the_whole_comment() -> None:
    """Nested paths, parsed defaults and multi-line comments come through."""
    text = (
        "top:\n"
        "  # -- First line\n"
        "  # second line.\n"
        "  inner: 5\n"
        "  # -- A list | with a pipe.\n"
        "  items:\n"
        "    - a\n"
        "other: x\n"
    )
    rows = DOC.rows(text)
    assert [(r.path, r.kind, r.default, r.description) for r in rows] == [
        ("top.inner", "int", "5", "First line second line."),
        ("top.items", "list", '["a"]', "A list | with a pipe."),
    ]
    assert "A list \\| with a pipe." in DOC.table(text)


def test_a_new_documented_value_makes_the_table_stale() -> None:
    """Adding a documented key to values.yaml without regenerating is caught."""
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    edited = VALUES + "\n# -- A value added without make chart-docs.\nbrandNew: true\n"
    assert DOC.render_readme(readme, edited) != readme
    assert "`brandNew`" in DOC.render_readme(readme, edited)
