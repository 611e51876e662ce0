"""Process settings for the operator, read once at start from the environment.

Names and intervals only; policy comes from TLSPolicies, never from here. This
module must not talk to the API or read files other than its environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from mxgate_operator.render.allowed import CertificateRules, MTASTSRules
from mxgate_operator.render.gateway_config import DEFAULT_BUDGET_BYTES, Budget


def _selector(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator names things and where it reads gateway reports.

    prefix: names ``<prefix>-<listener>`` (Certificate) and ``<prefix>-<listener>-tls``
        (its Secret), except that the gateway's own listener (``gateway_listener``) writes
        ``tls_secret`` when set: the Secret the chart's gateway mounts.
    policy_configmap: the ConfigMap (key ``policy.json``) the gateway mounts.
    report_urls: fixed ``/report`` URLs (out-of-cluster tests); when empty the operator
        finds gateway pods by ``gateway_selector`` and reads ``http://<podIP>:<port>/report``.
    report_interval: seconds between readings of the gateways' reports.
    namespace: the home namespace (``MXGATE_NAMESPACE``): reconciled at start even
        without TLSPolicies, so its empty policy ConfigMap exists for the gateway.
    """

    prefix: str = "mxgate"
    namespace: str = ""
    policy_configmap: str = ""
    tls_secret: str = ""
    gateway_listener: str = "public-mx"
    report_urls: tuple[str, ...] = ()
    gateway_selector: Mapping[str, str] = field(
        default_factory=lambda: {
            "app.kubernetes.io/name": "mxgate",
            "app.kubernetes.io/component": "gateway",
        }
    )
    gateway_port: int = 8025
    report_interval: float = 60.0
    report_timeout: float = 5.0
    kubeconfig: str | None = None
    policy_budget_bytes: int = DEFAULT_BUDGET_BYTES
    metrics_address: str = ""
    certificate_rules: CertificateRules = field(default_factory=CertificateRules)
    gateway_domains: tuple[str, ...] = ()

    @property
    def mta_sts_rules(self) -> MTASTSRules:
        """MTA-STS only for the gateway's domains, mx only among its allowed names."""
        return MTASTSRules(self.gateway_domains, self.certificate_rules.dns_names)

    log_format: str = "json"
    # Render ClusterTLSPolicies as floors (needs the chart's ClusterRole to read them).
    cluster_policies: bool = True

    def unrestricted(self) -> tuple[str, ...]:
        """The allowlist settings left empty, which therefore let any value through.

        The chart always sets them; an operator run by hand may not, and should say so.
        """
        rules = self.certificate_rules
        empty = {
            "MXGATE_ALLOWED_ISSUERS": not rules.issuers,
            "MXGATE_ALLOWED_DNS_NAMES": not rules.dns_names,
            "MXGATE_MIN_CERTIFICATE_DURATION": not rules.min_duration,
            "MXGATE_GATEWAY_DOMAINS": not self.gateway_domains,
        }
        return tuple(name for name, unset in empty.items() if unset)

    @property
    def budget(self) -> Budget:
        """What one rendered policy document may hold (``MXGATE_POLICY_BUDGET_BYTES``)."""
        return Budget(bytes=self.policy_budget_bytes)

    @property
    def configmap_name(self) -> str:
        return self.policy_configmap or f"{self.prefix}-policy"

    def secret_names(self) -> dict[str, str]:
        """Secret-name overrides by listener (the chart's gateway Secret)."""
        return {self.gateway_listener: self.tls_secret} if self.tls_secret else {}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        """Read ``MXGATE_*`` variables (documented in docs/kubernetes.md); unset means default."""
        e = os.environ if env is None else env
        base = cls()
        configmap = e.get("MXGATE_POLICY_CONFIGMAP", "")
        prefix = e.get("MXGATE_PREFIX") or configmap.removesuffix("-policy") or base.prefix
        return cls(
            prefix=prefix,
            namespace=e.get("MXGATE_NAMESPACE", ""),
            policy_configmap=configmap,
            tls_secret=e.get("MXGATE_TLS_SECRET", ""),
            gateway_listener=e.get("MXGATE_GATEWAY_LISTENER", base.gateway_listener),
            report_urls=tuple(u for u in e.get("MXGATE_REPORT_URLS", "").split(",") if u.strip()),
            gateway_selector=_selector(e["MXGATE_GATEWAY_SELECTOR"])
            if "MXGATE_GATEWAY_SELECTOR" in e
            else base.gateway_selector,
            gateway_port=int(e.get("MXGATE_GATEWAY_HTTP_PORT", base.gateway_port)),
            report_interval=float(e.get("MXGATE_REPORT_INTERVAL", base.report_interval)),
            report_timeout=float(e.get("MXGATE_REPORT_TIMEOUT", base.report_timeout)),
            kubeconfig=e.get("MXGATE_KUBECONFIG") or None,
            metrics_address=e.get("MXGATE_METRICS_ADDRESS", ""),
            gateway_domains=tuple(
                d.strip().lower().rstrip(".")
                for d in e.get("MXGATE_GATEWAY_DOMAINS", "").split(",")
                if d.strip()
            ),
            certificate_rules=CertificateRules.parse(
                e.get("MXGATE_ALLOWED_ISSUERS", ""),
                e.get("MXGATE_ALLOWED_DNS_NAMES", ""),
                e.get("MXGATE_MIN_CERTIFICATE_DURATION", ""),
            ),
            log_format=e.get("MXGATE_LOG_FORMAT") or base.log_format,
            policy_budget_bytes=int(
                e.get("MXGATE_POLICY_BUDGET_BYTES") or base.policy_budget_bytes
            ),
            cluster_policies=e.get("MXGATE_CLUSTER_POLICIES", "true").strip().lower()
            not in ("false", "0", "no", "off"),
        )


