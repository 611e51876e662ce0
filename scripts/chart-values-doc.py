"""Write the values table of helm/mxgate/README.md from values.yaml's `# --` comments
(helm-docs style: a `# --` comment, continued by plain `#` lines, documents the key below it).

`python scripts/chart-values-doc.py` rewrites the table between the README's markers;
`--check` exits 1 when the README's table differs (tests/helm/test_values_doc.py does the
same). The default shown is the parsed value of the key, as JSON. It only reads values.yaml
and writes the README; it never renders the chart.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "helm" / "mxgate"
BEGIN = "<!-- values-table:begin (scripts/chart-values-doc.py) -->"
END = "<!-- values-table:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")
DOC = re.compile(r"^ *# -- ?(?P<text>.*)$")
MORE = re.compile(r"^ *#(?: (?P<text>.*))?$")


@dataclass(frozen=True)
class Row:
    """One documented value: its dotted path, type, default and description."""

    path: str
    kind: str
    default: str
    description: str


def documented(text: str) -> list[tuple[str, str]]:
    """(dotted path, description) for every key preceded by a `# --` comment, in file order."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        if (doc := DOC.match(line)) is not None:
            pending = [doc["text"].strip()]
            continue
        if pending is not None and (more := MORE.match(line)) is not None:
            pending.append((more["text"] or "").strip())
            continue
        if (key := KEY.match(line)) is None:
            if line.strip() and not line.lstrip().startswith("#"):
                pending = None  # a list item or continuation: the comment was not for a key
            continue
        indent = len(key["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key["key"]))
        if pending is not None:
            path = ".".join(k for _, k in stack)
            found.append((path, " ".join(p for p in pending if p)))
            pending = None
    return found


def _lookup(values: Any, path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}[
        type(value)
    ]


def rows(text: str) -> list[Row]:
    """The table's rows for one values.yaml text."""
    values = yaml.safe_load(text)
    out = []
    for path, description in documented(text):
        value = _lookup(values, path)
        default = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        out.append(Row(path, _kind(value), default, description))
    return out


def table(text: str) -> str:
    """The markdown table, markers included."""
    lines = [BEGIN, "| Key | Type | Default | Description |", "|---|---|---|---|"]
    for row in rows(text):
        cells = (f"`{row.path}`", row.kind, f"`{row.default}`", row.description)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append(END)
    return "\n".join(lines)


def render_readme(readme: str, values_text: str) -> str:
    """The README with its table replaced (appended under "## Values" when missing)."""
    if BEGIN in readme:
        head, rest = readme.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + table(values_text) + tail
    return readme.rstrip("\n") + "\n\n## Values\n\n" + table(values_text) + "\n"


def main(argv: list[str]) -> int:
    readme_path = CHART / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    wanted = render_readme(readme, (CHART / "values.yaml").read_text(encoding="utf-8"))
    if "--check" in argv:
        if wanted != readme:
            print("helm/mxgate/README.md values table is stale: run make chart-docs")
            return 1
        return 0
    readme_path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
