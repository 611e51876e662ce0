"""MTA-STS / TLS-RPT for one TLSPolicy: gateway policies, DNS records, status and conditions.

Uses the gateway's own pure renderer (``mxgate_gateway.mtasts.policy``) so the id in
the published TXT record is the hash of the very text the gateway serves. Pure: no
I/O, no clock, no Kubernetes client; the operator cannot see DNS, so it says what to
publish and when that changed, never that it is published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mxgate_gateway.config.model import MTASTSPolicy
from mxgate_gateway.mtasts.policy import (
    POLICY_PATH,
    pattern_covered_by,
    policy_host,
    policy_id,
    render_policy,
    sts_txt_record,
    tlsrpt_txt_record,
)
from mxgate_operator.spec import TLSPolicySpec

if TYPE_CHECKING:  # certificates imports gateway_config, which imports this module
    from mxgate_operator.render.certificates import CertificatePlan

Condition = tuple[str, str, str]  # (status, reason, message)


@dataclass(frozen=True)
class MTASTSView:
    """What one policy publishes: gateway policies, status.mtaSts, conditions, events."""

    policies: tuple[MTASTSPolicy, ...]
    status: dict[str, Any]
    conditions: dict[str, Condition]
    changed: bool  # the policy id differs from the one in the previous status


def published_domains(spec: TLSPolicySpec) -> tuple[str, ...]:
    """Recipient domains records are published for: sorted, without '*.' entries."""
    return tuple(sorted(d for d in spec.scope.recipient_domains if not d.startswith("*.")))


def gateway_policies(spec: TLSPolicySpec) -> tuple[MTASTSPolicy, ...]:
    """One gateway MTA-STS policy per published domain (empty without ``spec.mtaSts``)."""
    if spec.mta_sts is None:
        return ()
    mts = spec.mta_sts
    return tuple(
        MTASTSPolicy(domain=d, mode=mts.mode, mx=mts.mx, max_age=mts.max_age)
        for d in published_domains(spec)
    )


def mx_coverage(spec: TLSPolicySpec, dns_names: Sequence[str] | None) -> Condition:
    """``MXCoveredByCertificate``: is every mx pattern a name of the listener's certificate?"""
    if spec.mta_sts is None or not spec.mta_sts.mx:
        return "True", "NoMXPatterns", "the MTA-STS policy lists no mx patterns"
    if dns_names is None:
        return (
            "Unknown",
            "NoCertificate",
            "no spec.certificate on this listener: check that the gateway's own certificate"
            " names every mx pattern, or senders in enforce mode will not deliver",
        )
    missing = [p for p in spec.mta_sts.mx if not pattern_covered_by(p, dns_names)]
    if missing:
        return (
            "False",
            "MXNotCovered",
            f"mx patterns not covered by the certificate's dnsNames {sorted(dns_names)}:"
            f" {', '.join(missing)}; senders validating MTA-STS will fail TLS to those hosts",
        )
    return "True", "Covered", "every mx pattern is named by the certificate"


def mtasts_view(
    spec: TLSPolicySpec | None,
    plan: CertificatePlan | None,
    previous: Mapping[str, Any],
) -> MTASTSView | None:
    """Everything MTA-STS for one accepted policy; None when it sets neither field.

    ``plan`` is the listener's Certificate (its dnsNames are what the MX presents);
    ``previous`` is the policy's current status, to tell when the records changed.
    """
    if spec is None or (spec.mta_sts is None and not spec.tlsrpt_rua):
        return None
    if plan is not None:
        dns_names: Sequence[str] | None = plan.spec.dns_names
    else:
        dns_names = spec.certificate.dns_names if spec.certificate else None
    domains = published_domains(spec)
    policies = gateway_policies(spec)
    records: list[dict[str, str]] = []
    status: dict[str, Any] = {"domains": list(domains)}
    id_ = None
    if policies:
        text = render_policy(policies[0])  # the text does not name the domain: one id for all
        id_ = policy_id(text)
        status["policyId"] = id_
        status["mode"] = policies[0].mode.value
        status["policyURLs"] = [f"https://{policy_host(d)}{POLICY_PATH}" for d in domains]
        records += [
            {"name": f"_mta-sts.{d}.", "type": "TXT", "value": sts_txt_record(id_)} for d in domains
        ]
    if spec.tlsrpt_rua:
        value = tlsrpt_txt_record(spec.tlsrpt_rua)
        records += [{"name": f"_smtp._tls.{d}.", "type": "TXT", "value": value} for d in domains]
    status["records"] = records
    prior = previous.get("mtaSts")
    old: Mapping[str, Any] = prior if isinstance(prior, Mapping) else {}
    changed = bool(old) and old.get("records") != records
    listing = "; ".join(f'{r["name"]} TXT "{r["value"]}"' for r in records)
    if changed:
        records_cond: Condition = (
            "True",
            "RecordsChanged",
            f"the records changed (policy id {old.get('policyId')} -> {id_});"
            f" update DNS: {listing}",
        )
    else:
        records_cond = ("True", "RecordsRendered", f"publish in DNS: {listing}")
    conditions = {"MTASTSRecordsRendered": records_cond}
    if spec.mta_sts is not None:
        conditions["MXCoveredByCertificate"] = mx_coverage(spec, dns_names)
    return MTASTSView(policies, status, conditions, changed)
