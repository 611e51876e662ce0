"""The chart renders valid Kubernetes objects over a matrix of values, and each value does
what values.yaml says: built-in kinds pass kubernetes-validate --strict at the pinned
release, and the rendered gateway config loads in the gateway's own config model.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mxgate_gateway.config.loader import validate
from mxgate_gateway.config.model import Config

CHART = Path(__file__).resolve().parents[2] / "helm" / "mxgate"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
RULE_API = "monitoring.coreos.com/v1/PrometheusRule"
NOT_BUILT_IN = {"ServiceMonitor", "PrometheusRule", "PodMonitor"}

MATRIX: dict[str, tuple[dict[str, Any], list[str]]] = {
    "defaults": ({}, []),
    "proxy-protocol-on": (
        {
            "gateway": {
                "proxyProtocol": {"enabled": True, "trustedNetworks": ["10.0.0.0/8"]},
                "service": {"externalTrafficPolicy": "Cluster"},
            }
        },
        [],
    ),
    "hpa-on": ({"gateway": {"autoscaling": {"enabled": True}}}, []),
    "servicemonitor-api-present": ({}, [SERVICE_MONITOR_API, RULE_API]),
    "mta-sts-ingress": (
        {
            "mtaSts": {
                "ingress": {"enabled": True, "clusterIssuer": "letsencrypt"},
                "tlsRpt": {"enabled": True, "maxDecompressedBytes": 4194304},
            }
        },
        [],
    ),
    "crds-disabled": ({"crds": {"enabled": False}}, []),
    "everything-optional-off": (
        {
            "operator": {"enabled": False},
            "admissionPolicy": {"enabled": False},
            "dashboards": {"enabled": False},
            "metrics": {
                "serviceMonitor": {"enabled": False},
                "prometheusRule": {"enabled": False},
            },
            "gateway": {
                "tls": {"enabled": False},
                "podDisruptionBudget": {"enabled": False},
                "networkPolicy": {"enabled": False},
                "serviceAccount": {"create": False},
                "podAntiAffinity": "none",
                "topologySpreadConstraints": [],
            },
        },
        [SERVICE_MONITOR_API, RULE_API],
    ),
    "platform-knobs": (
        {
            "commonLabels": {"team": "mail"},
            "gateway": {
                "runAsUser": None,
                "podSecurityContext": {"fsGroupChangePolicy": "OnRootMismatch"},
                "securityContext": {"seLinuxOptions": {"level": "s0:c1,c2"}},
                "startupProbe": {"enabled": True},
                "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["true"]}],
                "extraContainers": [{"name": "sidecar", "image": "busybox:1.36"}],
            },
            "metrics": {
                "serviceMonitor": {"enabled": False},
                "podMonitor": {
                    "enabled": True,
                    "relabelings": [{"targetLabel": "x", "replacement": "y"}],
                },
            },
        },
        [SERVICE_MONITOR_API, RULE_API, "monitoring.coreos.com/v1/PodMonitor"],
    ),
    "production-like": (
        {
            "image": {"repository": "registry.example/mxgate", "digest": "sha256:" + "ab" * 32},
            "admissionPolicy": {"action": "Deny"},
            "gateway": {
                "replicaCount": 3,
                "listenAddress": "::",
                "podAntiAffinity": "hard",
                "service": {
                    "loadBalancerSourceRanges": ["192.0.2.0/24"],
                    "ipFamilyPolicy": "PreferDualStack",
                    "ipFamilies": ["IPv4", "IPv6"],
                    "nodePort": 30025,
                },
                "upstreams": [
                    {"address": "[2001:db8::25]:25", "tls": "required", "timeout": 120},
                    {"address": "backup.mail.svc:2525", "tls": "none"},
                ],
                "policy": {"mode": "audit", "traceHeader": "X-Mxgate-Policy"},
                "limits": {"drainTimeout": 55.5, "maxRecipients": 500},
                "extraConfig": {"smtp": {"banner": "ESMTP ready"}},
            },
        },
        [SERVICE_MONITOR_API, RULE_API],
    ),
}


@pytest.fixture(params=sorted(MATRIX), name="case")
def _case(request: pytest.FixtureRequest, render: Any) -> Any:
    overrides, apis = MATRIX[request.param]
    return render(overrides, apis)


def test_built_in_kinds_pass_strict_schema_validation(
    case, chart_tools, kube_release: str, tmp_path: Path
) -> None:
    """Every built-in object validates against the pinned Kubernetes release's schema, strictly."""
    built_in = [d for d in case.docs if d["kind"] not in NOT_BUILT_IN]
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(built_in), encoding="utf-8")
    done = subprocess.run(
        [chart_tools["kubernetes-validate"], "--strict", "--quiet", "-k", kube_release, manifest],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rendered_gateway_config_loads_in_the_gateway_model(case) -> None:
    """The config.yaml the chart renders is a valid gateway Config (the contract in model.py)."""
    config = validate(Config, case.gateway_config(), "chart")
    assert config.hostname == "mx1.example.com"
    assert config.listen.smtp.endswith(":2525")
    assert config.listen.http.endswith(":8025")


def test_every_object_is_namespaced_to_the_release_or_cluster_scoped(case) -> None:
    """Namespaced objects carry the release namespace; only CRDs, the admission policy and the
    operator's ClusterTLSPolicy reader do not, and only its floor events' Role lives in default."""
    cluster_scoped = {
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    for doc in case.docs:
        ns = doc["metadata"].get("namespace")
        if doc["kind"] in cluster_scoped:
            assert ns is None, doc["metadata"]["name"]
        elif doc["metadata"]["name"].endswith("-operator-floor-events"):
            assert ns == "default", f"{doc['kind']}/{doc['metadata']['name']}"
        else:
            assert ns == "mail", f"{doc['kind']}/{doc['metadata']['name']}"


def test_oldest_supported_kubernetes_accepts_every_object(
    render, chart_tools, helm_cli, tmp_path: Path
) -> None:
    """At Chart.yaml's minimum (1.30) everything on still validates; 1.29 is refused by helm."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["kubeVersion"] == ">=1.30.0-0"
    overrides, apis = MATRIX["production-like"]
    on = {**overrides, "mtaSts": {"ingress": {"enabled": True}}}
    on["gateway"] = {**on["gateway"], "autoscaling": {"enabled": True}}
    rendered = render(on, apis, kube="1.30.0")
    built_in = [d for d in rendered.docs if d["kind"] not in NOT_BUILT_IN]
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(built_in), encoding="utf-8")
    done = subprocess.run(
        [chart_tools["kubernetes-validate"], "--strict", "--quiet", "-k", "1.30.0", manifest],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({}), encoding="utf-8")
    old = helm_cli.run(*helm_cli.template_args(values, kube="1.29.9"), check=False)
    assert "incompatible with Kubernetes v1.29.9" in old.stderr
