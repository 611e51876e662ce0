"""Haraka, the peer users would otherwise pick: install it into a cache and configure it.

Installs the pinned npm package ``Haraka`` under ``~/.cache/mxgate/haraka``
(outside the repository) and writes a single-process config: STARTTLS via the
``tls`` plugin, recipients checked by ``rcpt_to.in_host_list``, delivery by
``queue/smtp_forward`` to the sink. It must not start Haraka (targets.py does).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

from bench.certs import HOSTNAME, CertPair

VERSION = "3.3.4"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mxgate" / "haraka"


FFDHE2048 = """-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


def haraka_bin(cache: Path = CACHE) -> Path:
    return cache / "node_modules" / "Haraka" / "bin" / "haraka"


def installed_version(cache: Path = CACHE) -> str | None:
    try:
        meta = json.loads((cache / "node_modules" / "Haraka" / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return str(meta.get("version"))


async def ensure_installed(cache: Path = CACHE, timeout: float = 300) -> Path:
    """Install Haraka@VERSION into ``cache`` unless it is already there; return its bin."""
    if installed_version(cache) == VERSION:
        return haraka_bin(cache)
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        raise RuntimeError("node and npm are needed for the Haraka target (apt-get install npm)")
    cache.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        npm,
        "install",
        "--prefix",
        str(cache),
        "--no-audit",
        "--no-fund",
        "--omit=dev",
        f"Haraka@{VERSION}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"npm install Haraka@{VERSION} took over {timeout:.0f} s") from None
    if proc.returncode != 0 or installed_version(cache) != VERSION:
        raise RuntimeError(f"npm install Haraka@{VERSION} failed:\n{out.decode()[-2000:]}")
    return haraka_bin(cache)


def write_config(
    home: Path, port: int, upstream_port: int, cert: CertPair, cache: Path = CACHE
) -> Path:
    """Write a Haraka home directory (``home/config``) over Haraka's defaults; return ``home``."""
    cfg = home / "config"
    shutil.copytree(cache / "node_modules" / "Haraka" / "config", cfg, dirs_exist_ok=True)
    files = {
        "me": HOSTNAME,
        # No `nodes=`: one process, no cluster (the issue compares single processes).
        "smtp.ini": f"listen=127.0.0.1:{port}\ninactivity_timeout=300\n",
        "plugins": "bench_no_rdns\ntls\nrcpt_to.in_host_list\nqueue/smtp_forward\n",
        "host_list": "accepted.test\n",
        "smtp_forward.ini": (
            f"host=127.0.0.1\nport={upstream_port}\nenable_tls=false\n"
            "max_connections=1000\ntimeout=30\n"
        ),
        "tls.ini": f"key={cert.key}\ncert={cert.cert}\nminVersion=TLSv1.2\n",
        # Same verbosity as mxgate's bench config: warnings only, no per-message lines.
        "log.ini": "[main]\nlevel=warn\ntimestamps=false\nformat=default\n",
    }
    for name, text in files.items():
        (cfg / name).write_text(text)
    # Without dhparams.pem Haraka spawns `openssl dhparam 2048` at start (seconds of CPU in
    # its process tree); give it the RFC 7919 ffdhe2048 group instead.
    (cfg / "dhparams.pem").write_text(FFDHE2048)
    # Haraka looks up every client's reverse DNS; mxgate does not, and the bench stays on
    # loopback (no resolver traffic). This plugin answers the lookup hook locally.
    (home / "plugins").mkdir(exist_ok=True)
    (home / "plugins" / "bench_no_rdns.js").write_text(
        "exports.hook_lookup_rdns = function (next) { next(OK, 'localhost') }\n"
    )
    return home
