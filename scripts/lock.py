"""Write the hash-locked requirement files (`make lock`) from pyproject.toml with uv.

requirements/runtime.txt  what the image ships: [project] dependencies
requirements/build.txt    what builds the image but is not shipped: the build backend
                          ([build-system] requires) and [tool.mxgate.lock] build-tools
requirements/dev.txt      `make dev` / `make test` / CI: everything above plus the test and
                          bench extras, with the runtime and build pins as constraints
requirements/chart-tools.txt  the chart and image checkers' own venv (.venv-tools):
                          [tool.mxgate.lock] chart-tools, resolved on their own

Every lock targets CPython 3.11 on x86_64 glibc Linux (the image base and CI), whatever the
machine running `make lock`. Each file starts with the digest of the requirements it was made
from; tests/test_locks.py fails when pyproject.toml changes them without a relock. This script
only writes files; it never installs anything.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "requirements"
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
DIGEST_PREFIX = "# inputs-sha256: "
EXTRAS = ("test", "bench")


def inputs(pyproject: dict[str, object], lock: str) -> list[str]:
    """The requirement strings one lock is made from, in declaration order."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    build = pyproject["build-system"]
    assert isinstance(build, dict)
    tool = pyproject.get("tool", {})
    assert isinstance(tool, dict)
    runtime = list(project["dependencies"])
    builder = list(build["requires"]) + list(tool["mxgate"]["lock"]["build-tools"])
    if lock == "runtime":
        return runtime
    if lock == "build":
        return builder
    if lock == "chart-tools":
        return list(tool["mxgate"]["lock"]["chart-tools"])
    extras = project["optional-dependencies"]
    return runtime + builder + [r for extra in EXTRAS for r in extras[extra]]


def digest(requirements: list[str]) -> str:
    """A stable digest of requirement strings (whitespace-insensitive, order-sensitive)."""
    text = "\n".join("".join(r.split()) for r in requirements)
    return hashlib.sha256(text.encode()).hexdigest()


def compile_lock(uv: str, lock: str, requirements: list[str], constraints: list[Path]) -> None:
    """Resolve `requirements` with uv into requirements/<lock>.txt, digest line first."""
    out = LOCKS / f"{lock}.txt"
    with tempfile.TemporaryDirectory() as tmp:
        # Relative names inside a scratch folder keep the `# via` lines machine-independent.
        work = Path(tmp)
        (work / f"{lock}.in").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        argv = [uv, "pip", "compile", f"{lock}.in", "--quiet", "--generate-hashes"]
        argv += ["--python-version", PYTHON_VERSION, "--python-platform", PLATFORM]
        argv += ["--custom-compile-command", "make lock", "--output-file", "out.txt"]
        for c in constraints:
            (work / c.name).write_bytes(c.read_bytes())
            argv += ["--constraints", c.name]
        subprocess.run(argv, check=True, cwd=work)  # noqa: S603 (our argv, no shell)
        body = (work / "out.txt").read_text(encoding="utf-8")
    out.write_text(f"{DIGEST_PREFIX}{digest(requirements)}\n{body}", encoding="utf-8")
    print(f"lock: wrote {out.relative_to(REPO)}")


def main() -> int:
    uv = sys.argv[1] if len(sys.argv) > 1 else "uv"
    uv = str(Path(uv).resolve()) if "/" in uv else uv
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    LOCKS.mkdir(exist_ok=True)
    runtime, build = LOCKS / "runtime.txt", LOCKS / "build.txt"
    compile_lock(uv, "runtime", inputs(pyproject, "runtime"), [])
    compile_lock(uv, "build", inputs(pyproject, "build"), [runtime])
    compile_lock(uv, "dev", inputs(pyproject, "dev"), [runtime, build])
    compile_lock(uv, "chart-tools", inputs(pyproject, "chart-tools"), [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
