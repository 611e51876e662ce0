# syntax=docker/dockerfile:1
# mxgate: one image, two entry points. The chart runs `mxgate gateway ...` for the gateway and
# `mxgate-operator ...` for the operator. tests/helm/test_image_recipe.py performs the same
# install steps in a fresh venv (no Docker engine needed) and smoke-starts the result.

# Pinned slim base (Python minor matches pyproject's requires-python and the CI venv).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from: .dockerignore keeps tests, venvs and caches out.
COPY pyproject.toml README.md ./
COPY gateway/ gateway/
COPY operator/ operator/
# pip builds the wheel through the PEP 517 backend pyproject.toml names, then installs it with
# its dependencies (binary wheels only) into the venv the final stage copies; both entry
# points must start.
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/mxgate \
 && /opt/mxgate/bin/pip install --only-binary=:all: /dist/mxgate-*.whl \
 && /opt/mxgate/bin/mxgate --help >/dev/null \
 && /opt/mxgate/bin/mxgate-operator --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mxgate" \
      org.opencontainers.image.description="Kubernetes-native SMTP edge gateway and TLSPolicy operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# Fixed non-root UID/GID, matching the chart's gateway.runAsUser.
RUN groupadd --system --gid 10001 mxgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin mxgate
COPY --from=builder /opt/mxgate /opt/mxgate
ENV PATH=/opt/mxgate/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
# SMTP (the Service maps port 25 to it) and HTTP (/livez, /readyz, /metrics, /report).
EXPOSE 2525 8025 8026
ENTRYPOINT ["mxgate"]
CMD ["gateway", "--config", "/etc/mxgate/config/config.yaml", "--policy", "/etc/mxgate/policy/policy.json"]
