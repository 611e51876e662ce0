"""The docs cannot rot: every fenced block in README.md and docs/*.md that is marked with
`<!-- docs-test: KIND [key=value ...] -->` on the line before it is run or checked here.

Kinds (docs/development.md, "The docs are tested", is the user-facing description):
- `run`: a shell block; each command (backslash continuations and heredocs joined) must exit 0.
  With `$ ` prompts it is a console transcript: each command must exit `exit=N` (default 0) and
  print every shown output line. With `dev`, a real `mxgate dev` on port 0 runs meanwhile and
  the docs' 127.0.0.1:2525 / :8025 / :8026 and `.mxgate-dev` name its ports and directory.
- `file name=X`: the block's text is written to X in the page's scratch directory first.
- `config`: a whole gateway config file; `mxgate check-config` must accept it.
- `k8s-yaml`: Kubernetes objects; each must fit its CRD's schema (TLSPolicy: the chart's CRD;
  cert-manager kinds: cert-manager's CRDs), unknown fields refused.
  `config` and `k8s-yaml` take `base=FILE`: the block is an excerpt, merged over FILE first.
- `cluster`: commands for a cluster, checked without one: `helm install|upgrade` becomes
  `helm template` with the same flags and must render; `kubectl apply -f` files and heredocs
  are checked as `k8s-yaml`; every `service/NAME` or `get service NAME` names a Service the
  page's helm command renders.
Commands run in a scratch directory holding symlinks to examples/, tests/, helm/ and bench/,
so relative paths work as from the repository root and nothing is written into the tree.
Every relative link between the pages must name an existing file and heading anchor.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from crdschema import errors, version_schema

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
MARKER = re.compile(r"^<!-- docs-test: ([a-z0-9-]+)((?:\s+[a-z]+(?:=\S+)?)*)\s*-->\s*$")
KINDS = {"run", "file", "config", "k8s-yaml", "cluster"}
LINKED = ("examples", "tests", "helm", "bench", "pyproject.toml")
NO_GO_EXIT = 3


@dataclass(frozen=True)
class Block:
    """One marked fenced block: where it is, what to do with it, and its text."""

    page: str
    line: int
    kind: str
    options: dict[str, str]
    text: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}:{self.kind}"


def parse_blocks(page: str, text: str) -> list[Block]:
    """The marked blocks of one Markdown page; a marker not followed by a fence is an error."""
    lines = text.split("\n")
    found: list[Block] = []
    for i, line in enumerate(lines):
        match = MARKER.match(line)
        if match is None:
            if "docs-test" in line and line.lstrip().startswith("<!--"):
                raise ValueError(f"{page}:{i + 1}: malformed docs-test marker: {line!r}")
            continue
        kind = match.group(1)
        if kind not in KINDS:
            raise ValueError(f"{page}:{i + 1}: unknown docs-test kind {kind!r}")
        options = {opt.partition("=")[0]: opt.partition("=")[2] for opt in match.group(2).split()}
        fence = lines[i + 1] if i + 1 < len(lines) else ""
        if not fence.startswith("```"):
            raise ValueError(f"{page}:{i + 1}: docs-test marker not followed by a fenced block")
        ticks = fence[: len(fence) - len(fence.lstrip("`"))]
        end = next(j for j in range(i + 2, len(lines)) if lines[j].rstrip() == ticks)
        found.append(Block(page, i + 2, kind, options, "\n".join(lines[i + 2 : end]) + "\n"))
    return found


def all_blocks() -> list[Block]:
    return [
        b for p in PAGES for b in parse_blocks(p.relative_to(REPO).as_posix(), p.read_text("utf-8"))
    ]


def shell_commands(text: str) -> list[str]:
    """Commands of a shell block: continuations joined, heredoc bodies kept with their
    command, blank and comment-only lines dropped."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        heredoc = re.search(r"<<-?'?(\w+)'?", line)
        if heredoc:
            body = []
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            line = "\n".join([line, *body, heredoc.group(1)])
        out.append(line)
    return out


@dataclass
class Step:
    """One command of a console transcript and the output lines it must print."""

    command: str
    output: list[str] = field(default_factory=list)


