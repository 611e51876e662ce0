"""The chart's PrometheusRule: rendered only where its API exists, valid for promtool, every
alert fires on the synthetic series that mean its trouble and stays quiet on healthy ones
(`promtool test rules`), refers only to metrics a gateway exports, and has a runbook entry
in docs/operations.md. promtool comes from Debian's `prometheus` package
(scripts/install-system-deps.sh).
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from mxgate_gateway.metrics import GatewayMetrics
from mxgate_operator.metrics import REGISTRY as OPERATOR_REGISTRY

REPO = Path(__file__).resolve().parents[2]
RULE_API = "monitoring.coreos.com/v1/PrometheusRule"
POD = 'namespace="mail",pod="mx-mxgate-gateway-7c9f-abcde"'
OTHER_RELEASE = 'namespace="mail",pod="other-gateway-7c9f-abcde"'
OPERATOR = 'namespace="mail",pod="mx-mxgate-operator-5d4f-abcde"'
OTHER_OPERATOR = 'namespace="mail",pod="other-operator-5d4f-abcde"'
RECONCILES = "mxgate_operator_reconciles_total"
LAST_SUCCESS = "mxgate_operator_last_successful_reconcile_timestamp_seconds"
ALERTS = {
    "MxgateCertificateExpiringSoon",
    "MxgateCertificateExpiryCritical",
    "MxgateUpstreamBreakerOpen",
    "MxgateUpstreamsDown",
    "MxgateTempfailRatioHigh",
    "MxgateConfigReloadFailing",
    "MxgateNoReadyGateways",
    "MxgateWouldRefuseShareJumped",
    "MxgateUpstreamDown",
    "MxgateOperatorReconcileErrors",
    "MxgateOperatorReconcileStale",
}


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool missing: run scripts/install-system-deps.sh (Debian prometheus)"
    return found


def _series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


def _fires(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": x} for x in labels]}


def _quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


WARN = {"severity": "warning", "namespace": "mail"}
CRIT = {"severity": "critical", "namespace": "mail"}

# (series, alert checks): one promtool test case each, read like the runbook.
CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = {
    "certificate-10-days-left-warns-not-pages": (
        [_series("mxgate_tls_certificate_not_after_seconds", POD, "864000x120")],
        [
            _quiet("MxgateCertificateExpiringSoon", "30m"),  # `for: 1h`
            _fires("MxgateCertificateExpiringSoon", "90m", WARN),
            _quiet("MxgateCertificateExpiryCritical", "90m"),
        ],
    ),
    "certificate-2-days-left-pages": (
        [_series("mxgate_tls_certificate_not_after_seconds", POD, "172800x10")],
        [_fires("MxgateCertificateExpiryCritical", "5m", CRIT)],
    ),
    "no-certificate-loaded-is-not-expiry": (
        [_series("mxgate_tls_certificate_not_after_seconds", POD, "0x120")],
        [
            _quiet("MxgateCertificateExpiringSoon", "90m"),
            _quiet("MxgateCertificateExpiryCritical", "90m"),
        ],
    ),
    "breaker-opened": (
        [
            _series(
                "mxgate_upstream_breaker_open_total",
                f'{POD},upstream="mx1.internal:25"',
                "0 0 0 1x40",
            ),
            _series(
                "mxgate_upstream_breaker_open_total", f'{POD},upstream="mx2.internal:25"', "0x40"
            ),
        ],
        [
            _fires("MxgateUpstreamBreakerOpen", "5m", WARN | {"upstream": "mx1.internal:25"}),
            _quiet("MxgateUpstreamBreakerOpen", "30m"),
        ],
    ),
    "every-upstream-failing": (
        [
            _series("mxgate_upstream_failures_total", f'{POD},kind="connect"', "0+5x40"),
            _series("mxgate_messages_total", f'{POD},outcome="relayed",tls="TLSv1.3"', "100x40"),
            _series("mxgate_messages_total", f'{POD},outcome="tempfailed",tls="TLSv1.3"', "0+5x40"),
        ],
        [
            _quiet("MxgateUpstreamsDown", "5m"),  # `for: 10m`
            _fires("MxgateUpstreamsDown", "20m", CRIT),
            _fires("MxgateTempfailRatioHigh", "30m", WARN),
        ],
    ),
    "one-upstream-failing-failover-delivers": (
        [
            _series("mxgate_upstream_failures_total", f'{POD},kind="connect"', "0+5x40"),
            _series("mxgate_messages_total", f'{POD},outcome="relayed",tls="TLSv1.3"', "0+95x40"),
        ],
        [_quiet("MxgateUpstreamsDown", "30m"), _quiet("MxgateTempfailRatioHigh", "30m")],
    ),
    "tempfail-ratio-high": (
        [
            _series("mxgate_messages_total", f'{POD},outcome="relayed",tls="none"', "0+90x40"),
            _series("mxgate_messages_total", f'{POD},outcome="tempfailed",tls="none"', "0+10x40"),
        ],
        [_quiet("MxgateTempfailRatioHigh", "5m"), _fires("MxgateTempfailRatioHigh", "30m", WARN)],
    ),
    "tempfail-ratio-normal": (
        [
            _series("mxgate_messages_total", f'{POD},outcome="relayed",tls="none"', "0+99x40"),
            _series("mxgate_messages_total", f'{POD},outcome="tempfailed",tls="none"', "0+1x40"),
        ],
        [_quiet("MxgateTempfailRatioHigh", "30m")],
    ),
    "another-release-in-the-namespace-is-not-ours": (
        [
            _series(
                "mxgate_messages_total",
                f'{OTHER_RELEASE},outcome="tempfailed",tls="none"',
                "0+10x40",
            ),
            _series("mxgate_tls_certificate_not_after_seconds", OTHER_RELEASE, "172800x10"),
            _series("up", POD, "1x40"),
        ],
        [_quiet("MxgateTempfailRatioHigh", "30m"), _quiet("MxgateCertificateExpiryCritical", "5m")],
    ),
    "config-reload-refused": (
        [_series("mxgate_config_reload_total", f'{POD},result="failure"', "0 0 0 1x40")],
        [
            _fires("MxgateConfigReloadFailing", "5m", WARN),
            _quiet("MxgateConfigReloadFailing", "30m"),
        ],
    ),
    "no-available-replica": (
        [
            _series(
                "kube_deployment_status_replicas_available",
                'namespace="mail",deployment="mx-mxgate-gateway"',
                "0x40",
            ),
            _series("up", POD, "1x40"),
        ],
        [_fires("MxgateNoReadyGateways", "20m", CRIT)],
    ),
    "no-gateway-scraped": (
        [_series("up", POD, "0x40")],
        [
            _quiet("MxgateNoReadyGateways", "5m"),
            _fires("MxgateNoReadyGateways", "20m", {"severity": "critical"}),
        ],
    ),
    "gateways-ready": (
        [
            _series(
                "kube_deployment_status_replicas_available",
                'namespace="mail",deployment="mx-mxgate-gateway"',
                "2x40",
            ),
            _series("up", POD, "1x40"),
        ],
        [_quiet("MxgateNoReadyGateways", "30m")],
    ),
    "one-upstream-down-of-two": (
        [
            _series("mxgate_upstream_up", f'{POD},upstream="mx1.internal:25"', "0x40"),
            _series("mxgate_upstream_up", f'{POD},upstream="mx2.internal:25"', "1x40"),
        ],
        [
            _quiet("MxgateUpstreamDown", "5m"),  # `for: 10m`
            _fires("MxgateUpstreamDown", "20m", WARN | {"upstream": "mx1.internal:25"}),
        ],
    ),
    "upstreams-up": (
        [
            _series("mxgate_upstream_up", f'{POD},upstream="mx1.internal:25"', "1x40"),
            _series("mxgate_upstream_up", f'{OTHER_RELEASE},upstream="mx1.internal:25"', "0x40"),
        ],
        [_quiet("MxgateUpstreamDown", "30m")],
    ),
    # promtool's clock starts at 0: the last-success gauge holds the sample time it was set.
    "operator-reconciles-keep-failing": (
        [
            _series(RECONCILES, f'{OPERATOR},result="error"', "0+1x40"),
            _series(RECONCILES, f'{OPERATOR},result="success"', "0x40"),
            _series(LAST_SUCCESS, OPERATOR, "0x40"),  # never succeeded since start
        ],
        [
            _quiet("MxgateOperatorReconcileErrors", "5m"),  # `for: 10m`
            _fires("MxgateOperatorReconcileErrors", "20m", WARN),
            _quiet("MxgateOperatorReconcileStale", "5m"),
            _fires("MxgateOperatorReconcileStale", "20m", WARN),
        ],
    ),
    "operator-stopped-succeeding": (
        [_series(LAST_SUCCESS, OPERATOR, "0+60x5 300x35")],  # last success at minute 5
        [
            _quiet("MxgateOperatorReconcileStale", "15m"),  # 5 report intervals + `for`
            _fires("MxgateOperatorReconcileStale", "30m", WARN),
            _quiet("MxgateOperatorReconcileErrors", "30m"),
        ],
    ),
    "operator-one-transient-error-then-healthy": (
        [
            _series(RECONCILES, f'{OPERATOR},result="error"', "0 0 0 1x40"),
            _series(RECONCILES, f'{OPERATOR},result="success"', "0+1x40"),
            _series(LAST_SUCCESS, OPERATOR, "0+60x40"),
        ],
        [
            _quiet("MxgateOperatorReconcileErrors", "12m"),
            _quiet("MxgateOperatorReconcileErrors", "30m"),
            _quiet("MxgateOperatorReconcileStale", "30m"),
        ],
    ),
    "another-release-operator-is-not-ours": (
        [
            _series(RECONCILES, f'{OTHER_OPERATOR},result="error"', "0+1x40"),
            _series(LAST_SUCCESS, OTHER_OPERATOR, "0x40"),
            _series(LAST_SUCCESS, OPERATOR, "0+60x40"),
        ],
        [
            _quiet("MxgateOperatorReconcileErrors", "30m"),
            _quiet("MxgateOperatorReconcileStale", "30m"),
        ],
    ),
}

# Two days at 10-minute samples: yesterday 2 of 102 decisions per step would refuse (2%),
# today the tempo of would_refuse rises to 10 of 110 (9%): more than twice, and above 1%.
DAY = 144
JUMP = [
    _series(
        "mxgate_policy_decisions_total",
        f'{POD},action="would_refuse",mode="audit",rule="partners"',
        f"0+2x{DAY} {2 * DAY + 10}+10x{DAY}",
    ),
    _series(
        "mxgate_policy_decisions_total",
        f'{POD},action="accept",mode="opportunistic",rule="(default)"',
        f"0+100x{2 * DAY}",
    ),
]
STEADY = [JUMP[0] | {"values": f"0+2x{2 * DAY}"}, JUMP[1]]


@pytest.fixture
def rules(render) -> dict[str, Any]:
    """The rendered PrometheusRule's spec (the Prometheus rule-file shape)."""
    spec: dict[str, Any] = render({}, [RULE_API]).get("PrometheusRule", "-alerts")["spec"]
    return spec


