"""The knobs platform teams expect from a chart: securityContext overrides (OpenShift assigns
UIDs), a startupProbe, init and sidecar containers, commonLabels on pod templates, relabelings
on the ServiceMonitor, and a PodMonitor instead of it.
"""

from __future__ import annotations

import pytest

MONITORING = "monitoring.coreos.com/v1/"


def _pods(rendered):
    for suffix in ("-gateway", "-operator"):
        yield rendered.get("Deployment", suffix)["spec"]["template"]["spec"]


def test_defaults_pin_the_image_uid_and_harden_every_container(render) -> None:
    """Without overrides: UID/GID 10001, non-root, read-only root, no capabilities."""
    for pod in _pods(render()):
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["runAsUser"] == 10001
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}


def test_runasuser_null_leaves_the_uid_to_the_platform(render) -> None:
    """OpenShift: no runAsUser/runAsGroup/fsGroup anywhere; the rest of the hardening stays."""
    for pod in _pods(render({"gateway": {"runAsUser": None}})):
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(pod["securityContext"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        sc = pod["containers"][0]["securityContext"]
        assert not {"runAsUser", "runAsGroup"} & set(sc)
        assert sc["readOnlyRootFilesystem"] is True


def test_security_context_overrides_merge_over_the_defaults(render) -> None:
    """A key given in (pod)securityContext wins; the chart's other keys stay."""
    rendered = render(
        {
            "gateway": {
                "podSecurityContext": {"fsGroupChangePolicy": "OnRootMismatch", "runAsUser": 20000},
                "securityContext": {"seLinuxOptions": {"level": "s0:c123,c456"}},
            },
            "operator": {"securityContext": {"runAsUser": 30000}},
        }
    )
    gw, op = _pods(rendered)
    assert gw["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert gw["securityContext"]["runAsUser"] == 20000
    assert gw["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert gw["containers"][0]["securityContext"]["seLinuxOptions"]["level"] == "s0:c123,c456"
    assert gw["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert op["containers"][0]["securityContext"]["runAsUser"] == 30000
    assert op["securityContext"]["runAsUser"] == 10001


def test_startup_probe_is_off_by_default_and_on_livez_when_enabled(render) -> None:
    """startupProbe on /livez with the given period and threshold."""
    assert (
        "startupProbe"
        not in render().get("Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    )
    on = render({"gateway": {"startupProbe": {"enabled": True, "failureThreshold": 60}}})
    probe = on.get("Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0][
        "startupProbe"
    ]
    assert probe["httpGet"] == {"path": "/livez", "port": "http"}
    assert (probe["failureThreshold"], probe["periodSeconds"]) == (60, 2)


def test_init_and_extra_containers_are_rendered_as_given(render) -> None:
    """initContainers and extraContainers join the gateway pod; the gateway stays first."""
    init = {"name": "wait-upstream", "image": "busybox:1.36", "command": ["true"]}
    sidecar = {"name": "log-shipper", "image": "fluent/fluent-bit:3.0"}
    pod = render({"gateway": {"initContainers": [init], "extraContainers": [sidecar]}}).get(
        "Deployment", "-gateway"
    )["spec"]["template"]["spec"]
    assert pod["initContainers"] == [init]
    assert [c["name"] for c in pod["containers"]] == ["gateway", "log-shipper"]
    assert pod["containers"][1] == sidecar


def test_common_labels_reach_the_pod_templates(render) -> None:
    """commonLabels label every resource and both pod templates (not the selectors)."""
    rendered = render({"commonLabels": {"team": "mail", "cost-center": "42"}})
    for deployment in (rendered.get("Deployment", s) for s in ("-gateway", "-operator")):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["team"] == "mail"
        assert labels["cost-center"] == "42"
        assert "team" not in deployment["spec"]["selector"]["matchLabels"]
    assert all(d["metadata"]["labels"]["team"] == "mail" for d in rendered.docs)


RELABEL = [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
DROP = [{"sourceLabels": ["__name__"], "regex": "mxgate_build_info", "action": "drop"}]


def test_servicemonitor_carries_relabelings(render) -> None:
    """relabelings and metricRelabelings go on the ServiceMonitor's endpoint."""
    values = {"metrics": {"serviceMonitor": {"relabelings": RELABEL, "metricRelabelings": DROP}}}
    (endpoint,) = render(values, [MONITORING + "ServiceMonitor"]).get("ServiceMonitor")["spec"][
        "endpoints"
    ]
    assert (endpoint["relabelings"], endpoint["metricRelabelings"]) == (RELABEL, DROP)


@pytest.mark.parametrize(
    ("enabled", "apis", "count"),
    [(True, ["PodMonitor"], 1), (True, [], 0), (False, ["PodMonitor"], 0)],
    ids=["on", "api-absent", "off"],
)
def test_podmonitor_scrapes_the_gateway_pods(render, enabled, apis, count) -> None:
    """A PodMonitor selects the gateway pods' http port, only when requested and served."""
    values = {"metrics": {"podMonitor": {"enabled": enabled, "metricRelabelings": DROP}}}
    rendered = render(values, [MONITORING + a for a in apis])
    # The operator has a PodMonitor of its own (gated on the ServiceMonitor switch).
    monitors = [m for m in rendered.all("PodMonitor") if m["metadata"]["name"].endswith("-gateway")]
    assert len(monitors) == count
    for pm in monitors:
        pod = rendered.get("Deployment", "-gateway")["spec"]["template"]
        assert pod["metadata"]["labels"].items() >= pm["spec"]["selector"]["matchLabels"].items()
        (endpoint,) = pm["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] in {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert endpoint["metricRelabelings"] == DROP