def console_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    lines = text.rstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\") and i < len(lines):
                command = command[:-1] + " " + lines[i].strip()
                i += 1
            steps.append(Step(command))
        elif steps and line.strip() and line.strip() != "...":  # "..." elides output
            steps[-1].output.append(line.rstrip())
    return steps


def merged(block: Block) -> str:
    """The block's YAML, merged over its `base=FILE` (mappings merge, anything else replaces)."""
    if "base" not in block.options:
        return block.text

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {k: merge(base[k], v) if k in base else v for k, v in over.items()} | {
                k: v for k, v in base.items() if k not in over
            }
        return over

    base = yaml.safe_load((REPO / block.options["base"]).read_text(encoding="utf-8"))
    return yaml.safe_dump(merge(base, yaml.safe_load(block.text)), sort_keys=False)


# ---- running commands --------------------------------------------------------------------


@dataclass(frozen=True)
class Dev:
    """A running `mxgate dev` and how the docs' fixed addresses map onto it."""

    smtp: int
    http: int
    public: int
    state: Path

    def rewrite(self, command: str) -> str:
        command = command.replace("127.0.0.1:2525", f"127.0.0.1:{self.smtp}")
        command = command.replace("127.0.0.1:8025", f"127.0.0.1:{self.http}")
        command = command.replace("127.0.0.1:8026", f"127.0.0.1:{self.public}")
        return command.replace(".mxgate-dev", str(self.state))


