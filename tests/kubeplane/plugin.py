"""pytest plugin: session-wide etcd + kube-apiserver and the fixtures tests use to reach it,
and a real one-node cluster (``kube_node``: kubelet, containerd, kube-proxy) for pod tests.

Tests that use any fixture below are marked ``kube``; those on the real node also ``pods``.
The binaries (and the node's images) are built or reused at collection time (outside
per-test timeouts) only when such a test is selected; when Go, its module proxy, root,
CAP_NET_ADMIN or the CNI plugins are missing they are skipped with one line saying why.
Never skipped silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubeplane import node
from kubeplane.certmanager import CertManager
from kubeplane.controlplane import ControlPlane, write_kubeconfig
from kubeplane.runner import CommandFailed, Runner
from kubeplane.tools import BuildFailed, Tools, Unavailable, ensure_tools

KUBE_FIXTURES = frozenset(
    {
        "kube_tools",
        "kube_control_plane",
        "kubeconfig",
        "kube_namespace",
        "kubectl",
        "helm",
        "kube_token",
        "cert_manager_crds",
        "cert_manager",
    }
)
POD_FIXTURES = frozenset({"kube_node", "node_kubectl", "node_helm", "node_cert_manager"})
_TOOLS = pytest.StashKey[Tools | Unavailable | BuildFailed]()
_STARTED = pytest.StashKey[str]()
_NODE = pytest.StashKey[str | None]()  # why the node cannot run here (None: it can)
_NODE_STARTED = pytest.StashKey[str]()
__all__ = ["CommandFailed", "Runner", "TokenMinter"]  # what tests import from here


@dataclass(frozen=True)
class TokenMinter:
    """Mints ServiceAccount tokens through the TokenRequest API (``kubectl create token``)."""

    kubectl: Runner
    control_plane: ControlPlane
    workdir: Path

    def token(self, namespace: str, service_account: str, duration: str = "1h") -> str:
        done = self.kubectl(
            "create", "token", service_account, "-n", namespace, f"--duration={duration}"
        )
        return done.stdout.strip()

    def kubeconfig(self, namespace: str, service_account: str) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount, defaulting to its namespace."""
        token = self.token(namespace, service_account)
        path = self.workdir / f"{namespace}.{service_account}.{uuid.uuid4().hex[:6]}.kubeconfig"
        cp = self.control_plane
        return write_kubeconfig(path, cp.server, cp.ca_file, token, namespace)


def uses_pods(item: pytest.Item) -> bool:
    return bool(POD_FIXTURES & set(getattr(item, "fixturenames", ())))


def uses_kube(item: pytest.Item) -> bool:
    return bool(KUBE_FIXTURES & set(getattr(item, "fixturenames", ()))) or uses_pods(item)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark tests that use the control plane ``kube`` and the real node also ``pods``
    (before any ``-m`` deselection)."""
    if uses_kube(item):
        item.add_marker(pytest.mark.kube)
    if uses_pods(item):
        item.add_marker(pytest.mark.pods)


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: build only for selected tests
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: Sequence[pytest.Item]
) -> None:
    kube_items = [it for it in items if uses_kube(it)]
    if not kube_items:
        return
    report: list[str] = []
    result: Tools | Unavailable | BuildFailed
    try:
        result = ensure_tools(report)
    except BuildFailed as exc:
        result = exc
    config.stash[_TOOLS] = result
    writer = config.pluginmanager.get_plugin("terminalreporter")
    for line in report:
        if writer is not None:
            writer.write_line(f"kubeplane: {line}")
    if isinstance(result, Unavailable):
        skip = pytest.mark.skip(reason=f"no real Kubernetes control plane: {result.reason}")
        for item in kube_items:
            item.add_marker(skip)
        return
    pod_items = [it for it in kube_items if uses_pods(it)]
    if pod_items:
        lines: list[str] = []
        why = _prepare_node(lines.append)
        for line in lines:
            if writer is not None:
                writer.write_line(f"kubeplane: {line}")
        config.stash[_NODE] = why
        if why is not None:
            skip = pytest.mark.skip(reason=f"no real Kubernetes node: {why}")
            for item in pod_items:
                item.add_marker(skip)


def _prepare_node(report: Callable[[str], None]) -> str | None:
    """Why the node cannot run here, or None after building its binaries and images."""
    why = node.unavailable()
    if why is not None:
        return why
    done = node.prepare()
    if done.returncode == node.NO_TOOL_EXIT:
        return done.stderr.strip().splitlines()[-1]
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise node.NodeFailed(f"building the node's binaries and images failed:\n{tail}")
    for line in done.stdout.strip().splitlines():
        report(line)
    return None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line saying how long the control plane took to become ready, if it ran."""
    for key in (_STARTED, _NODE_STARTED):
        line = config.stash.get(key, None)
        if line is not None:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kube_tools(pytestconfig: pytest.Config) -> Tools:
    """Paths of helm, kube-apiserver, etcd and kubectl (built or reused at collection)."""
    result = pytestconfig.stash.get(_TOOLS, Unavailable("control plane tools not prepared"))
    if isinstance(result, BuildFailed):
        raise result
    if not isinstance(result, Tools):
        pytest.skip(f"no real Kubernetes control plane: {result.reason}")
    return result