# Every MXGATE_* variable ``from_env`` reads, for ``mxgate-operator --help`` (a test keeps
# this table and ``from_env`` in step).
ENVIRONMENT: tuple[tuple[str, str, str], ...] = (
    ("MXGATE_NAMESPACE", "", "home namespace: reconciled at start, its ConfigMap always exists"),
    ("MXGATE_PREFIX", "mxgate", "name prefix of Certificates and Secrets"),
    ("MXGATE_POLICY_CONFIGMAP", "<prefix>-policy", "the ConfigMap (policy.json) gateways mount"),
    ("MXGATE_TLS_SECRET", "", "Secret the gateway's own listener certificate is written to"),
    ("MXGATE_GATEWAY_LISTENER", "public-mx", "the listener the gateway serves"),
    ("MXGATE_REPORT_URLS", "", "fixed comma-separated /report URLs (else gateway pods)"),
    ("MXGATE_GATEWAY_SELECTOR", "app.kubernetes.io/name=mxgate,...", "gateway pod labels"),
    ("MXGATE_GATEWAY_HTTP_PORT", "8025", "gateway pods' admin HTTP port"),
    ("MXGATE_REPORT_INTERVAL", "60", "seconds between reads of the gateways' /report"),
    ("MXGATE_REPORT_TIMEOUT", "5", "seconds per /report read"),
    ("MXGATE_KUBECONFIG", "", "kubeconfig file (else in-cluster or $KUBECONFIG)"),
    ("MXGATE_POLICY_BUDGET_BYTES", str(DEFAULT_BUDGET_BYTES), "max bytes of policy.json"),
    ("MXGATE_METRICS_ADDRESS", "", "host:port for GET /metrics; empty means off"),
    ("MXGATE_LOG_FORMAT", "json", "json or console"),
    ("MXGATE_ALLOWED_ISSUERS", "", "Kind/name issuers policies may use (empty: any)"),
    ("MXGATE_ALLOWED_DNS_NAMES", "", "names or *.suffix certificates may carry (empty: any)"),
    ("MXGATE_MIN_CERTIFICATE_DURATION", "", "shortest certificate duration, e.g. 720h"),
    ("MXGATE_GATEWAY_DOMAINS", "", "only these domains get MTA-STS (empty: any)"),
    ("MXGATE_CLUSTER_POLICIES", "true", "render ClusterTLSPolicies as floors (false: ignore)"),
)


def help_text() -> str:
    """The environment section of ``mxgate-operator --help``."""
    lines = ["Settings (environment variables, read once at start):"]
    for name, default, meaning in ENVIRONMENT:
        lines.append(f"  {name:<28} {meaning} (default: {default or 'empty'})")
    return "\n".join(lines)
