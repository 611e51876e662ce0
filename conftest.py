"""Root conftest: loads suite-wide pytest plugins (the real Kubernetes control plane).

Holds no fixtures itself; `tests/kubeplane` does (importable via `pythonpath` in pyproject).
"""

from __future__ import annotations

pytest_plugins = ["kubeplane.plugin"]
