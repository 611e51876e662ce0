"""The gateway's single error root.

Exceptions are for broken invariants and I/O; expected outcomes (a refused
recipient, an upstream 4xx) are values, not exceptions.
"""

from __future__ import annotations


class MxgateError(Exception):
    """Root of every exception the gateway raises on purpose."""


class ConfigError(MxgateError, ValueError):
    """A configuration file could not be read or did not validate.

    ``errors`` holds one ``(field_path, message)`` pair per problem.
    """

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "; ".join(f"{path}: {msg}" for path, msg in errors)
        super().__init__(f"{source}: {lines}")
