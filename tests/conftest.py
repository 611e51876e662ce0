"""Fixtures shared by every test folder. Keep each one small and named for what it fakes."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-golden`` rewrites golden files instead of comparing (renderer tests)."""
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files")


class KubeletMount:
    """Writes files the way the kubelet updates a mounted ConfigMap or Secret.

    Real layout, not a fake: ``dir/..<timestamp>/`` holds the files, ``dir/..data`` is a
    symlink to it, and ``dir/<name>`` are symlinks through ``..data``. ``update`` writes a
    new timestamped dir and swaps ``..data`` atomically with rename(2), then removes the
    old dir, exactly like kubelet's AtomicWriter.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seq = itertools.count()
        root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / name

    def update(self, files: Mapping[str, str | bytes]) -> None:
        ts = self.root / f"..2026_11_28_12_00_00.{next(self._seq):06d}"
        ts.mkdir()
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            (ts / name).write_bytes(data)
        data_link = self.root / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(ts.name, tmp)
        os.rename(tmp, data_link)
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                os.symlink(f"..data/{name}", link)
        if old is not None:
            shutil.rmtree(self.root / old)


@pytest.fixture
def kubelet_mount(tmp_path: Path) -> KubeletMount:
    """An empty kubelet-style mount directory (see ``KubeletMount``)."""
    return KubeletMount(tmp_path / "mount")
