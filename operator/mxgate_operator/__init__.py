"""mxgate operator: reconciles TLSPolicy resources into gateway policy and Certificates.

It imports only ``mxgate_gateway.config.model`` from the gateway (the rendering contract).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:  # one source of truth: pyproject.toml's version, as installed
    __version__ = version("mxgate")
except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0+unknown"
