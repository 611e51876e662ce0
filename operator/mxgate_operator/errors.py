"""The operator's one error root.

Exceptions are for broken invariants and I/O; expected outcomes (an invalid
policy, a conflict) are values, never exceptions. This module holds no logic.
"""

from __future__ import annotations


class OperatorError(Exception):
    """Root of every exception the operator raises on purpose."""


class KubeError(OperatorError):
    """The Kubernetes API refused or failed a request (carries the HTTP status)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
