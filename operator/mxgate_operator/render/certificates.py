"""Plan and render the cert-manager Certificates: one per listener host set.

A gateway listener serves one certificate, so the Certificate and its Secret are
named by listener (``<prefix>-<listener>`` / ``<prefix>-<listener>-tls``) and the
chart can mount the Secret up front. Pure: builds manifests, never applies them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mxgate_operator.render.gateway_config import PolicyInput
from mxgate_operator.spec import CertificateSpec

POLICY_API_VERSION = "mxgate.io/v1alpha1"
POLICY_KIND = "TLSPolicy"
MANAGED_BY = {"app.kubernetes.io/managed-by": "mxgate-operator"}
LISTENER_LABEL = "mxgate.io/listener"
RELEASE_LABEL = "mxgate.io/release"  # which operator (release prefix) owns the object


def release_of(obj: Mapping[str, Any] | None) -> str | None:
    """The release label of a live object (None when absent: created before the label)."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    value = labels.get(RELEASE_LABEL)
    return str(value) if value is not None else None


def owned_by_other(obj: Mapping[str, Any] | None, release: str) -> bool:
    """True when a live object carries another release's label: never touch it."""
    other = release_of(obj)
    return bool(release) and other is not None and other != release


@dataclass(frozen=True)
class Owner:
    """A TLSPolicy that owns a rendered object (ownerReferences entry)."""

    name: str
    uid: str


@dataclass(frozen=True)
class CertificatePlan:
    """One Certificate to apply: its names, its spec, and the policies that own it."""

    listener: str
    name: str
    secret_name: str
    spec: CertificateSpec
    owners: tuple[Owner, ...]


def certificate_name(prefix: str, listener: str) -> str:
    return f"{prefix}-{listener}"


def secret_name(prefix: str, listener: str) -> str:
    return f"{prefix}-{listener}-tls"


def plan_certificates(
    prefix: str,
    accepted: Sequence[PolicyInput],
    secret_names: Mapping[str, str] | None = None,
    excluded: Collection[str] = (),
) -> tuple[CertificatePlan, ...]:
    """Group accepted policies that ask for a certificate by listener (specs already agree).

    ``excluded``: rule ids whose request conflicts with the listener's (RenderResult.
    certificate_conflicts); their rules apply, their requests are not served.

    ``secret_names`` overrides the Secret name per listener (the chart's gateway Secret).
    """
    overrides = secret_names or {}
    by_listener: dict[str, tuple[CertificateSpec, list[Owner]]] = {}
    for policy in accepted:
        spec = policy.parsed.spec
        if spec is None or spec.certificate is None or policy.rule_id in excluded:
            continue
        entry = by_listener.setdefault(spec.listener.value, (spec.certificate, []))
        entry[1].append(Owner(policy.name, policy.uid))
    return tuple(
        CertificatePlan(
            listener=listener,
            name=certificate_name(prefix, listener),
            secret_name=overrides.get(listener) or secret_name(prefix, listener),
            spec=cert,
            owners=tuple(sorted(owners, key=lambda o: o.name)),
        )
        for listener, (cert, owners) in sorted(by_listener.items())
    )


def owner_references(owners: Sequence[Owner]) -> list[dict[str, Any]]:
    """ownerReferences to TLSPolicies: garbage-collected when every owner is gone."""
    return [
        {
            "apiVersion": POLICY_API_VERSION,
            "kind": POLICY_KIND,
            "name": o.name,
            "uid": o.uid,
            "controller": False,
            "blockOwnerDeletion": False,
        }
        for o in owners
    ]


def certificate_manifest(
    plan: CertificatePlan, namespace: str, release: str = ""
) -> dict[str, Any]:
    """The cert-manager.io/v1 Certificate for one plan, ready for server-side apply."""
    cert = plan.spec
    key: dict[str, Any] = {"algorithm": cert.private_key.algorithm, "rotationPolicy": "Always"}
    if cert.private_key.size is not None:
        key["size"] = cert.private_key.size
    spec: dict[str, Any] = {
        "secretName": plan.secret_name,
        "dnsNames": sorted(cert.dns_names),
        "issuerRef": {
            "name": cert.issuer_ref.name,
            "kind": cert.issuer_ref.kind,
            "group": cert.issuer_ref.group,
        },
        "privateKey": key,
        "secretTemplate": {"labels": {**MANAGED_BY, LISTENER_LABEL: plan.listener}},
    }
    if cert.duration is not None:
        spec["duration"] = cert.duration
    if cert.renew_before is not None:
        spec["renewBefore"] = cert.renew_before
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {
            "name": plan.name,
            "namespace": namespace,
            "labels": {
                **MANAGED_BY,
                LISTENER_LABEL: plan.listener,
                **({RELEASE_LABEL: release} if release else {}),
            },
            "ownerReferences": owner_references(plan.owners),
        },
        "spec": spec,
    }


@dataclass(frozen=True)
class CertificateState:
    """What a Certificate's status says: Ready (True/False/None=unknown) and notAfter."""

    ready: bool | None
    reason: str
    message: str
    not_after: str | None


def certificate_state(obj: Mapping[str, Any] | None) -> CertificateState:
    """Read a Certificate object (or its absence) into a CertificateState."""
    if obj is None:
        return CertificateState(None, "Pending", "the Certificate does not exist yet", None)
    status = obj.get("status") or {}
    not_after = status.get("notAfter")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            value = {"True": True, "False": False}.get(str(cond.get("status")))
            return CertificateState(
                value,
                str(cond.get("reason") or "Unknown"),
                str(cond.get("message") or ""),
                not_after,
            )
    return CertificateState(None, "Pending", "cert-manager has not reported yet", not_after)