@pytest.fixture(scope="session")
def kube_control_plane(
    kube_tools: Tools, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver on loopback for the whole session; stopped by PID at the end."""
    plane = ControlPlane(tools=kube_tools, workdir=tmp_path_factory.mktemp("kubeplane"))
    plane.start()
    pytestconfig.stash[_STARTED] = (
        f"kubeplane: etcd + {kube_tools.kube_apiserver.name} at {plane.server} ready in "
        f"{plane.startup_seconds:.1f} s (logs in {plane.workdir})"
    )
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(kube_control_plane: ControlPlane) -> Path:
    """Path of a kubeconfig holding the admin token (group system:masters)."""
    return kube_control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(kube_tools: Tools, kubeconfig: Path) -> Runner:
    """Runs the machine's kubectl against the test control plane (admin unless told)."""
    return Runner(kube_tools.kubectl, kubeconfig)


@pytest.fixture(scope="session")
def helm(kube_tools: Tools, kubeconfig: Path) -> Runner:
    """Runs the pinned helm against the test control plane; ``helm.binary`` is its path."""
    return Runner(kube_tools.helm, kubeconfig)


@pytest.fixture
def kube_namespace(kubectl: Runner) -> str:
    """A fresh namespace per test (left behind: no namespace controller runs to delete it)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="session")
def kube_token(
    kubectl: Runner, kube_control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> TokenMinter:
    """Mints ServiceAccount tokens (TokenRequest API) and kubeconfigs that use them."""
    return TokenMinter(kubectl, kube_control_plane, tmp_path_factory.mktemp("tokens"))


CERT_MANAGER_CRDS = ("certificates", "certificaterequests", "issuers", "clusterissuers")


@pytest.fixture(scope="session")
def cert_manager_crds(kube_tools: Tools, kubectl: Runner) -> Path:
    """cert-manager's real CRDs (pinned release, from its Go module), installed and Established.

    Only the CRDs: cert-manager's controller module is not on the module proxy, so nothing
    issues certificates; tests that need a Secret write it as cert-manager would.
    """
    for name in CERT_MANAGER_CRDS:
        manifest = kube_tools.cert_manager_crds / f"cert-manager.io_{name}.yaml"
        kubectl("apply", "--server-side", "--field-manager=kubeplane", "-f", str(manifest))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"crd/{name}.cert-manager.io" for name in CERT_MANAGER_CRDS),
    )
    return kube_tools.cert_manager_crds


@pytest.fixture(scope="session")
def cert_manager(
    kube_tools: Tools,
    kubectl: Runner,
    kubeconfig: Path,
    cert_manager_crds: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> CertManager:
    """cert-manager's real controllers (pinned release, built from its Go module), run per
    namespace with ``cert_manager.running(ns)``; ``cert_manager.ca_issuer(ns)`` adds a CA."""
    return CertManager(
        kube_tools.cert_manager_controller, kubectl, kubeconfig,
        tmp_path_factory.mktemp("cert-manager"),
    )  # fmt: skip


@pytest.fixture(scope="session")
def kube_node(kube_tools: Tools, pytestconfig: pytest.Config) -> Iterator[node.KubeNode]:
    """A real one-node cluster (scripts/kube-node.sh: kubelet, containerd, kube-proxy, CNI)
    with the gateway, Postfix and pause images loaded. Reuses a node ``make kube-up`` left
    running (and leaves it running); waits while another test session owns the node;
    otherwise starts one and stops it, restoring the host."""
    why = pytestconfig.stash.get(_NODE, "node not prepared at collection")
    if why is not None:
        pytest.skip(f"no real Kubernetes node: {why}")
    node.wait_for_other_session(node.STATE)
    reused = node.running(node.STATE)
    started = reused or node.up(node.STATE)
    verb = "reused" if reused else f"ready in {started.startup_seconds:.1f} s"
    pytestconfig.stash[_NODE_STARTED] = (
        f"kubeplane: node (kubelet, containerd, kube-proxy) {verb} (logs in {started.state}/logs)"
    )
    try:
        yield started
    finally:
        if reused is None:
            node.down(node.STATE)


@pytest.fixture(scope="session")
def node_kubectl(kube_tools: Tools, kube_node: node.KubeNode) -> Runner:
    """The machine's kubectl against the real node's API server (admin)."""
    return Runner(kube_tools.kubectl, kube_node.kubeconfig)


@pytest.fixture(scope="session")
def node_helm(kube_tools: Tools, kube_node: node.KubeNode) -> Runner:
    """The pinned helm against the real node's API server."""
    return Runner(kube_tools.helm, kube_node.kubeconfig)


@pytest.fixture(scope="session")
def node_cert_manager(
    kube_tools: Tools,
    node_kubectl: Runner,
    kube_node: node.KubeNode,
    tmp_path_factory: pytest.TempPathFactory,
) -> CertManager:
    """cert-manager's CRDs and real controllers (``running(ns)``) on the real node's cluster."""
    for name in CERT_MANAGER_CRDS:
        manifest = kube_tools.cert_manager_crds / f"cert-manager.io_{name}.yaml"
        node_kubectl("apply", "--server-side", "--field-manager=kubeplane", "-f", str(manifest))
    node_kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"crd/{name}.cert-manager.io" for name in CERT_MANAGER_CRDS),
    )
    return CertManager(
        kube_tools.cert_manager_controller, node_kubectl, kube_node.kubeconfig,
        tmp_path_factory.mktemp("node-cert-manager"),
    )  # fmt: skip
