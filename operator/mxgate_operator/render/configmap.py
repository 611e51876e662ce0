"""Render the one ConfigMap that carries the gateway policy file, and decide whether to apply.

The ConfigMap is applied only when the hash of its rendered content changes; the
hash is recorded in an annotation so a restarted operator decides the same way.
Pure: builds the manifest and compares hashes, never talks to the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mxgate_operator.render.certificates import MANAGED_BY, RELEASE_LABEL
from mxgate_operator.render.gateway_config import RenderResult, canonical_json, sha256_hex

POLICY_KEY = "policy.json"
CONFIG_HASH_ANNOTATION = "mxgate.io/config-hash"
APPLIED_HASH_ANNOTATION = "mxgate.io/applied-hash"


def configmap_manifest(
    name: str, namespace: str, result: RenderResult, release: str = ""
) -> dict[str, Any]:
    """The ConfigMap for a render result, annotated with its own content hash.

    ``applied-hash`` covers data, labels and annotations (everything we apply), so an
    unchanged hash means applying again would change nothing. No ownerReferences: one
    per policy on a shared object does not scale (issue 18); the labels name the owner,
    and the operator keeps the object (empty) while the namespace has no policy.
    """
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                **MANAGED_BY,
                "app.kubernetes.io/component": "policy",
                **({RELEASE_LABEL: release} if release else {}),
            },
            "annotations": {CONFIG_HASH_ANNOTATION: result.config_hash},
        },
        "data": {POLICY_KEY: result.text},
    }
    body["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = sha256_hex(canonical_json(body))
    return body


def applied_hash(manifest: Mapping[str, Any] | None) -> str | None:
    """The applied-hash annotation of a ConfigMap (desired or live), if any."""
    if manifest is None:
        return None
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(APPLIED_HASH_ANNOTATION)
    return str(value) if value is not None else None


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Apply only when the live ConfigMap is missing or carries a different hash."""
    return applied_hash(desired) != applied_hash(live)
