"""Fixtures shared by every test folder. Keep each one small and named for what it fakes."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest
import trustme

from mtapeers.gwconfig import UPSTREAM_SETTINGS, gateway_config
from mtapeers.postfix import Postfix
from mtapeers.postfix import available as postfix_available
from mxgate_gateway.app import Gateway


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


# --- gateway fixtures: trustme CAs, a private real Postfix, a running gateway ------------

TLS_DIR_NAME = "gateway-tls"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trustme CA and a server certificate for mx.test / localhost / 127.0.0.1, as files."""
    ca = trustme.CA()
    leaf = ca.issue_cert("mx.test", "localhost", "127.0.0.1")
    root = tmp_path_factory.mktemp(TLS_DIR_NAME)
    root.chmod(0o755)  # Postfix (unprivileged) reads these too
    files = {"ca": root / "ca.pem", "cert": root / "tls.crt", "key": root / "tls.key"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(files["cert"]))
    leaf.private_key_pem.write_to_path(str(files["key"]))
    for path in files.values():
        path.chmod(0o644)
    return files


@pytest.fixture(scope="session")
def postfix_upstream(tls_files: dict[str, Path]) -> Iterator[Postfix]:
    """A private real Postfix on loopback accepting alice/bob/big@accepted.test (STARTTLS may)."""
    if not postfix_available():
        pytest.skip("Postfix is not installed (make test installs it)")
    settings = {
        **UPSTREAM_SETTINGS,
        "smtpd_tls_cert_file": str(tls_files["cert"]),
        "smtpd_tls_key_file": str(tls_files["key"]),
    }
    pfx = Postfix("upstream", settings)
    pfx.start()
    try:
        yield pfx
    finally:
        pfx.stop()


@pytest.fixture
async def gateway(postfix_upstream: Postfix, tls_files: dict[str, Path]) -> AsyncIterator[Gateway]:
    """A running gateway (STARTTLS on, ports from 0) relaying to the private Postfix."""
    async with Gateway(gateway_config(postfix_upstream.port, tls_files)) as gw:
        yield gw
