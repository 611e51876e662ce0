"""What the rendered objects promise: hardened pods, SMTP drain sized grace, mounts that
update in place, the Service keeping client IPs, and each optional piece switched by its
value (PROXY protocol, HPA, ServiceMonitor, CRDs, admission action).
"""

from __future__ import annotations

import pytest

from mxgate_gateway.config.loader import validate
from mxgate_gateway.config.model import Config
from mxgate_gateway.config.watcher import restart_required

SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"


def _pod(rendered, component: str):
    return rendered.get("Deployment", f"-{component}")["spec"]["template"]["spec"]


def test_gateway_pod_is_hardened(render) -> None:
    """Fixed non-root UID, read-only root, no capabilities, RuntimeDefault seccomp, no token."""
    pod = _pod(render(), "gateway")
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in sc["capabilities"]
    assert {p["containerPort"] for p in container["ports"]} == {2525, 8025, 8026}


def test_gateway_runs_the_console_script_with_config_and_policy_files(render) -> None:
    """The gateway container runs `mxgate gateway --config ... --policy ...` from the mounts."""
    (container,) = _pod(render(), "gateway")["containers"]
    assert container["command"] == ["mxgate"]
    assert container["args"] == [
        "gateway",
        "--config",
        "/etc/mxgate/config/config.yaml",
        "--policy",
        "/etc/mxgate/policy/policy.json",
    ]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_mounts_are_directories_and_late_material_is_optional(render) -> None:
    """Config, policy and TLS mount as directories (no subPath); policy and TLS are optional."""
    rendered = render()
    pod = _pod(rendered, "gateway")
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all("subPath" not in m for m in mounts.values())
    assert mounts["config"]["mountPath"] == "/etc/mxgate/config"
    assert mounts["policy"]["mountPath"] == "/etc/mxgate/policy"
    assert mounts["tls"]["mountPath"] == "/etc/mxgate/tls"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["policy"]["configMap"] == {"name": "mx-mxgate-policy", "optional": True}
    assert volumes["tls"]["secret"]["optional"] is True
    config = rendered.gateway_config()
    assert config["tls"]["cert"] == "/etc/mxgate/tls/tls.crt"
    assert config["tls"]["key"] == "/etc/mxgate/tls/tls.key"


@pytest.mark.parametrize(
    ("gateway_values", "grace"),
    [
        ({}, 5 + 25 + 10),
        ({"limits": {"drainTimeout": 60}}, 5 + 60 + 10),
        ({"limits": {"drainTimeout": 12.5}, "preStopSleepSeconds": 0}, 0 + 13 + 10),
        ({"terminationGracePeriodSeconds": 90}, 90),
    ],
    ids=["defaults", "drain-60", "fractional-drain-no-pause", "explicit"],
)
def test_termination_grace_covers_the_pause_and_the_smtp_drain(
    render, gateway_values, grace
) -> None:
    """terminationGracePeriodSeconds = preStop pause + drain deadline + 10 s unless set."""
    rendered = render({"gateway": gateway_values})
    pod = _pod(rendered, "gateway")
    assert pod["terminationGracePeriodSeconds"] == grace
    pause = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"


def test_smtp_service_is_port_25_keeping_client_ips(render) -> None:
    """SMTP is a LoadBalancer on port 25 → 2525 with externalTrafficPolicy Local by default."""
    svc = render().get("Service", "-gateway")["spec"]
    assert svc["type"] == "LoadBalancer"
    assert svc["externalTrafficPolicy"] == "Local"
    assert svc["ports"] == [{"name": "smtp", "port": 25, "targetPort": "smtp", "protocol": "TCP"}]


