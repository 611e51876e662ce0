"""The Dockerfile's recipe, exercised without a Docker engine: its builder stage's COPY set and
RUN step are replayed in a temporary directory (paths moved under it), giving a fresh venv
from the hash-locked runtime pins and the built wheel; it holds exactly the lock's versions and
records them (lock, pip freeze, CycloneDX SBOM); both entry points answer --help and the
gateway, started on the config the chart renders, reports ready and exits cleanly on SIGTERM.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
import yaml

from eventually import eventually

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BuilderStage:
    """The builder stage of the Dockerfile: what it copies and the shell it runs."""

    copies: tuple[str, ...]
    run: str
    workdir: str


def parse_builder_stage(text: str) -> BuilderStage:
    """Read COPY sources, WORKDIR and the RUN commands of the first stage."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stage = joined.split("\nFROM ", 2)[1]
    copies = []
    runs = []
    workdir = "/"
    for line in stage.splitlines()[1:]:
        word, _, rest = line.strip().partition(" ")
        if word == "COPY" and "--from" not in rest:
            copies.extend(shlex.split(rest)[:-1])
        elif word == "RUN":
            runs.append(rest)
        elif word == "WORKDIR":
            workdir = rest.strip()
    return BuilderStage(tuple(copies), " && ".join(runs), workdir)


def test_parse_builder_stage_reads_the_recipe() -> None:
    """The parser finds the wheel build, the venv install and the copied sources."""
    stage = parse_builder_stage((REPO / "Dockerfile").read_text(encoding="utf-8"))
    assert {"pyproject.toml", "README.md", "gateway/", "operator/"} <= set(stage.copies)
    assert {"requirements/runtime.txt", "requirements/build.txt"} <= set(stage.copies)
    run = " ".join(stage.run.split())
    assert (
        "SOURCE_DATE_EPOCH=315532800 /opt/build/bin/pip wheel --no-deps --no-build-isolation" in run
    )
    assert "--require-hashes --only-binary=:all: --no-deps -r requirements/runtime.txt" in run
    assert "--require-hashes --only-binary=:all: -r requirements/build.txt" in run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Replay the builder stage: copy its sources, run its RUN line with paths under tmp."""
    root = tmp_path_factory.mktemp("image")
    stage = parse_builder_stage((REPO / "Dockerfile").read_text(encoding="utf-8"))
    context = root / stage.workdir.lstrip("/")
    context.mkdir(parents=True)
    for src in stage.copies:
        source = REPO / src
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(source, context / src, ignore=ignore)
        else:
            (context / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / src)
    shim = root / "shim"
    shim.mkdir()
    # The base image's `python` is a plain interpreter: use the one this venv was made from.
    (shim / "python").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    run = stage.run.replace("/opt/", f"{root}/opt/").replace("/dist", f"{root}/dist")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    # Unlike the image build, keep pip's cache: the test runs on every `make test`.
    env |= {"PATH": f"{shim}:/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", run],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (
        f"builder RUN failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"
    )
    venv = root / "opt" / "mxgate"
    assert not (venv / "bin" / "pytest").exists(), "test extras leaked into the image venv"
    assert f"mxgate {_declared_version()}" in done.stdout
    return venv


def _declared_version() -> str:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return str(pyproject["project"]["version"])


def _runtime_pins() -> dict[str, str]:
    """name -> version of requirements/runtime.txt (names normalised)."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "requirements" / "runtime.txt").read_text())
    pins = [line.split()[0] for line in text.splitlines() if "==" in line.split("#")[0]]
    return {_norm(n): v for n, v in (p.split("==") for p in pins)}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(venv: Path) -> dict[str, str]:
    """name -> version of every distribution in the venv, read from its metadata."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    found = {}
    for meta in site.glob("*.dist-info/METADATA"):
        fields = dict(
            line.split(": ", 1) for line in meta.read_text().splitlines()[:10] if ": " in line
        )
        found[_norm(fields["Name"])] = fields["Version"]
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first one builds the venv (pip, cold cache)
def test_image_venv_holds_exactly_the_runtime_lock_and_mxgate(image_venv: Path) -> None:
    """Nothing more, nothing less, no other version: the lock's pins plus mxgate, no pip."""
    expected = _runtime_pins() | {"mxgate": _declared_version()}
    assert _installed(image_venv) == expected


