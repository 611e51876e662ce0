"""What a TLSPolicy may ask cert-manager for (issue 18 item 3): the chart's allowlist."""

from __future__ import annotations

from typing import Any

import pytest

from mxgate_operator.render.allowed import CertificateRules, name_allowed
from mxgate_operator.render.gateway_config import PolicyInput, Reason, render_policies
from mxgate_operator.settings import OperatorSettings
from mxgate_operator.spec import parse_policy

RULES = CertificateRules.parse(
    "ClusterIssuer/letsencrypt, Issuer/*", "mx1.example.com,*.mx.example.com", "720h"
)


def cert_policy(**cert: Any) -> PolicyInput:
    certificate = {
        "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
        "dnsNames": ["mx1.example.com"],
        **cert,
    }
    spec = {"mode": "audit", "scope": {"senderDomains": ["a.test"]}, "certificate": certificate}
    return PolicyInput("mail", "p", "uid", 1, parse_policy("p", spec))


@pytest.mark.parametrize(
    ("cert", "refused"),
    [
        ({}, None),
        ({"issuerRef": {"name": "local", "kind": "Issuer"}}, None),
        ({"dnsNames": ["a.mx.example.com", "mx1.example.com"]}, None),
        ({"duration": "720h"}, None),
        ({"issuerRef": {"name": "prod", "kind": "ClusterIssuer"}}, "issuerRef"),
        (
            {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "evil.io"}},
            "issuerRef",
        ),
        ({"dnsNames": ["mx.other-tenant.example"]}, "dnsNames mx.other-tenant.example"),
        ({"dnsNames": ["localhost"]}, "dnsNames localhost"),
        ({"dnsNames": ["a.b.mx.example.com"]}, "dnsNames"),
        ({"duration": "1h"}, "duration 1h"),
        # 720h minimum: a default renewal every 480h; renewBefore must not re-issue faster.
        ({"duration": "720h", "renewBefore": "240h"}, None),
        ({"renewBefore": "1680h"}, None),
        ({"duration": "2160h", "renewBefore": "2159h"}, "renewBefore 2159h re-issues every 1h"),
        ({"duration": "720h", "renewBefore": "241h"}, "at most one issuance per 480h"),
    ],
)
def test_only_what_the_chart_allows_is_requested(cert: dict[str, Any], refused: str | None) -> None:
    """Issuers, names and duration outside the allowlist: Accepted=False CertificateNotAllowed,
    and nothing is rendered for that policy."""
    result = render_policies([cert_policy(**cert)], certificates=RULES)
    admission = result.admission("mail/p")
    if refused is None:
        assert admission.accepted
    else:
        assert admission.reason is Reason.CERTIFICATE_NOT_ALLOWED
        assert refused in admission.message
        assert result.accepted == ()


def test_without_an_allowlist_nothing_is_restricted() -> None:
    """Out of the chart (no MXGATE_ALLOWED_*), any valid request passes."""
    wild = cert_policy(issuerRef={"name": "prod", "kind": "ClusterIssuer"}, dnsNames=["x.test"])
    assert render_policies([wild]).admission("mail/p").accepted


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("mx1.example.com", True),
        ("MX1.example.com", True),
        ("b.mx.example.com", True),
        ("mx.example.com", False),
        ("a.b.mx.example.com", False),
        ("example.com", False),
    ],
)
def test_name_patterns(name: str, ok: bool) -> None:
    """Exact names, and ``*.suffix`` covering exactly one more label (as in TLS)."""
    assert name_allowed(name, ("mx1.example.com", "*.mx.example.com")) is ok


def test_settings_read_the_allowlist_from_the_environment() -> None:
    """The chart's values arrive as MXGATE_ALLOWED_ISSUERS / _DNS_NAMES / MIN duration."""
    s = OperatorSettings.from_env(
        {
            "MXGATE_ALLOWED_ISSUERS": "ClusterIssuer/letsencrypt",
            "MXGATE_ALLOWED_DNS_NAMES": "mx1.example.com",
            "MXGATE_MIN_CERTIFICATE_DURATION": "24h",
        }
    )
    assert s.certificate_rules == CertificateRules(
        ("clusterissuer/letsencrypt",), ("mx1.example.com",), 86400
    )