def test_http_port_is_never_on_the_load_balancer(render) -> None:
    """/metrics and /report stay on a ClusterIP Service; the public Service has only SMTP.
    The public HTTP port (MTA-STS, TLS-RPT) has its own ClusterIP Service for the Ingress."""
    rendered = render()
    http = rendered.get("Service", "-gateway-http")["spec"]
    assert http["type"] == "ClusterIP"
    assert [p["port"] for p in http["ports"]] == [8025]
    public = rendered.get("Service", "-gateway-public")["spec"]
    assert public["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in public["ports"]] == [(8026, "public")]
    assert rendered.gateway_config()["listen"]["public"].endswith(":8026")
    assert [p["port"] for p in rendered.get("Service", "-gateway")["spec"]["ports"]] == [25]


def test_proxy_protocol_values_map_to_the_gateway_listener(render) -> None:
    """gateway.proxyProtocol becomes listen.proxy_protocol {enabled, trusted_networks}."""
    proxy = {"enabled": True, "trustedNetworks": ["10.0.0.0/8", "fd00::/8"], "timeout": 3}
    config = render({"gateway": {"proxyProtocol": proxy}}).gateway_config()
    assert config["listen"]["proxy_protocol"] == {
        "enabled": True,
        "trusted_networks": ["10.0.0.0/8", "fd00::/8"],
        "timeout": 3,
    }
    assert render().gateway_config()["listen"]["proxy_protocol"]["enabled"] is False


def test_hpa_replaces_replicas_and_scales_down_slowly(render) -> None:
    """With autoscaling on, the Deployment has no replicas and scale-down is one pod at a time."""
    rendered = render({"gateway": {"autoscaling": {"enabled": True}}})
    assert "replicas" not in rendered.get("Deployment", "-gateway")["spec"]
    down = rendered.get("HorizontalPodAutoscaler")["spec"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]
    assert render().all("HorizontalPodAutoscaler") == []


@pytest.mark.parametrize(
    ("apis", "enabled", "expected"),
    [([], True, 0), ([SERVICE_MONITOR_API], True, 1), ([SERVICE_MONITOR_API], False, 0)],
    ids=["api-absent", "api-present", "api-present-disabled"],
)
def test_servicemonitor_only_when_its_api_exists(render, apis, enabled, expected) -> None:
    """A ServiceMonitor renders only when the cluster serves monitoring.coreos.com/v1."""
    rendered = render({"metrics": {"serviceMonitor": {"enabled": enabled}}}, apis)
    monitors = rendered.all("ServiceMonitor")
    assert len(monitors) == expected
    for sm in monitors:
        assert sm["spec"]["endpoints"][0]["port"] == "http"
        labels = sm["spec"]["selector"]["matchLabels"]
        assert (
            rendered.get("Service", "-gateway-http")["metadata"]["labels"].items() >= labels.items()
        )


@pytest.mark.parametrize(
    ("crds", "count", "keep"),
    [
        ({}, 2, True),
        ({"keep": False}, 2, False),
        ({"enabled": False}, 0, None),
    ],
    ids=["default-keep", "no-keep", "disabled"],
)
def test_crd_is_templated_behind_crds_enabled_and_kept(render, crds, count, keep) -> None:
    """The TLSPolicy and ClusterTLSPolicy CRDs render when crds.enabled, annotated keep when
    crds.keep."""
    found = render({"crds": crds}).all("CustomResourceDefinition")
    assert len(found) == count
    names = sorted(crd["metadata"]["name"] for crd in found)
    assert names == ["clustertlspolicies.mxgate.io", "tlspolicies.mxgate.io"][: len(found)]
    for crd in found:
        annotations = crd["metadata"].get("annotations") or {}
        assert (annotations.get("helm.sh/resource-policy") == "keep") is keep


def test_operator_runs_standalone_in_the_release_namespace_with_least_privilege(render) -> None:
    """One Recreate replica, kopf liveness, and a namespaced Role that never touches Secrets."""
    rendered = render()
    deploy = rendered.get("Deployment", "-operator")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["mxgate-operator"]
    assert {"--standalone", "--namespace=mail"} <= set(container["args"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    rules = rendered.get("Role", "-operator")["rules"]
    resources = {r for rule in rules for r in rule["resources"]}
    assert "secrets" not in resources
    assert "*" not in {v for rule in rules for v in rule["verbs"]}
    assert {
        "tlspolicies",
        "tlspolicies/status",
        "certificates",
        "configmaps",
        "events",
        "pods",
        "leases",  # leader election (issue 18 item 7)
    } == resources
    # Cluster-wide: only reading ClusterTLSPolicies and writing their status (issue 18 item 6);
    # creating them stays with cluster administrators. Their events go to namespace default.
    (cluster_role,) = rendered.all("ClusterRole")
    assert cluster_role["rules"] == [
        {"apiGroups": ["mxgate.io"], "resources": ["clustertlspolicies"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["mxgate.io"], "resources": ["clustertlspolicies/status"],
         "verbs": ["get", "patch", "update"]},
    ]  # fmt: skip
    (binding,) = rendered.all("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    events = next(r for r in rendered.all("Role") if r["metadata"]["namespace"] == "default")
    assert events["rules"] == [
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}
    ]
    assert render({"operator": {"clusterTLSPolicies": False}}).all("ClusterRole") == []


@pytest.mark.parametrize("action", ["Warn", "Deny"])
def test_admission_policy_warns_on_require_for_public_mx_or_denies(render, action) -> None:
    """The binding's action is Warn by default and Deny when asked; scoped to the namespace."""
    rendered = render({"admissionPolicy": {"action": action}})
    policy = rendered.get("ValidatingAdmissionPolicy")
    binding = rendered.get("ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == [action]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": "mail"}
    (validation,) = policy["spec"]["validations"]
    assert "require" in validation["expression"]
    assert "public-mx" in validation["expression"]
    assert "RFC 3207" in validation["messageExpression"]
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["tlspolicies", "clustertlspolicies"]


@pytest.mark.parametrize(
    "operator",
    [{"clusterTLSPolicies": False}, {"enabled": False}],
    ids=["floors-off", "operator-off"],
)
def test_admission_policy_checks_cluster_policies_only_where_floors_are_rendered(
    render, operator
) -> None:
    """A release that does not render ClusterTLSPolicies into its gateways leaves them alone:
    its binding would otherwise judge every one (a namespaceSelector never skips them)."""
    policy = render({"operator": operator}).get("ValidatingAdmissionPolicy")
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["tlspolicies"]


def test_network_policies_open_smtp_and_close_the_rest(render) -> None:
    """Gateway: SMTP from anyone, public HTTP from anyone (mtaSts.ingress.from empty), admin
    HTTP from the operator, egress to upstream ports."""
    rendered = render(
        {"gateway": {"upstreams": [{"address": "a.svc:25"}, {"address": "[::1]:10025"}]}}
    )
    gw = rendered.get("NetworkPolicy", "-gateway")["spec"]
    smtp, public, http = gw["ingress"]
    assert "from" not in smtp
    assert smtp["ports"][0]["port"] == "smtp"
    assert "from" not in public
    assert public["ports"] == [{"port": "public", "protocol": "TCP"}]
    assert http["ports"][0]["port"] == "http"
    assert (
        http["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    )
    egress_ports = {p["port"] for rule in gw["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 25, 10025}
    op = rendered.get("NetworkPolicy", "-operator")["spec"]
    # The operator's only ingress: its /metrics port, from the monitoring peers.
    assert op["ingress"] == [
        {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": [{"namespaceSelector": {}}]}
    ]
    assert op["policyTypes"] == ["Ingress", "Egress"]
    closed = render({"operator": {"metrics": {"port": 0}}})
    assert closed.get("NetworkPolicy", "-operator")["spec"]["ingress"] == []


def test_operator_gets_the_certificate_allowlist_and_a_metrics_port(render) -> None:
    """The chart declares what TLSPolicies may request (issue 18 item 3): Issuer/* and the
    gateway hostname by default; the operator's /metrics port is declared and scraped."""
    env = {
        e["name"]: e.get("value")
        for e in render({}).get("Deployment", "-operator")["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert env["MXGATE_ALLOWED_ISSUERS"] == "Issuer/*"
    assert env["MXGATE_ALLOWED_DNS_NAMES"].split(",")[0]  # gateway.hostname first
    assert env["MXGATE_MIN_CERTIFICATE_DURATION"] == "24h"
    assert env["MXGATE_METRICS_ADDRESS"] == "0.0.0.0:9090"
    values = {
        "operator": {
            "certificates": {
                "allowedIssuers": ["ClusterIssuer/letsencrypt"],
                "allowedDNSNames": ["*.mx.example.com"],
            }
        }
    }
    env = {
        e["name"]: e.get("value")
        for e in render(values).get("Deployment", "-operator")["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert env["MXGATE_ALLOWED_ISSUERS"] == "ClusterIssuer/letsencrypt"
    assert env["MXGATE_ALLOWED_DNS_NAMES"].endswith(",*.mx.example.com")


def test_mta_sts_ingress_exposes_only_the_policy_path_per_domain(render) -> None:
    """mta-sts.<domain> hosts route exactly the policy path, and /tlsrpt with TLS-RPT intake."""
    ingress = {"enabled": True, "clusterIssuer": "letsencrypt"}
    rendered = render(
        {
            "gateway": {"domains": ["example.com", "example.org"]},
            "mtaSts": {"ingress": ingress, "tlsRpt": {"enabled": True}},
        }
    )
    ing = rendered.get("Ingress", "-mta-sts")
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    hosts = ["mta-sts.example.com", "mta-sts.example.org"]
    assert ing["spec"]["tls"][0]["hosts"] == hosts
    assert [r["host"] for r in ing["spec"]["rules"]] == hosts
    for rule in ing["spec"]["rules"]:
        paths = rule["http"]["paths"]
        assert [(p["path"], p["pathType"]) for p in paths] == [
            ("/.well-known/mta-sts.txt", "Exact"),
            ("/tlsrpt", "Exact"),
        ]
        assert {p["backend"]["service"]["name"] for p in paths} == {"mx-mxgate-gateway-public"}
        assert {p["backend"]["service"]["port"]["name"] for p in paths} == {"public"}
    assert render().all("Ingress") == []
    assert rendered.gateway_config()["mta_sts"]["tlsrpt"]["enabled"] is True
    assert "mta_sts" not in render().gateway_config()


@pytest.mark.parametrize(
    "gateway_values",
    [
        {"proxyProtocol": {"enabled": True, "trustedNetworks": ["10.0.0.0/8"]}},
        {"listenAddress": "::"},
        {"log": {"level": "debug"}},
        {"tls": {"minVersion": "1.3"}},
        {"tls": {"enabled": False}},
        {"tls": {"handshakeTimeout": 10}},
        {"policy": {"mode": "audit"}},
        {"limits": {"maxRecipients": 500}},
        {"domains": ["example.com", "example.org"]},
        {"smtp": {"banner": "ESMTP hi"}},
    ],
    ids=["proxy", "listen-address", "log", "tls-version", "tls-off", "tls-handshake",
         "policy-mode", "limits", "domains", "banner"],
)  # fmt: skip
def test_pods_roll_exactly_when_the_gateway_cannot_reload_the_change(
    render, gateway_values
) -> None:
    """The restart checksum changes iff the gateway's restart_required() names a changed field."""

    def checksum_and_config(rendered):
        pod = rendered.get("Deployment", "-gateway")["spec"]["template"]
        config = validate(Config, rendered.gateway_config(), "chart")
        return pod["metadata"]["annotations"]["checksum/restart-settings"], config

    before, old = checksum_and_config(render())
    after, new = checksum_and_config(render({"gateway": gateway_values}))
    assert (before != after) == bool(restart_required(old, new))


def test_http_port_closed_when_no_peer_is_allowed(render) -> None:
    """Without the operator and with httpFrom empty, no rule admits anyone to port 8025
    (the public port 8026 has its own rule)."""
    rendered = render(
        {"operator": {"enabled": False}, "gateway": {"networkPolicy": {"httpFrom": []}}}
    )
    ingress = rendered.get("NetworkPolicy", "-gateway")["spec"]["ingress"]
    assert [rule["ports"][0]["port"] for rule in ingress] == ["smtp", "public"]


MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
INGRESS_NGINX = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
}


def _rules_by_port(rendered) -> dict[str, list[dict]]:
    rules: dict[str, list[dict]] = {}
    for rule in rendered.get("NetworkPolicy", "-gateway")["spec"]["ingress"]:
        for port in rule["ports"]:
            rules.setdefault(port["port"], []).append(rule)
    return rules


def test_narrow_http_from_does_not_block_mta_sts(render) -> None:
    """Issue 16.6: httpFrom narrowed to monitoring still lets the ingress controller reach the
    port the MTA-STS Ingress routes to, and only that port; the admin port (/report) is not
    opened to the ingress controller."""
    rendered = render(
        {
            "gateway": {"networkPolicy": {"httpFrom": [MONITORING]}},
            "mtaSts": {"ingress": {"enabled": True, "from": [INGRESS_NGINX]}},
        }
    )
    backend_ports = {
        p["backend"]["service"]["port"]["name"]
        for rule in rendered.get("Ingress", "-mta-sts")["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    service = rendered.get("Service", "-gateway-public")["spec"]["ports"]
    target = {p["targetPort"] for p in service if p["name"] in backend_ports}
    rules = _rules_by_port(rendered)
    assert target == {"public"}
    assert [r.get("from") for r in rules["public"]] == [[INGRESS_NGINX]]
    (admin,) = rules["http"]
    assert INGRESS_NGINX not in admin["from"]
    assert MONITORING in admin["from"]


def test_report_is_not_open_to_the_whole_cluster_by_default(render) -> None:
    """Issue 16.6: by default the admin port (/report: sender data) admits only the operator,
    never every namespace; the public port admits anyone (it serves only public data)."""
    rules = _rules_by_port(render())
    (admin,) = rules["http"]
    assert {"namespaceSelector": {}} not in admin["from"]
    assert all(set(peer) == {"podSelector"} for peer in admin["from"])
    assert [r.get("from") for r in rules["public"]] == [None]
