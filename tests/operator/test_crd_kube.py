"""Against a real kube-apiserver: the CRD is accepted and the server agrees with spec.py.

The same table (validation_table.py) drives the Python validator and these server-side
dry-run creates, so a CEL rule and its Python mirror cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_helpers import install_crd, remove_crd
from validation_table import BAD, GOOD, Case

from kubeplane.plugin import Runner

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def crd_namespace(kubectl: Runner) -> Iterator[str]:
    """The TLSPolicy CRD installed from the chart's file, and a namespace to try CRs in."""
    created = install_crd(kubectl)
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", namespace)
    yield namespace
    if created:
        remove_crd(kubectl)


def server_create(kubectl: Runner, namespace: str, case: Case) -> tuple[int, str]:
    done = kubectl(
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=json.dumps(case.manifest()),
        check=False,
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize("case", GOOD, ids=lambda c: c.id)
def test_server_accepts_good_policies(kubectl: Runner, crd_namespace: str, case: Case) -> None:
    """Every good example of the shared table is accepted by the API server."""
    code, err = server_create(kubectl, crd_namespace, case)
    assert code == 0, err


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_server_refuses_bad_policies(kubectl: Runner, crd_namespace: str, case: Case) -> None:
    """Every bad example is refused by the server with the table's path and message."""
    code, err = server_create(kubectl, crd_namespace, case)
    assert code != 0
    assert case.fragment in err, err
    if case.path != "(root)":
        assert f"{case.path}: " in err, err


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("invalid-tlspolicy-*.yaml")), ids=str)
def test_server_refuses_invalid_examples(kubectl: Runner, crd_namespace: str, path: Path) -> None:
    """`kubectl apply` of each invalid example fails with the message its comment names."""
    expect = next(
        line.removeprefix("# expect:").strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect:")
    )
    done = kubectl("apply", "--dry-run=server", "-n", crd_namespace, "-f", str(path), check=False)
    assert done.returncode != 0
    assert expect in done.stderr, done.stderr


def test_server_accepts_good_examples(kubectl: Runner, crd_namespace: str) -> None:
    """`kubectl apply` of every tlspolicy-*.yaml example succeeds (server-side dry run)."""
    for path in sorted(EXAMPLES.glob("tlspolicy-*.yaml")):
        kubectl("apply", "--dry-run=server", "-n", crd_namespace, "-f", str(path))


def test_explain_reads_well(kubectl: Runner, crd_namespace: str) -> None:
    """`kubectl explain tlspolicy.spec.scope` shows the descriptions of the scope fields."""
    out = kubectl("explain", "tlspolicy.spec.scope").stdout
    assert "Where the policy applies" in out
    assert "clientCIDRs" in out
    assert "Client networks" in out


def test_crd_names_and_printer_columns(kubectl: Runner, crd_namespace: str) -> None:
    """The server accepted the short name tlsp and the printer columns."""
    crd = kubectl.json("get", "crd", "tlspolicies.mxgate.io")
    assert "tlsp" in crd["status"]["acceptedNames"]["shortNames"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == [
        *("Mode", "Listener", "Ready", "Would-Refuse %", "Age"),
        *("Reason", "Message", "Secret", "NotAfter"),  # -o wide only (issue 16 item 7)
    ]
    wide = {c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert {
        c["name"]
        for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
        if c.get("priority") == 1
    } == wide - {"Mode", "Listener", "Ready", "Would-Refuse %", "Age"}