@pytest.mark.slow
def test_the_wheel_build_is_byte_reproducible(tmp_path: Path) -> None:
    """The Dockerfile's wheel step, run twice on this tree, gives the same sha256."""
    run = " ".join(parse_builder_stage((REPO / "Dockerfile").read_text()).run.split())
    step = next(s for s in run.split(" && ") if "pip wheel" in s)
    digests = set()
    for n in (1, 2):
        argv = step.replace("/opt/build/bin/pip", f"{sys.executable} -m pip").replace(
            "/dist", str(tmp_path / f"dist{n}")
        )
        env_word, *command = shlex.split(argv)
        env = os.environ | dict([env_word.split("=", 1)])
        subprocess.run(command, cwd=REPO, env=env, capture_output=True, check=True, timeout=300)
        (wheel,) = (tmp_path / f"dist{n}").glob("mxgate-*.whl")
        digests.add(hashlib.sha256(wheel.read_bytes()).hexdigest())
        time.sleep(1.1)  # a later second: file times would differ without SOURCE_DATE_EPOCH
    assert len(digests) == 1


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first one builds the venv (pip, cold cache)
def test_image_records_what_it_contains(image_venv: Path) -> None:
    """/opt/mxgate/share/mxgate holds the lock, `pip freeze` and a CycloneDX SBOM that agree."""
    share = image_venv / "share" / "mxgate"
    lock = (REPO / "requirements" / "runtime.txt").read_text(encoding="utf-8")
    assert (share / "requirements.lock").read_text(encoding="utf-8") == lock
    frozen = (share / "pip-freeze.txt").read_text(encoding="utf-8").splitlines()
    pinned = {_norm(n): v for n, v in (x.split("==") for x in frozen if "==" in x)}
    assert pinned == _runtime_pins()
    assert any(x.startswith("mxgate @ file://") for x in frozen)
    sbom = json.loads((share / "sbom.cdx.json").read_text(encoding="utf-8"))
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["metadata"]["component"]["name"] == "mxgate"
    assert sbom["metadata"]["component"]["version"] == _declared_version()
    components = {_norm(c["name"]): c["version"] for c in sbom["components"]}
    assert components == _runtime_pins()


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first one builds the venv (pip, cold cache)
@pytest.mark.parametrize(("script", "expect"), [("mxgate", "gateway"), ("mxgate-operator", "")])
def test_entry_points_answer_help(image_venv: Path, script: str, expect: str) -> None:
    """Both console scripts of the image start and print their usage."""
    done = subprocess.run(
        [str(image_venv / "bin" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower()
    assert expect in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first one builds the venv (pip, cold cache)
def test_gateway_from_the_image_venv_serves_the_charts_config(
    image_venv: Path, render, tmp_path: Path
) -> None:
    """On the chart's rendered config (ports moved to free loopback ones) /readyz says 200."""
    config = render().gateway_config()
    smtp, http = _free_port(), _free_port()
    config["listen"]["smtp"] = f"127.0.0.1:{smtp}"
    config["listen"]["http"] = f"127.0.0.1:{http}"
    ca = trustme.CA()
    cert = ca.issue_cert(config["hostname"])
    cert.private_key_pem.write_to_path(tmp_path / "tls.key")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "tls.crt")
    config["tls"]["cert"] = str(tmp_path / "tls.crt")
    config["tls"]["key"] = str(tmp_path / "tls.key")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (tmp_path / "policy.json").write_text('{"version": 1, "rules": []}', encoding="utf-8")
    argv = [
        str(image_venv / "bin" / "mxgate"),
        "gateway",
        "--config",
        str(tmp_path / "config.yaml"),
    ]
    argv += ["--policy", str(tmp_path / "policy.json")]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        status = _wait_ready(f"http://127.0.0.1:{http}/readyz", proc, deadline=30)
        assert status == 200
        with socket.create_connection(("127.0.0.1", smtp), timeout=5) as s:
            assert s.recv(512).startswith(b"220 " + config["hostname"].encode())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=config["limits"]["drain_timeout"] + 10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[str], deadline: float) -> int:
    def status() -> int:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"gateway exited {proc.returncode}:\n{out[-3000:]}")
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)

    return eventually(status, deadline, f"{url} to answer", interval=0.2, ignore=(OSError,))


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first one builds the venv (pip, cold cache)
@pytest.mark.parametrize("missing", ["policy", "tls"])
def test_gateway_starts_before_the_operator_and_cert_manager_have_written_anything(
    image_venv: Path, render, tmp_path: Path, missing: str
) -> None:
    """With an optional mount still empty the pod starts instead of crash-looping: without
    policy.json it is ready; without tls.crt it is live, not ready, and ready once it appears."""
    config = render().gateway_config()
    http = _free_port()
    config["listen"]["smtp"] = f"127.0.0.1:{_free_port()}"
    config["listen"]["http"] = f"127.0.0.1:{http}"
    (tmp_path / "tls").mkdir()
    (tmp_path / "policy").mkdir()
    config["tls"]["cert"] = str(tmp_path / "tls" / "tls.crt")
    config["tls"]["key"] = str(tmp_path / "tls" / "tls.key")
    if missing != "tls":
        cert = trustme.CA().issue_cert(config["hostname"])
        cert.private_key_pem.write_to_path(tmp_path / "tls" / "tls.key")
        cert.cert_chain_pems[0].write_to_path(tmp_path / "tls" / "tls.crt")
    if missing != "policy":
        (tmp_path / "policy" / "policy.json").write_text('{"version": 1}', encoding="utf-8")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    argv = [
        str(image_venv / "bin" / "mxgate"),
        "gateway",
        "--config",
        str(tmp_path / "config.yaml"),
    ]
    argv += ["--policy", str(tmp_path / "policy" / "policy.json")]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_ready(f"http://127.0.0.1:{http}/livez", proc, deadline=30)
        if missing == "tls":
            assert _status(f"http://127.0.0.1:{http}/readyz") == 503
            # cert-manager writes the Secret; the kubelet updates the mount; the pod turns ready.
            cert = trustme.CA().issue_cert(config["hostname"])
            cert.private_key_pem.write_to_path(tmp_path / "tls" / "tls.key")
            cert.cert_chain_pems[0].write_to_path(tmp_path / "tls" / "tls.crt")
        assert _wait_ready(f"http://127.0.0.1:{http}/readyz", proc, deadline=30) == 200
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=40)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_dockerignore_lets_through_exactly_what_the_builder_copies() -> None:
    """.dockerignore excludes everything but the builder stage's COPY sources (tests, venvs
    and caches never reach the build context)."""
    stage = parse_builder_stage((REPO / "Dockerfile").read_text(encoding="utf-8"))
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "**"
    included = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert included == {c.rstrip("/") for c in stage.copies}


def test_final_stage_runs_what_the_chart_expects(render) -> None:
    """Same base as the builder (the venv's interpreter), the chart's UID, its ports, and its
    default command is the chart's gateway command."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text(encoding="utf-8"))
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+$", text, re.MULTILINE)
    final = text.split("\nFROM ", 2)[2]
    assert "COPY --from=builder /opt/mxgate /opt/mxgate" in final
    pod = render().get("Deployment", "-gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    uid = pod["securityContext"]["runAsUser"]
    assert re.search(rf"^USER {uid}:{uid}$", final, re.MULTILINE)
    exposed = {int(p) for p in re.findall(r"^EXPOSE (.+)$", final, re.MULTILINE)[0].split()}
    assert exposed == {p["containerPort"] for p in container["ports"]}
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (.+)$", final, re.MULTILINE)[0])
    cmd = json.loads(re.findall(r"^CMD (.+)$", final, re.MULTILINE)[0])
    assert entrypoint + cmd == container["command"] + container["args"]
