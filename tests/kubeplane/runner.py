"""Run a Kubernetes CLI (kubectl or helm) against a kubeconfig and hand back the result.

Only process plumbing: no retries, no parsing beyond ``json``; it must not pick a cluster
itself (the kubeconfig is always explicit) or write under ~/.kube.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class CommandFailed(AssertionError):
    """A kubectl or helm command exited non-zero where the test expected success."""


@dataclass(frozen=True)
class Runner:
    """Runs one CLI (kubectl or helm) against a kubeconfig; returns the finished process."""

    binary: Path
    kubeconfig: Path

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 90,
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig)}
        env.pop("HELM_NAMESPACE", None)
        # kubectl's discovery cache goes next to the kubeconfig, never into ~/.kube.
        env["KUBECACHEDIR"] = str(self.kubeconfig.parent / "kube-cache")
        argv = [str(self.binary), *args]
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandFailed(
                f"{' '.join(argv[:1] + list(args))} -> exit {done.returncode}\n{done.stderr}"
            )
        return done

    def json(self, *args: str, kubeconfig: Path | None = None) -> Any:
        """Run with ``-o json`` and parse stdout."""
        return json.loads(self(*args, "-o", "json", kubeconfig=kubeconfig).stdout)
