"""NOTES.txt, as `helm install` prints it against a real kube-apiserver (dry run): it names
this release's Service, TLS Secret and HTTP Service and tells how to see the loss report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHART = Path(__file__).resolve().parents[2] / "helm" / "mxgate"
# The CRD is cluster-wide and may belong to another test's release: leave it out.
NO_CRD = {"crds": {"enabled": False}}


def _notes(helm, values_file, namespace: str, *values: str) -> str:
    done = helm(
        "install", "edge", str(CHART), "-n", namespace, "--dry-run=server",
        "--values", str(values_file(NO_CRD)), *values,
    )  # fmt: skip
    assert "NOTES:" in done.stdout
    return done.stdout.split("NOTES:", 1)[1]


def test_notes_tell_how_to_reach_the_mx_and_see_the_loss_report(
    helm, values_file, kube_namespace
) -> None:
    """The notes name the release's SMTP Service, TLS Secret, and the report commands."""
    notes = _notes(helm, values_file, kube_namespace)
    assert f"kubectl -n {kube_namespace} get service edge-mxgate-gateway" in notes
    assert "secret/edge-mxgate-tls" in notes
    assert "port-forward service/edge-mxgate-gateway-http 8025:8025" in notes
    assert "mxgate report --url http://127.0.0.1:8025" in notes
    assert "get tlspolicies" in notes
    assert "accepted with a warning" in notes


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("--set", "admissionPolicy.action=Deny"), "is refused"),
        (("--set", "gateway.tls.enabled=false"), "STARTTLS is NOT offered"),
        (
            ("--set", "gateway.proxyProtocol.enabled=true",
             "--set", "gateway.proxyProtocol.trustedNetworks={10.0.0.0/8}"),
            "PROXY protocol is ON: only 10.0.0.0/8",
        ),
    ],
    ids=["deny", "no-tls", "proxy"],
)  # fmt: skip
def test_notes_follow_the_values(helm, values_file, kube_namespace, values, expected) -> None:
    """Deny, TLS off and PROXY protocol each change what the notes say."""
    assert expected in _notes(helm, values_file, kube_namespace, *values)


@pytest.mark.parametrize(
    ("values", "warned"),
    [
        ((), ["ServiceMonitor (metrics.serviceMonitor.enabled)", "PrometheusRule"]),
        (("--set", "metrics.serviceMonitor.enabled=false",
          "--set", "metrics.prometheusRule.enabled=false"), []),
    ],
    ids=["requested", "not-requested"],
)  # fmt: skip
def test_notes_warn_when_monitoring_was_requested_but_its_api_is_missing(
    helm, values_file, kube_namespace, values, warned
) -> None:
    """This control plane serves no monitoring.coreos.com/v1: requested monitors are named."""
    notes = _notes(helm, values_file, kube_namespace, *values)
    assert ("WARNING: requested but NOT created" in notes) == bool(warned)
    for kind in warned:
        assert kind in notes
