"""Install helm/mxgate into a fresh namespace of the test control plane and read back what
helm created, so tests take names, pod specs and env from the chart instead of repeating them.

It must not patch the chart's output: what the tests run is what a cluster would run.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubeplane.runner import Runner

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "mxgate"
CRD = "tlspolicies.mxgate.io"
CRDS = (CRD, "clustertlspolicies.mxgate.io")  # every CRD the chart templates
REQUIRED_VALUES = (
    "--set",
    "gateway.hostname=mx1.example.test",
    "--set",
    "gateway.domains={accepted.test}",
    "--set",
    "gateway.upstreams[0].address=127.0.0.1:10025",
)


def new_namespace(kubectl: Runner) -> str:
    """Create a uniquely named namespace and return its name."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    return name


@dataclass(frozen=True)
class Release:
    """A chart release in its own namespace, and the objects helm says it created."""

    name: str
    namespace: str
    objects: tuple[dict[str, Any], ...]

    @property
    def fullname(self) -> str:
        return f"{self.name}-mxgate"

    def kinds(self) -> set[str]:
        return {str(o["kind"]) for o in self.objects}

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return next(o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name)

    def deployment(self, component: str) -> dict[str, Any]:
        return self.get("Deployment", f"{self.fullname}-{component}")

    def container(self, component: str) -> dict[str, Any]:
        """The (first) container of a component's Deployment pod template."""
        containers: list[dict[str, Any]] = self.pod_spec(component)["containers"]
        return containers[0]

    def pod_spec(self, component: str) -> dict[str, Any]:
        spec: dict[str, Any] = self.deployment(component)["spec"]["template"]["spec"]
        return spec

    def env(self, component: str) -> dict[str, str]:
        """The container's env, with the downward-API namespace resolved as the kubelet would."""
        out: dict[str, str] = {}
        for var in self.container(component).get("env", []):
            if "value" in var:
                out[var["name"]] = str(var["value"])
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == (
                "metadata.namespace"
            ):
                out[var["name"]] = self.namespace
        return out


def install(
    helm: Runner,
    kubectl: Runner,
    values: Sequence[str] = (),
    name: str = "mx",
    *,
    own_crds: bool = False,
) -> Release:
    """``helm install`` the chart with its required values plus ``values`` into a new namespace.

    The CRDs are cluster-scoped and one control plane serves the whole session, so only one
    release can own them, as in a real cluster. When one already exists, the release either
    leaves it alone (``crds.enabled=false``, what a second install in a cluster does) or, with
    ``own_crds``, adopts it through helm's ownership annotations.
    """
    namespace = new_namespace(kubectl)
    existing = [c for c in CRDS if kubectl("get", "crd", c, check=False).returncode == 0]
    crd_values: tuple[str, ...] = ()
    if existing and own_crds:
        for crd in existing:
            kubectl(
                "annotate",
                "crd",
                crd,
                "--overwrite",
                f"meta.helm.sh/release-name={name}",
                f"meta.helm.sh/release-namespace={namespace}",
            )
            kubectl("label", "crd", crd, "--overwrite", "app.kubernetes.io/managed-by=Helm")
    elif existing:
        crd_values = ("--set", "crds.enabled=false")
    helm("install", name, str(CHART), "-n", namespace, *REQUIRED_VALUES, *crd_values, *values)
    manifest = helm("get", "manifest", name, "-n", namespace).stdout
    objects = tuple(d for d in yaml.safe_load_all(manifest) if d)
    return Release(name, namespace, objects)


def uninstall(helm: Runner, release: Release) -> None:
    """``helm uninstall`` a release ``install`` made: its cluster-scoped objects (the
    admission policy and its binding, ClusterRoles) outlive its namespace otherwise, and
    the admission policy would go on judging every other test's ClusterTLSPolicies."""
    helm("uninstall", release.name, "-n", release.namespace, "--wait", check=False)


def by_namespace(objects: Sequence[dict[str, Any]], namespace: str) -> dict[str, list[Any]]:
    """Rendered objects grouped by the namespace they land in.

    Objects without ``metadata.namespace`` land in the release's ``namespace``; a few name
    another one on purpose (the operator's events Role for ClusterTLSPolicy lives in
    ``default``, the only namespace the API server takes events about cluster objects in),
    and kubectl refuses a ``-n`` that contradicts an object's own namespace.
    """
    groups: dict[str, list[Any]] = {}
    for obj in objects:
        ns = str((obj.get("metadata") or {}).get("namespace") or namespace)
        groups.setdefault(ns, []).append(obj)
    return groups
