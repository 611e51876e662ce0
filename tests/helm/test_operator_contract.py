"""The chart wires the operator and the gateway to the same names: the operator, reading the
environment the chart gives it, writes the ConfigMap and Secret the gateway pods mount and
finds exactly the gateway pods by their labels.
"""

from __future__ import annotations

import pytest

from mxgate_operator.settings import OperatorSettings


def _operator_settings(rendered) -> OperatorSettings:
    deploy = rendered.get("Deployment", "-operator")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return OperatorSettings.from_env(env)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"fullnameOverride": "edge"},
        {"gateway": {"listener": "submission", "tls": {"secretName": "mx-cert"}}},
        {"nameOverride": "mail-gw"},
    ],
    ids=["defaults", "fullname-override", "listener-and-secret", "name-override"],
)
def test_operator_writes_what_the_gateway_mounts(render, overrides) -> None:
    """Policy ConfigMap and TLS Secret names agree; the selector matches only gateway pods."""
    rendered = render(overrides)
    settings = _operator_settings(rendered)
    pod = rendered.get("Deployment", "-gateway")["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert settings.configmap_name == volumes["policy"]["configMap"]["name"]
    listener = rendered.gateway_config()["listener"]
    assert settings.gateway_listener == listener
    assert settings.secret_names() == {listener: volumes["tls"]["secret"]["secretName"]}
    labels = pod["metadata"]["labels"]
    assert settings.gateway_selector.items() <= labels.items()
    operator_labels = rendered.get("Deployment", "-operator")["spec"]["template"]["metadata"]
    assert not settings.gateway_selector.items() <= operator_labels["labels"].items()
    assert settings.gateway_port == 8025


def test_operator_reads_reports_at_the_configured_interval(render) -> None:
    """operator.reportInterval reaches the operator's settings."""
    settings = _operator_settings(render({"operator": {"reportInterval": 15}}))
    assert settings.report_interval == 15.0


def test_the_chart_leaves_no_operator_allowlist_open(render) -> None:
    """Issuers, certificate names, minimum duration and MTA-STS domains are all declared."""
    assert _operator_settings(render({})).unrestricted() == ()
