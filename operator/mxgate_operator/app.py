"""The ``mxgate-operator`` console script: kopf's ``run`` with our handlers preloaded.

Every kopf option passes through (``--namespace``, ``--standalone``, ``--liveness``,
``--verbose``). It must not parse options itself beyond a default namespace.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

import kopf
from kopf import cli as kopf_cli

from mxgate_operator import handlers
from mxgate_operator.settings import OperatorSettings, help_text

ONE_NAMESPACE = ("-n", "--namespace")
ALL_NAMESPACES = ("-A", "--all-namespaces")
NAMESPACE_FLAGS = ONE_NAMESPACE + ALL_NAMESPACES


def kopf_args(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``kopf run`` arguments: ours plus a namespace from $MXGATE_NAMESPACE if none is given."""
    args = ["run", *argv]
    has_ns = any(a in NAMESPACE_FLAGS or a.startswith("--namespace=") for a in argv)
    if not has_ns and env.get("MXGATE_NAMESPACE"):
        args.append(f"--namespace={env['MXGATE_NAMESPACE']}")
    return args


def home_namespace(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """``$MXGATE_NAMESPACE``, else the one namespace a hand-run operator is given with ``-n``.

    The home namespace holds the release's Lease: without one there is no leader election,
    so an operator started by hand with ``-n mail`` next to the chart's would fight it.
    Several namespaces, a glob or ``--all-namespaces`` name no home ("").
    """
    if env.get("MXGATE_NAMESPACE"):
        return env["MXGATE_NAMESPACE"]
    given: list[str] = []
    for i, arg in enumerate(argv):
        if arg in ONE_NAMESPACE and i + 1 < len(argv):
            given.append(argv[i + 1])
        elif arg.startswith("--namespace="):
            given.append(arg.partition("=")[2])
        elif arg in ALL_NAMESPACES:
            return ""
    if len(given) == 1 and not any(c in given[0] for c in "*?[],!"):
        return given[0]
    return ""


def main(argv: Sequence[str] | None = None) -> None:
    """Register handlers in kopf's default registry, then hand over to kopf's CLI."""
    given = list(sys.argv[1:] if argv is None else argv)
    if "--help" in given or "-h" in given:
        print(help_text() + "\n\nkopf's options (all pass through):\n")
    env = {**os.environ, "MXGATE_NAMESPACE": home_namespace(given, os.environ)}
    handlers.register(kopf.get_default_registry(), OperatorSettings.from_env(env))
    args = kopf_args(given, os.environ)
    kopf_cli.main(args=args, prog_name="mxgate-operator")


if __name__ == "__main__":
    main()
