"""Play the kubelet's part for one pod spec: project its ConfigMap and Secret volumes from the
API server into local directories exactly as the kubelet's AtomicWriter does.

Layout per volume: ``<dir>/..<timestamp>/`` holds the keys, ``<dir>/..data`` is a symlink
swapped atomically with rename(2), ``<dir>/<key>`` link through ``..data``. It reads with the
admin kubeconfig (the kubelet's role); it must not start or judge the workload.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeplane.runner import Runner


def atomic_write(root: Path, files: Mapping[str, bytes], seq: int) -> bool:
    """Write ``files`` as a new timestamped dir and swap ``..data``; False if unchanged."""
    root.mkdir(parents=True, exist_ok=True)
    data_link = root / "..data"
    old = os.readlink(data_link) if data_link.is_symlink() else None
    if old is not None:
        current = {p.name: p.read_bytes() for p in (root / old).iterdir()}
        if current == dict(files):
            return False
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
    ts = root / f"..{stamp}.{os.getpid()}{seq:04d}"
    ts.mkdir()
    for name, content in files.items():
        (ts / name).write_bytes(content)
    tmp = root / "..data_tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(ts.name, tmp)
    os.rename(tmp, data_link)
    for name in files:
        link = root / name
        if not link.is_symlink():
            os.symlink(f"..data/{name}", link)
    for entry in root.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in files:
            entry.unlink()
    if old is not None:
        shutil.rmtree(root / old)
    return True


@dataclass
class Volume:
    """One projected volume: where it is mounted in the container and where locally."""

    name: str
    kind: str  # "configMap" | "secret"
    source: str  # ConfigMap or Secret name
    optional: bool
    mount_path: str
    local: Path


@dataclass
class LocalKubelet:
    """Keeps local copies of a pod spec's ConfigMap/Secret volumes in sync with the API."""

    kubectl: Runner
    namespace: str
    pod_spec: Mapping[str, Any]
    container: str
    root: Path
    volumes: list[Volume] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        spec_vols = {v["name"]: v for v in self.pod_spec.get("volumes", [])}
        container = next(c for c in self.pod_spec["containers"] if c["name"] == self.container)
        for mount in container.get("volumeMounts", []):
            vol = spec_vols[mount["name"]]
            local = self.root / mount["mountPath"].lstrip("/")
            local.mkdir(parents=True, exist_ok=True)
            if "configMap" in vol:
                src = vol["configMap"]
                self.volumes.append(
                    Volume(
                        vol["name"],
                        "configMap",
                        src["name"],
                        bool(src.get("optional")),
                        mount["mountPath"],
                        local,
                    )
                )
            elif "secret" in vol:
                src = vol["secret"]
                self.volumes.append(
                    Volume(
                        vol["name"],
                        "secret",
                        src["secretName"],
                        bool(src.get("optional")),
                        mount["mountPath"],
                        local,
                    )
                )

    def volume(self, name: str) -> Volume:
        return next(v for v in self.volumes if v.name == name)

    def local_path(self, container_path: str) -> str:
        """Rewrite a path inside the container to the local projection (else unchanged)."""
        for vol in sorted(self.volumes, key=lambda v: -len(v.mount_path)):
            if container_path == vol.mount_path or container_path.startswith(vol.mount_path + "/"):
                return str(vol.local) + container_path[len(vol.mount_path) :]
        return container_path

    def _read(self, vol: Volume) -> dict[str, bytes] | None:
        kind = "configmap" if vol.kind == "configMap" else "secret"
        done = self.kubectl(
            "get", kind, vol.source, "-n", self.namespace, "-o", "json", check=False
        )
        if done.returncode != 0:
            if "NotFound" in done.stderr and vol.optional:
                return None
            raise AssertionError(f"kubelet: cannot read {kind}/{vol.source}: {done.stderr}")
        obj = json.loads(done.stdout)
        if vol.kind == "secret":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        return {k: v.encode() for k, v in (obj.get("data") or {}).items()}

    def sync(self) -> list[str]:
        """Project every volume once; return the names of volumes whose content changed."""
        changed = []
        for vol in self.volumes:
            files = self._read(vol)
            if files is None:
                continue  # optional and absent: the kubelet leaves the directory empty
            if atomic_write(vol.local, files, next(self._seq)):
                changed.append(vol.name)
        return changed
