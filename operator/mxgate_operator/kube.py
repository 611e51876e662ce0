"""The ONE module that talks to the Kubernetes API (besides kopf's own watching).

lightkube's async client: typed core models, generic resources for our CRD and
cert-manager's, and server-side apply with one fixed field manager. It returns
plain dicts and raises KubeError; it must not decide anything (that is reconcile).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Event, Pod
from lightkube.types import PatchType

from mxgate_operator.errors import KubeError

FIELD_MANAGER = "mxgate-operator"
TLSPolicy = create_namespaced_resource("mxgate.io", "v1alpha1", "TLSPolicy", "tlspolicies")
Certificate = create_namespaced_resource("cert-manager.io", "v1", "Certificate", "certificates")
ClusterTLSPolicy = create_global_resource(
    "mxgate.io", "v1alpha1", "ClusterTLSPolicy", "clustertlspolicies"
)
_KINDS: dict[str, Any] = {
    "v1/ConfigMap": ConfigMap,
    "cert-manager.io/v1/Certificate": Certificate,
    "mxgate.io/v1alpha1/TLSPolicy": TLSPolicy,
}


def _as_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return out


def _code(exc: ApiError) -> int:
    """The HTTP status of a failed request; 0 when no response came."""
    return exc.response.status_code if exc.response is not None else 0


def _error(exc: ApiError, what: str) -> KubeError:
    return KubeError(f"{what}: {exc.status.message or exc}", _code(exc))


class Kube:
    """An open API connection; use ``async with Kube.connect(...) as kube``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster ServiceAccount, else $KUBECONFIG / ~/.kube/config (or an explicit file)."""
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        return cls(AsyncClient(config, field_manager=FIELD_MANAGER))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.close()

    async def list_policies(self, namespace: str) -> list[dict[str, Any]]:
        try:
            return [_as_dict(o) async for o in self._client.list(TLSPolicy, namespace=namespace)]
        except ApiError as exc:
            raise _error(exc, "list TLSPolicies") from exc

    async def list_certificates(
        self, namespace: str, labels: Mapping[str, str]
    ) -> list[dict[str, Any]] | None:
        """Our Certificates, or None when cert-manager's CRD is not installed."""
        try:
            found = self._client.list(Certificate, namespace=namespace, labels=dict(labels))
            return [_as_dict(o) async for o in found]
        except ApiError as exc:
            if _code(exc) == 404:
                return None
            raise _error(exc, "list Certificates") from exc
        except Exception as exc:
            # Without the CRD lightkube's list raises its HTTP library's status error, not
            # ApiError: every reconcile died there, before any status was written.
            if getattr(getattr(exc, "response", None), "status_code", None) == 404:
                return None
            raise

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _as_dict(await self._client.get(ConfigMap, name, namespace=namespace))
        except ApiError as exc:
            if _code(exc) == 404:
                return None
            raise _error(exc, f"get ConfigMap {name}") from exc

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with our field manager (force: these objects are ours).

        Returns the object as stored (with its status, if it has one).
        """
        meta = manifest["metadata"]
        kind = _KINDS[f"{manifest['apiVersion']}/{manifest['kind']}"]
        try:
            stored = await self._apply(kind, meta["namespace"], meta["name"], dict(manifest))
        except ApiError as exc:
            raise _error(exc, f"apply {manifest['kind']} {meta['name']}") from exc
        return _as_dict(stored)

    async def _apply(self, kind: Any, namespace: str, name: str, body: dict[str, Any]) -> Any:
        """Server-side apply as our field manager, forced: these fields are ours."""
        return await self._client.patch(
            kind,
            name,
            body,
            namespace=namespace,
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=True,
        )

    async def delete_certificate(self, namespace: str, name: str) -> None:
        try:
            await self._client.delete(Certificate, name, namespace=namespace)
        except ApiError as exc:
            if _code(exc) != 404:
                raise _error(exc, f"delete Certificate {name}") from exc

    async def apply_policy_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> str | None:
        """Server-side apply of the status subresource: we own exactly these fields.

        Returns the resourceVersion it was stored at (None if the policy is gone).
        """
        body = {
            "apiVersion": "mxgate.io/v1alpha1",
            "kind": "TLSPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        try:
            stored = await self._apply(TLSPolicy.Status, namespace, name, body)
        except ApiError as exc:
            if _code(exc) != 404:  # deleted meanwhile: nothing to report on
                raise _error(exc, f"apply status of TLSPolicy {name}") from exc
            return None
        meta = stored.metadata
        return meta.resourceVersion if meta is not None else None

    async def post_event(
        self, namespace: str, name: str, uid: str, *, type_: str, reason: str, message: str
    ) -> None:
        """An event about a TLSPolicy, kept in its own namespace."""
        involved = ObjectReference(
            apiVersion="mxgate.io/v1alpha1",
            kind="TLSPolicy",
            name=name,
            namespace=namespace,
            uid=uid,
        )
        await self._post_event(namespace, involved, type_, reason, message)

    async def _post_event(
        self, namespace: str, involved: ObjectReference, type_: str, reason: str, message: str
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        event = Event(
            metadata=ObjectMeta(generateName=f"{involved.name}.", namespace=namespace),
            involvedObject=involved,
            reason=reason,
            message=message,
            type=type_,
            source=EventSource(component=FIELD_MANAGER),
            firstTimestamp=now,
            lastTimestamp=now,
            count=1,
        )
        try:
            await self._client.create(event)
        except ApiError as exc:
            what = f"{involved.kind} {involved.name}"
            raise _error(exc, f"post event {reason} on {what}") from exc

    async def gateway_pod_ips(self, namespace: str, selector: Mapping[str, str]) -> list[str]:
        """IPs of running gateway pods (found by label selector)."""
        try:
            pods = self._client.list(Pod, namespace=namespace, labels=dict(selector))
            ips: list[str] = [
                p.status.podIP
                async for p in pods
                if p.status is not None and p.status.podIP and p.status.phase == "Running"
            ]
            return sorted(ips)
        except ApiError as exc:
            raise _error(exc, "list gateway pods") from exc

    async def hold_lease(self, namespace: str, name: str, identity: str, seconds: int) -> bool:
        """Acquire or renew the Lease ``name`` for ``identity``; False while another holds it.

        Optimistic: a replace carries the resourceVersion read, so two candidates racing
        for an expired Lease cannot both win (the loser gets 409 and answers False).
        """
        now = dt.datetime.now(dt.UTC)
        try:
            lease = await self._client.get(Lease, name, namespace=namespace)
        except ApiError as exc:
            if _code(exc) != 404:
                raise _error(exc, f"get Lease {name}") from exc
            fresh = Lease(
                metadata=ObjectMeta(name=name, namespace=namespace),
                spec=LeaseSpec(
                    holderIdentity=identity,
                    leaseDurationSeconds=seconds,
                    acquireTime=now,
                    renewTime=now,
                    leaseTransitions=0,
                ),
            )
            try:
                await self._client.create(fresh)
            except ApiError as exc2:
                if _code(exc2) == 409:
                    return False
                raise _error(exc2, f"create Lease {name}") from exc2
            return True
        spec = lease.spec or LeaseSpec()
        duration = dt.timedelta(seconds=spec.leaseDurationSeconds or seconds)
        expired = spec.renewTime is None or spec.renewTime + duration < now
        if spec.holderIdentity != identity and not expired:
            return False
        if spec.holderIdentity != identity:
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        spec.holderIdentity = identity
        spec.leaseDurationSeconds = seconds
        spec.renewTime = now
        lease.spec = spec
        try:
            await self._client.replace(lease)
        except ApiError as exc:
            if _code(exc) == 409:
                return False
            raise _error(exc, f"renew Lease {name}") from exc
        return True

    # --- ClusterTLSPolicy (cluster-scoped floors; see cluster.py) ---------------------------

    async def list_cluster_policies(self) -> list[dict[str, Any]] | None:
        """Every ClusterTLSPolicy, or None when the CRD is not installed (or not readable)."""
        try:
            return [_as_dict(o) async for o in self._client.list(ClusterTLSPolicy)]
        except ApiError as exc:
            if _code(exc) in (403, 404):
                return None
            raise _error(exc, "list ClusterTLSPolicies") from exc
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) in (403, 404):
                return None
            raise

    async def apply_cluster_policy_status(self, name: str, status: dict[str, Any]) -> None:
        """Server-side apply of a ClusterTLSPolicy's status subresource."""
        body = {
            "apiVersion": "mxgate.io/v1alpha1",
            "kind": "ClusterTLSPolicy",
            "metadata": {"name": name},
            "status": status,
        }
        try:
            await self._client.patch(
                ClusterTLSPolicy.Status,
                name,
                body,
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            )
        except ApiError as exc:
            if _code(exc) != 404:  # deleted meanwhile: nothing to report on
                raise _error(exc, f"apply status of ClusterTLSPolicy {name}") from exc

    async def post_cluster_event(
        self, namespace: str, name: str, uid: str, *, type_: str, reason: str, message: str
    ) -> None:
        """An event about a ClusterTLSPolicy, kept in ``namespace`` (``default``: the only
        one the API server allows besides none); ``kubectl describe`` finds it there."""
        involved = ObjectReference(
            apiVersion="mxgate.io/v1alpha1", kind="ClusterTLSPolicy", name=name, uid=uid
        )
        await self._post_event(namespace, involved, type_, reason, message)