@pytest.mark.parametrize(
    ("apis", "enabled", "expected"),
    [([], True, 0), ([RULE_API], True, 1), ([RULE_API], False, 0)],
    ids=["api-absent", "api-present", "api-present-disabled"],
)
def test_prometheusrule_only_when_its_api_exists(render, apis, enabled, expected) -> None:
    """Gated like the ServiceMonitor: the API must be served and the value on."""
    rendered = render({"metrics": {"prometheusRule": {"enabled": enabled}}}, apis)
    assert len(rendered.all("PrometheusRule")) == expected


def test_operator_alerts_only_with_the_operator(render) -> None:
    """``operator.enabled: false``: no operator metrics exist, so no operator alerts."""
    spec = render({"operator": {"enabled": False}}, [RULE_API]).get("PrometheusRule", "-alerts")
    names = {r["alert"] for g in spec["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert names == ALERTS - {"MxgateOperatorReconcileErrors", "MxgateOperatorReconcileStale"}


def test_rules_pass_promtool_check(rules, tmp_path: Path) -> None:
    """`promtool check rules` accepts the file (expressions and annotation templates)."""
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    done = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert names == ALERTS


def _run_promtool_tests(rules: dict[str, Any], tests: list[dict[str, Any]], tmp: Path) -> None:
    # Annotations are prose: promtool would compare them verbatim; the logic is what we test.
    bare = copy.deepcopy(rules)
    for group in bare["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp / "rules.yaml").write_text(yaml.safe_dump(bare), encoding="utf-8")
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp / "tests.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    done = subprocess.run(
        [_promtool(), "test", "rules", "tests.yaml"],
        cwd=tmp,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def test_each_alert_fires_on_its_trouble_and_not_on_health(rules, tmp_path: Path) -> None:
    """promtool test rules: every case above, one promtool test group each."""
    tests = [
        {"name": name, "interval": "1m", "input_series": series, "alert_rule_test": checks}
        for name, (series, checks) in CASES.items()
    ]
    tests.append(
        {
            "name": "would-refuse-share-jumped",
            "interval": "10m",
            "input_series": JUMP,
            "alert_rule_test": [
                _quiet("MxgateWouldRefuseShareJumped", "20h"),
                _fires(
                    "MxgateWouldRefuseShareJumped", "47h", {"severity": "info", "namespace": "mail"}
                ),
            ],
        }
    )
    tests.append(
        {
            "name": "would-refuse-share-steady",
            "interval": "10m",
            "input_series": STEADY,
            "alert_rule_test": [_quiet("MxgateWouldRefuseShareJumped", "47h")],
        }
    )
    covered = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert covered == ALERTS, "every alert has a case where it fires"
    _run_promtool_tests(rules, tests, tmp_path)


def test_promtool_catches_a_broken_threshold(render, tmp_path: Path) -> None:
    """The harness can fail: with the tempfail threshold at 50% the 10% case stays quiet."""
    spec = render({"metrics": {"prometheusRule": {"tempfailRatio": 0.5}}}, [RULE_API]).get(
        "PrometheusRule", "-alerts"
    )["spec"]
    series, checks = CASES["tempfail-ratio-high"]
    tests = [{"name": "x", "interval": "1m", "input_series": series, "alert_rule_test": checks}]
    with pytest.raises(AssertionError, match="MxgateTempfailRatioHigh"):
        _run_promtool_tests(spec, tests, tmp_path)


def test_rules_use_only_metrics_a_gateway_exports(rules) -> None:
    """Every mxgate_* name in an expression is in a gateway's (or the operator's) /metrics."""
    registry = CollectorRegistry()
    GatewayMetrics(registry)
    text = generate_latest(registry) + generate_latest(OPERATOR_REGISTRY)
    exported = set(re.findall(r"^# TYPE (\w+) ", text.decode(), re.M))
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    used = set(re.findall(r"\b(mxgate_\w+)\{", exprs))
    assert used
    assert used <= exported | {f"{n}_total" for n in exported}, used - exported


def test_every_alert_has_a_runbook_in_the_docs(rules) -> None:
    """docs/operations.md "Alerts and runbooks" has one entry per alert, headed by its name."""
    page = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    section = page.split("\n## Alerts and runbooks", 1)[1].split("\n## ", 1)[0]
    headed = set(re.findall(r"^### (Mxgate\w+)$", section, re.M))
    assert headed == ALERTS
