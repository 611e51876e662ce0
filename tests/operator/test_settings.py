"""Process settings come from the chart's environment; kopf options pass through untouched."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mxgate_operator.app import home_namespace, kopf_args
from mxgate_operator.settings import OperatorSettings


def test_defaults_without_environment() -> None:
    """With no environment the names are mxgate-policy / mxgate-<listener>-tls."""
    s = OperatorSettings.from_env({})
    assert s.configmap_name == "mxgate-policy"
    assert s.secret_names() == {}
    assert s.report_urls == ()
    assert s.gateway_selector["app.kubernetes.io/component"] == "gateway"


def test_chart_environment_is_honoured() -> None:
    """The chart's variables set the ConfigMap, the gateway Secret, selector, port, interval."""
    s = OperatorSettings.from_env(
        {
            "MXGATE_POLICY_CONFIGMAP": "mx-mxgate-policy",
            "MXGATE_TLS_SECRET": "mx-mxgate-tls",
            "MXGATE_GATEWAY_SELECTOR": "app.kubernetes.io/instance=mx, app=gw",
            "MXGATE_GATEWAY_HTTP_PORT": "9025",
            "MXGATE_REPORT_INTERVAL": "15",
            "MXGATE_REPORT_URLS": "http://127.0.0.1:1/report,http://127.0.0.1:2/report",
            "MXGATE_NAMESPACE": "mail",
        }
    )
    assert s.namespace == "mail"
    assert s.configmap_name == "mx-mxgate-policy"
    assert s.prefix == "mx-mxgate"
    assert s.secret_names() == {"public-mx": "mx-mxgate-tls"}
    assert dict(s.gateway_selector) == {"app.kubernetes.io/instance": "mx", "app": "gw"}
    assert (s.gateway_port, s.report_interval) == (9025, 15.0)
    assert len(s.report_urls) == 2


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--standalone"], {}, ["run", "--standalone"]),
        (
            ["--standalone"],
            {"MXGATE_NAMESPACE": "mail"},
            ["run", "--standalone", "--namespace=mail"],
        ),
        (["-n", "x"], {"MXGATE_NAMESPACE": "mail"}, ["run", "-n", "x"]),
        (["--namespace=x", "-v"], {"MXGATE_NAMESPACE": "mail"}, ["run", "--namespace=x", "-v"]),
        (["-A"], {"MXGATE_NAMESPACE": "mail"}, ["run", "-A"]),
    ],
)
def test_kopf_options_pass_through(
    argv: list[str], env: dict[str, str], expected: list[str]
) -> None:
    """Our arguments reach `kopf run` unchanged; a namespace is added only when none is given."""
    assert kopf_args(argv, env) == expected


def test_help_lists_every_mxgate_setting() -> None:
    """`mxgate-operator --help` names every MXGATE_* variable the settings read (issue 16
    item 4), found in the source of ``from_env``, plus kopf's own options."""
    read = set(re.findall(r"MXGATE_[A-Z_]+", inspect.getsource(OperatorSettings.from_env)))
    assert len(read) >= 10
    script = Path(sys.executable).parent / "mxgate-operator"
    done = subprocess.run(
        [str(script), "--help"], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"^  (MXGATE_[A-Z_]+) ", done.stdout, re.MULTILINE))
    assert listed == read
    assert "--standalone" in done.stdout


def test_an_operator_run_by_hand_names_the_allowlists_it_leaves_open() -> None:
    """Empty allowlists let anything through, so the operator names them (a warning at start)."""
    assert OperatorSettings.from_env({}).unrestricted() == (
        "MXGATE_ALLOWED_ISSUERS",
        "MXGATE_ALLOWED_DNS_NAMES",
        "MXGATE_MIN_CERTIFICATE_DURATION",
        "MXGATE_GATEWAY_DOMAINS",
    )
    partly = OperatorSettings.from_env(
        {"MXGATE_ALLOWED_ISSUERS": "Issuer/*", "MXGATE_GATEWAY_DOMAINS": "example.com"}
    )
    assert partly.unrestricted() == ("MXGATE_ALLOWED_DNS_NAMES", "MXGATE_MIN_CERTIFICATE_DURATION")


@pytest.mark.parametrize(
    ("argv", "env", "home"),
    [
        ([], {"MXGATE_NAMESPACE": "mail"}, "mail"),
        (["-n", "other"], {"MXGATE_NAMESPACE": "mail"}, "mail"),
        (["--standalone", "-n", "mail"], {}, "mail"),
        (["--namespace=mail"], {}, "mail"),
        (["--namespace", "mail"], {}, "mail"),
        (["-n", "mail", "-n", "edge"], {}, ""),
        (["-n", "mail-*"], {}, ""),
        (["--all-namespaces"], {}, ""),
        (["-n"], {}, ""),
        ([], {}, ""),
    ],
)
def test_a_hand_run_operator_given_one_namespace_takes_it_as_home(
    argv: list[str], env: dict[str, str], home: str
) -> None:
    """The home namespace holds the Lease, so `mxgate-operator -n mail` run next to the chart's
    operator waits for the release's Lease instead of fighting it (issue 18 item 7)."""
    assert home_namespace(argv, env) == home