@contextmanager
def mxgate_dev(tmp: Path) -> Iterator[Dev]:
    """`mxgate dev` on port 0; its banner names the ports it bound."""
    state = tmp / "dev-state"
    proc = subprocess.Popen(
        [
            *(str(VENV_BIN / "mxgate"), "dev", "--dir", str(state)),
            *("--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--public", "127.0.0.1:0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    banner = ""
    try:
        for line in proc.stdout:
            banner += line
            if "Press Ctrl-C to stop." in line:
                break
        else:
            pytest.fail(f"mxgate dev exited early:\n{banner}")
        ports = {
            name: int(port) for name, port in re.findall(r"(smtp|http|public)_port=(\d+)", banner)
        }
        yield Dev(ports["smtp"], ports["http"], ports["public"], state)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def scratch(tmp: Path) -> Path:
    """A working directory that looks like the repository root for reading."""
    for name in LINKED:
        (tmp / name).symlink_to(REPO / name)
    return tmp


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def write_files(page: str, cwd: Path) -> None:
    for block in all_blocks():
        if block.page == page and block.kind == "file":
            (cwd / block.options["name"]).write_text(block.text, encoding="utf-8")


def run_block(block: Block, cwd: Path, dev: Dev | None) -> list[str]:
    """Run one `run` block; the problems found (empty: the block does what the docs say)."""
    problems: list[str] = []
    steps = (
        console_steps(block.text)
        if any(line.startswith("$ ") for line in block.text.split("\n"))
        else [Step(c) for c in shell_commands(block.text)]
    )
    if not steps:
        return [f"{block.id}: no commands"]
    want_exit = int(block.options.get("exit", "0"))
    for step in steps:
        command = dev.rewrite(step.command) if dev else step.command
        done = run(command, cwd)
        said = done.stdout + done.stderr
        if done.returncode != want_exit:
            problems.append(
                f"{block.id}: `{step.command}` exited {done.returncode}, not {want_exit}:\n{said}"
            )
            continue
        for expected in step.output:
            shown = dev.rewrite(expected) if dev else expected
            if shown.strip() not in said:
                problems.append(f"{block.id}: `{step.command}` did not print {shown!r}:\n{said}")
    return problems


# ---- static checks for cluster commands -------------------------------------------------


@cache
def control_plane(what: str) -> Path:
    """helm or cert-manager's CRDs, as pinned and cached by scripts/build-control-plane.sh."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-control-plane.sh"), what],
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    if done.returncode == NO_GO_EXIT:
        pytest.skip(f"{what} cannot be built here: {done.stderr.strip()}")
    assert done.returncode == 0, f"build-control-plane.sh {what} failed:\n{done.stderr[-2000:]}"
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == what:
            return Path(parts[3])
    pytest.fail(f"build-control-plane.sh printed no {what} path:\n{done.stdout}")


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → schema for TLSPolicy, ClusterTLSPolicy and cert-manager's kinds."""
    crds = [
        yaml.safe_load(path.read_text())
        for path in sorted((REPO / "helm/mxgate/files/crds").glob("*.mxgate.io.yaml"))
    ]
    for path in sorted(control_plane("cert-manager-crds").glob("*.yaml")):
        crds += [d for d in yaml.safe_load_all(path.read_text()) if d]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in crds:
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            out[key] = version_schema(crd, version["name"])
    return out


def check_objects(where: str, text: str) -> list[str]:
    problems = []
    docs = [d for d in yaml.safe_load_all(text) if d]
    if not docs:
        return [f"{where}: no YAML objects"]
    for doc in docs:
        key = (doc.get("apiVersion", ""), doc.get("kind", ""))
        schema = schemas().get(key)
        if schema is None:
            problems.append(f"{where}: no schema for {key} (unknown kind or version)")
            continue
        problems += [f"{where}: {key[1]} {e}" for e in errors(schema, doc)]
    return problems


DROPPED_HELM_FLAGS = {"--create-namespace", "--reuse-values", "--wait", "--atomic", "--install"}


def helm_template(args: list[str], carried: list[str], cwd: Path) -> tuple[str, list[str]]:
    """Render `helm install|upgrade ARGS` as `helm template`; (manifests, problems)."""
    verb, release, chart, *rest = args
    flags = [a for a in rest if a not in DROPPED_HELM_FLAGS]
    template = [str(control_plane("helm")), "template", release, chart, *carried, *flags]
    template += ["--kube-version", kube_version()]
    done = subprocess.run(template, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return "", [f"`helm {verb} {release} {chart} ...` does not render:\n{done.stderr}"]
    return done.stdout, []


def kube_version() -> str:
    script = (REPO / "scripts" / "build-control-plane.sh").read_text(encoding="utf-8")
    match = re.search(r"^KUBE_VERSION=v?([0-9.]+)$", script, re.MULTILINE)
    assert match, "KUBE_VERSION not found in build-control-plane.sh"
    return match.group(1)


def check_mxgate_flags(words: list[str], cwd: Path) -> list[str]:
    """An mxgate command that needs a cluster to run: its subcommand and flags must exist."""
    done = run(f"mxgate {shlex.quote(words[1])} --help", cwd)
    if done.returncode != 0:
        return [f"`mxgate {words[1]}` is not a command:\n{done.stderr}"]
    flags = [w.split("=", 1)[0] for w in words[2:] if w.startswith("--")]
    return [f"`mxgate {words[1]}` has no {flag}" for flag in flags if flag not in done.stdout]


SERVICE_REF = re.compile(r"(?:\bservices?/|\bsvc/|\bget (?:service|svc) )([a-z0-9-]+)")


def check_cluster_page(blocks: list[Block], cwd: Path) -> list[str]:
    """Check a page's `cluster` blocks in order, carrying helm values to `--reuse-values`."""
    problems: list[str] = []
    carried: list[str] = []
    services: set[str] | None = None
    for block in blocks:
        console = any(line.startswith("$ ") for line in block.text.split("\n"))
        commands = (
            [s.command for s in console_steps(block.text)]
            if console
            else shell_commands(block.text)
        )
        for command in commands:
            first, _, heredoc = command.partition("\n")
            words = shlex.split(first.split("<<")[0], comments=True)
            if not words:
                continue
            if words[0] == "helm" and words[1] in {"install", "upgrade"}:
                manifests, found = helm_template(words[1:], carried, cwd)
                problems += [f"{block.id}: {p}" for p in found]
                if words[1] == "install":
                    carried = [a for a in words[4:] if a not in DROPPED_HELM_FLAGS]
                rendered = [d for d in yaml.safe_load_all(manifests) if d]
                services = {d["metadata"]["name"] for d in rendered if d["kind"] == "Service"}
            elif words[0] == "kubectl":
                if "apply" in words and heredoc:
                    problems += check_objects(f"{block.id} heredoc", heredoc.rsplit("\n", 1)[0])
                for flag, value in itertools.pairwise(words):
                    if flag == "-f" and value != "-":
                        path = cwd / value
                        if not path.is_file():
                            problems.append(f"{block.id}: kubectl -f {value}: no such file")
                        else:
                            problems += check_objects(f"{block.id} {value}", path.read_text())
                for name in SERVICE_REF.findall(first):
                    if services is None:
                        problems.append(f"{block.id}: service {name} before any helm install")
                    elif name not in services:
                        problems.append(
                            f"{block.id}: service {name} is not rendered ({sorted(services)})"
                        )
            elif words[0] == "mxgate":
                problems += [f"{block.id}: {p}" for p in check_mxgate_flags(words, cwd)]
            else:
                problems.append(f"{block.id}: `{words[0]}` is not a cluster command")
    return problems


# ---- the tests ---------------------------------------------------------------------------

BLOCKS = all_blocks()
RUN = [b for b in BLOCKS if b.kind == "run"]
CONFIGS = [b for b in BLOCKS if b.kind == "config"]
OBJECTS = [b for b in BLOCKS if b.kind == "k8s-yaml"]
CLUSTER_PAGES = sorted({b.page for b in BLOCKS if b.kind == "cluster"})


def test_the_docs_mark_blocks_of_every_kind() -> None:
    """The README's install and local steps are marked (an empty selection proves nothing)."""
    kinds = {b.kind for b in BLOCKS}
    assert kinds >= {"run", "k8s-yaml", "cluster", "config"}
    assert {b.page for b in BLOCKS if b.kind == "cluster"} >= {"README.md"}
    assert any(b.page == "README.md" and "dev" in b.options for b in RUN)


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_run_block(block: Block, tmp_path: Path) -> None:
    """Each runnable block exits as shown and prints what the docs show."""
    cwd = scratch(tmp_path)
    write_files(block.page, cwd)
    if "dev" in block.options:
        with mxgate_dev(tmp_path) as dev:
            problems = run_block(block, cwd, dev)
    else:
        problems = run_block(block, cwd, None)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("block", CONFIGS, ids=[b.id for b in CONFIGS])
def test_config_block(block: Block, tmp_path: Path) -> None:
    """Each whole config file shown is accepted by `mxgate check-config`."""
    cwd = scratch(tmp_path)
    write_files(block.page, cwd)
    (cwd / "shown.yaml").write_text(merged(block), encoding="utf-8")
    done = run("mxgate check-config shown.yaml", cwd)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("block", OBJECTS, ids=[b.id for b in OBJECTS])
def test_k8s_yaml_block(block: Block) -> None:
    """Each Kubernetes object shown fits its CRD's schema."""
    assert check_objects(block.id, merged(block)) == []


@pytest.mark.parametrize("page", CLUSTER_PAGES)
def test_cluster_blocks(page: str, tmp_path: Path) -> None:
    """A page's helm and kubectl commands render, apply valid objects and name real Services."""
    cwd = scratch(tmp_path)
    problems = check_cluster_page(
        [b for b in BLOCKS if b.kind == "cluster" and b.page == page], cwd
    )
    assert problems == [], "\n".join(problems)


# ---- the checker catches rot ------------------------------------------------------------


def _one(text: str) -> Block:
    (block,) = parse_blocks("rotten.md", text)
    return block


def test_a_renamed_command_fails(tmp_path: Path) -> None:
    """A command that no longer exists, or a flag it no longer takes, fails its block."""
    cwd = scratch(tmp_path)
    good = _one("<!-- docs-test: run -->\n```bash\nmxgate config-keys\n```\n")
    assert run_block(good, cwd, None) == []
    for rotten in (
        "mxgate config-key",
        "mxgate check-config --strict examples/gateway-minimal.yaml",
    ):
        block = _one(f"<!-- docs-test: run -->\n```bash\n{rotten}\n```\n")
        assert run_block(block, cwd, None) != []


def test_wrong_shown_output_fails(tmp_path: Path) -> None:
    """A console transcript whose shown output the command no longer prints fails."""
    cwd = scratch(tmp_path)
    command = "$ mxgate check-config examples/gateway-minimal.yaml"
    text = "<!-- docs-test: run -->\n```console\n" + command + "\n{}\n```\n"
    assert run_block(_one(text.format("examples/gateway-minimal.yaml: ok")), cwd, None) == []
    assert run_block(_one(text.format("examples/gateway-minimal.yaml: valid")), cwd, None) != []


def test_a_wrong_helm_value_or_service_or_field_fails(tmp_path: Path) -> None:
    """A helm command missing a required value, a Service the chart does not render and an
    unknown TLSPolicy field are each caught."""
    cwd = scratch(tmp_path)
    install = (
        "helm install mxgate ./helm/mxgate --namespace mail "
        "--set gateway.hostname=mx1.example.com --set 'gateway.domains={example.com}' "
    )
    upstream = "--set 'gateway.upstreams[0].address=postfix:25'"
    good = _one(
        f"<!-- docs-test: cluster -->\n```bash\n{install}{upstream}\n"
        "kubectl -n mail get service mxgate-gateway\n```\n"
    )
    assert check_cluster_page([good], cwd) == []
    missing = _one(f"<!-- docs-test: cluster -->\n```bash\n{install}\n```\n")
    assert any("does not render" in p for p in check_cluster_page([missing], cwd))
    renamed = _one(
        f"<!-- docs-test: cluster -->\n```bash\n{install}{upstream}\n"
        "kubectl -n mail get service mxgate-smtp\n```\n"
    )
    assert any("mxgate-smtp" in p for p in check_cluster_page([renamed], cwd))
    policy = (
        "apiVersion: mxgate.io/v1alpha1\nkind: TLSPolicy\nmetadata: {name: p}\n"
        "spec:\n  mode: audit\n  scope: {recipientDomains: [example.com]}\n"
    )
    assert check_objects("ok", policy) == []
    assert check_objects("typo", policy.replace("recipientDomains", "recipientDomain")) != []


def test_markers_are_strict() -> None:
    """A misspelt kind or a marker without its block is an error, not a silently skipped block."""
    with pytest.raises(ValueError, match="unknown docs-test kind"):
        parse_blocks("x.md", "<!-- docs-test: runn -->\n```bash\ntrue\n```\n")
    with pytest.raises(ValueError, match="not followed"):
        parse_blocks("x.md", "<!-- docs-test: run -->\n\n```bash\ntrue\n```\n")


def test_a_wrong_config_excerpt_fails(tmp_path: Path) -> None:
    """An excerpt merged over its base is checked by `mxgate check-config`: a bad value fails."""
    cwd = scratch(tmp_path)
    text = "<!-- docs-test: config base=examples/gateway-minimal.yaml -->\n```yaml\n{}\n```\n"
    good = merged(_one(text.format("policy: {mode: audit}")))
    bad = merged(_one(text.format("policy: {mode: audits}")))
    for shown, status in ((good, 0), (bad, 1)):
        (cwd / "shown.yaml").write_text(shown, encoding="utf-8")
        assert run("mxgate check-config shown.yaml", cwd).returncode == status
    assert "hostname: mx.example.test" in good  # the base's keys are kept


# ---- links between the pages ------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file (lowercase, punctuation dropped, - for space)."""
    found: set[str] = set()
    fence = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


def broken_links(path: Path) -> list[str]:
    """Relative links of one page whose file or heading anchor does not exist."""
    problems = []
    fence = False
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith("```"):
            fence = not fence
        if fence:
            continue
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            where = f"{path.name}:{number}: {target}"
            if not dest.exists():
                problems.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: no heading with that anchor")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_links_resolve(page: Path) -> None:
    """Every relative link names an existing file, and its #anchor an existing heading."""
    assert broken_links(page) == []


def test_a_broken_link_fails(tmp_path: Path) -> None:
    """A link to a moved file or a renamed heading is caught."""
    page = REPO / "docs" / "operations.md"
    assert "mxgateupstreamsdown" in anchors(page)  # runbook_url anchors (helm values)
    assert "alerts-and-runbooks" in anchors(page)
    for name in ("operations.md", "policy.md"):
        (tmp_path / name).write_text((REPO / "docs" / name).read_text("utf-8"), "utf-8")
    rotten = tmp_path / "rotten.md"
    rotten.write_text(
        "[a](operations.md#alerts-and-runbooks) [b](nowhere.md) [c](policy.md#no-such)\n",
        encoding="utf-8",
    )
    found = broken_links(rotten)
    assert [p.split(": ", 1)[1] for p in found] == [
        "nowhere.md: no such file",
        "policy.md#no-such: no heading with that anchor",
    ]
