"""The hash-locked requirement files stay in step with pyproject.toml.

requirements/{runtime,build,dev,chart-tools}.txt are written by `make lock` (scripts/lock.py).
Offline checks, no registry needed: each lock carries the digest of the requirements it was
made from, every declared requirement is pinned at a version its range admits, every pin has
hashes, and a package pinned in the image's locks and the dev lock has one version. Adding,
removing or changing a dependency in pyproject.toml without `make lock` fails here, with the
name that is off.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("runtime", "build", "dev", "chart-tools")
# The one platform the locks are resolved for: the image base and CI (scripts/lock.py).
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def _lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mxgate_lock", ROOT / "scripts" / "lock.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOCK = _lock_script()


@dataclass(frozen=True)
class Pin:
    """One `name==version` entry of a lock and its hashes."""

    version: str
    hashes: tuple[str, ...]


def parse_lock(text: str) -> tuple[str, dict[str, Pin]]:
    """The recorded inputs digest and the pins of one lock file."""
    digest = ""
    if text.startswith(LOCK.DIGEST_PREFIX):
        digest = text.splitlines()[0].removeprefix(LOCK.DIGEST_PREFIX).strip()
    joined = re.sub(r"\\\n\s*", " ", text)
    pins: dict[str, Pin] = {}
    for raw in joined.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *options = line.split(" --")
        name, sep, version = spec.strip().partition("==")
        assert sep, f"not a pin: {line!r}"
        hashes = tuple(o.strip().removeprefix("hash=") for o in options if o.startswith("hash="))
        pins[canonicalize_name(name)] = Pin(version.strip(), hashes)
    return digest, pins


def problems(pyproject: dict[str, Any], locks: dict[str, str]) -> list[str]:
    """Everything that says the locks were not made from this pyproject.toml."""
    found: list[str] = []
    parsed = {name: parse_lock(text) for name, text in locks.items()}
    for lock, (digest, pins) in parsed.items():
        where = f"requirements/{lock}.txt"
        declared = LOCK.inputs(pyproject, lock)
        if digest != LOCK.digest(declared):
            found.append(f"{where} was made from other requirements than pyproject.toml's")
        for text in declared:
            req = Requirement(text)
            if req.marker and not req.marker.evaluate(TARGET):
                continue
            pin = pins.get(canonicalize_name(req.name))
            if pin is None:
                found.append(f"{where} does not pin {req.name}")
            elif not req.specifier.contains(pin.version, prereleases=True):
                found.append(f"{where} pins {req.name}=={pin.version}, outside {req.specifier}")
        found += [f"{where} pins {n} without a hash" for n, p in pins.items() if not p.hashes]
    dev = parsed["dev"][1]
    for lock in ("runtime", "build"):
        for name, pin in parsed[lock][1].items():
            if name in dev and dev[name].version != pin.version:
                found.append(
                    f"{name} is {pin.version} in {lock}.txt but {dev[name].version} in dev"
                )
            elif name not in dev:
                found.append(f"{name} is in {lock}.txt but not in dev.txt")
    return found


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _locks() -> dict[str, str]:
    return {n: (ROOT / "requirements" / f"{n}.txt").read_text(encoding="utf-8") for n in LOCKS}


def test_the_checked_in_locks_match_pyproject() -> None:
    """The locks in the tree were made from today's pyproject.toml (else: `make lock`)."""
    found = problems(_pyproject(), _locks())
    assert not found, "stale locks, run `make lock`:\n" + "\n".join(found)


def test_locks_pin_exact_versions_with_hashes_for_the_image_platform() -> None:
    """Every line is name==version with sha256 hashes, and the header names `make lock`."""
    for name, text in _locks().items():
        assert "#    make lock\n" in text, name
        _, pins = parse_lock(text)
        assert pins, name
        for pin in pins.values():
            assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes)
    assert "uvloop" in parse_lock(_locks()["runtime"])[1]  # the linux-only dependency resolved


def test_runtime_lock_holds_no_test_or_build_tools() -> None:
    """The image's lock carries the product's dependencies only."""
    _, pins = parse_lock(_locks()["runtime"])
    assert not {"pytest", "mypy", "ruff", "uv", "pip", "setuptools", "cyclonedx-bom"} & set(pins)


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        ("add", ["runtime.txt was made from other", "runtime.txt does not pin httpx", "dev.txt"]),
        ("narrow", ["runtime.txt pins aiohttp==", "outside >=99"]),
        ("remove", ["runtime.txt was made from other", "dev.txt was made from other"]),
        ("add-test", ["dev.txt does not pin hypercorn"]),
        ("add-build-tool", ["build.txt does not pin twine"]),
        ("add-chart-tool", ["chart-tools.txt does not pin yamllint"]),
    ],
)
def test_a_dependency_changed_without_relocking_is_reported(edit: str, expect: list[str]) -> None:
    """Adding, narrowing or removing a requirement in pyproject.toml makes the locks stale."""
    pyproject = copy.deepcopy(_pyproject())
    deps = pyproject["project"]["dependencies"]
    if edit == "add":
        deps.append("httpx>=0.27")
    elif edit == "narrow":
        deps[:] = ["aiohttp>=99" if d.startswith("aiohttp") else d for d in deps]
    elif edit == "remove":
        deps[:] = [d for d in deps if not d.startswith("kopf")]
    elif edit == "add-test":
        pyproject["project"]["optional-dependencies"]["test"].append("hypercorn")
    elif edit == "add-build-tool":
        pyproject["tool"]["mxgate"]["lock"]["build-tools"].append("twine")
    else:
        pyproject["tool"]["mxgate"]["lock"]["chart-tools"].append("yamllint")
    found = "\n".join(problems(pyproject, _locks()))
    for text in expect:
        assert text in found


def test_a_pin_that_drifts_between_locks_is_reported() -> None:
    """The image and the dev venv run the same version of every shared package."""
    locks = _locks()
    _, pins = parse_lock(locks["runtime"])
    version = pins["aiohttp"].version
    locks["dev"] = locks["dev"].replace(f"\naiohttp=={version} ", "\naiohttp==3.0.0 ")
    assert f"aiohttp is {version} in runtime.txt but 3.0.0 in dev" in problems(_pyproject(), locks)
