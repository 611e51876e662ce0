"""Golden files of the chart's output: a change to any rendered object shows up as a reviewed
diff under tests/helm/golden/ (`pytest --update-golden` rewrites them). The CRD body is the
operator's file and is left out (tests/operator owns its content).
"""

from __future__ import annotations

import pytest
import yaml

CASES = {
    "defaults": ({}, []),
    "everything-on": (
        {
            "gateway": {
                "autoscaling": {"enabled": True},
                "proxyProtocol": {"enabled": True, "trustedNetworks": ["10.0.0.0/8"]},
            },
            "admissionPolicy": {"action": "Deny"},
            "mtaSts": {
                "ingress": {"enabled": True, "clusterIssuer": "letsencrypt"},
                "tlsRpt": {"enabled": True},
            },
        },
        ["monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_chart_matches_its_golden_file(render, golden, case: str) -> None:
    """helm template output equals the reviewed golden file (config.yaml shown parsed)."""
    overrides, apis = CASES[case]
    docs = []
    for rendered in render(overrides, apis).docs:
        doc = dict(rendered)
        if doc["kind"] == "CustomResourceDefinition":
            doc["spec"] = f"<CRD: helm/mxgate/files/crds/{doc['metadata']['name']}.yaml>"
        if doc["metadata"]["name"].endswith("-gateway-config"):
            doc["data"] = {"config.yaml": yaml.safe_load(doc["data"]["config.yaml"])}
        if doc["metadata"]["name"].endswith("-dashboard"):
            doc["data"] = {"mxgate.json": "<helm/mxgate/files/dashboards/mxgate.json>"}
        docs.append(doc)
    golden(f"{case}.yaml", yaml.safe_dump_all(docs, sort_keys=True))
