"""NOTES.txt without a cluster: the same template rendered by `helm template` from a copy of
the chart where it is an ordinary template (helm prints NOTES only on install). The warning
for monitoring that was requested but whose API the cluster lacks follows --api-versions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "mxgate"
MONITORING = "monitoring.coreos.com/v1/"


def _notes(helm_cli, values_file, tmp_path: Path, overrides: dict, apis: list[str]) -> str:
    chart = tmp_path / "mxgate"
    shutil.copytree(CHART, chart)
    notes = chart / "templates" / "NOTES.txt"
    text = notes.read_text(encoding="utf-8")
    notes.unlink()
    # helm template prints only YAML: wrap the notes as one string in a document.
    defined = '{{- define "test.notes" -}}\n' + text + "\n{{- end -}}\n"
    (chart / "templates" / "_notes.tpl").write_text(defined, encoding="utf-8")
    (chart / "templates" / "notes.yaml").write_text(
        'kind: Notes\ntext: {{ include "test.notes" . | toJson }}\n', encoding="utf-8"
    )
    args = helm_cli.template_args(values_file(overrides), [MONITORING + a for a in apis], chart)
    done = helm_cli.run(*args, "--show-only", "templates/notes.yaml")
    return str(yaml.safe_load(done.stdout)["text"])


@pytest.mark.parametrize(
    ("overrides", "apis", "named"),
    [
        ({}, [], {"ServiceMonitor", "PrometheusRule"}),
        ({}, ["ServiceMonitor"], {"PrometheusRule"}),
        ({}, ["ServiceMonitor", "PrometheusRule"], set()),
        ({"metrics": {"podMonitor": {"enabled": True}}}, ["ServiceMonitor", "PrometheusRule"],
         {"PodMonitor"}),
        ({"metrics": {"serviceMonitor": {"enabled": False},
                      "prometheusRule": {"enabled": False}}}, [], set()),
    ],
    ids=["nothing-served", "no-rules-api", "all-served", "podmonitor-missing", "none-requested"],
)  # fmt: skip
def test_notes_name_each_requested_monitor_the_cluster_cannot_create(
    helm_cli, values_file, tmp_path: Path, overrides, apis, named
) -> None:
    """A requested ServiceMonitor/PodMonitor/PrometheusRule without its API is named once."""
    notes = _notes(helm_cli, values_file, tmp_path, overrides, apis)
    assert ("WARNING: requested but NOT created" in notes) == bool(named)
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert (f"{kind} (metrics." in notes) == (kind in named)
