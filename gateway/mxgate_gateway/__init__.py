"""mxgate gateway: a stateless SMTP edge that relays in-line and measures TLS.

This package holds the gateway process only; it never imports the operator.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:  # one source of truth: pyproject.toml's version, as installed
    __version__ = version("mxgate")
except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0+unknown"
