# syntax=docker/dockerfile:1
# mxgate: one image, two entry points. The chart runs `mxgate gateway ...` for the gateway and
# `mxgate-operator ...` for the operator. tests/helm/test_image_recipe.py performs the same
# install steps in a fresh venv (no Docker engine needed) and smoke-starts the result.

# Pinned slim base (Python minor matches pyproject's requires-python and the CI venv).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from, plus the locks: .dockerignore keeps the rest out.
COPY pyproject.toml README.md ./
COPY requirements/runtime.txt requirements/build.txt requirements/
COPY gateway/ gateway/
COPY operator/ operator/
# Reproducible: every third-party file is pinned by hash (requirements/*.txt, `make lock`).
# A throwaway tools venv (pip, setuptools, wheel, cyclonedx-bom from build.txt) builds
# mxgate's wheel from this tree without build isolation; the image venv gets exactly the
# runtime lock (binary wheels only) and that wheel, and no pip of its own. It records what it
# holds in /opt/mxgate/share/mxgate: the lock, `pip freeze` and a CycloneDX SBOM (offline,
# reproducible). SOURCE_DATE_EPOCH fixes the wheel's file times, so two builds of one commit
# give byte-identical wheels (same hash in pip-freeze.txt). Both entry points must start.
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r requirements/build.txt \
 && SOURCE_DATE_EPOCH=315532800 /opt/build/bin/pip wheel --no-deps --no-build-isolation \
    --wheel-dir /dist . \
 && python -m venv --without-pip /opt/mxgate \
 && /opt/build/bin/pip --python /opt/mxgate/bin/python install --require-hashes \
    --only-binary=:all: --no-deps -r requirements/runtime.txt \
 && /opt/build/bin/pip --python /opt/mxgate/bin/python install --no-deps --no-index \
    /dist/mxgate-*.whl \
 && /opt/build/bin/pip --python /opt/mxgate/bin/python check \
 && mkdir -p /opt/mxgate/share/mxgate \
 && cp requirements/runtime.txt /opt/mxgate/share/mxgate/requirements.lock \
 && /opt/build/bin/pip --python /opt/mxgate/bin/python freeze --all \
    > /opt/mxgate/share/mxgate/pip-freeze.txt \
 && /opt/build/bin/cyclonedx-py environment --output-reproducible --pyproject pyproject.toml \
    -o /opt/mxgate/share/mxgate/sbom.cdx.json /opt/mxgate/bin/python \
 && /opt/mxgate/bin/mxgate --version \
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
