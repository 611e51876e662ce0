"""OpenAPI-shaped checks for untyped CR data: collect issues with Kubernetes' wording.

The messages reuse the API server's phrases ("Unsupported value", "Too many",
"should match") so one table of examples can be checked against both. Pure: it
knows no TLSPolicy field names and must not raise for bad input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


def re2(pattern: str) -> str:
    """A CRD (RE2) pattern for Python's ``re``: RE2's ``\\s`` is ``[\\t\\n\\f\\r ]`` only,
    Python's also matches U+2028, U+0085 and more. Our patterns use ``\\s`` inside classes."""
    return pattern.replace("\\s", "\\t\\n\\f\\r ")


@dataclass(frozen=True)
class Issue:
    """One validation problem at a field path such as ``spec.scope.clientCIDRs[0]``."""

    path: str
    message: str


class Checker:
    """Collects issues while reading an untyped mapping; OpenAPI-shaped messages."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def mapping(self, path: str, value: object) -> Mapping[str, object]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.add(path, f"{path} in body must be of type object")
            return {}
        return value

    def string(
        self,
        path: str,
        value: object,
        *,
        default: str | None = None,
        enum: Sequence[str] = (),
        max_length: int | None = None,
        pattern: str | None = None,
    ) -> str | None:
        if value is None:
            return default
        if not isinstance(value, str):
            self.add(path, f"{path} in body must be of type string")
            return None
        if enum and value not in enum:
            allowed = ", ".join(f'"{e}"' for e in enum)
            self.add(path, f'Unsupported value: "{value}": supported values: {allowed}')
            return None
        if max_length is not None and len(value) > max_length:  # characters, as the server
            self.add(path, f"Too long: may not be more than {max_length} bytes")
            return None
        if pattern is not None and not re.fullmatch(re2(pattern), value):
            self.add(path, f"{path} in body should match '{pattern}'")
            return None
        return value

    def integer(self, path: str, value: object, *, default: int | None, lo: int, hi: int) -> int:
        if value is None:
            return default if default is not None else 0
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"{path} in body must be of type integer")
            return 0
        if value < lo:
            self.add(path, f"{path} in body should be greater than or equal to {lo}")
        if value > hi:
            self.add(path, f"{path} in body should be less than or equal to {hi}")
        return value

    def string_set(
        self,
        path: str,
        value: object,
        *,
        max_items: int,
        min_items: int = 0,
        item: Callable[[str, object], str | None],
    ) -> tuple[str, ...]:
        if value is None:
            value = []
        if not isinstance(value, list):
            self.add(path, f"{path} in body must be of type array")
            return ()
        if len(value) > max_items:
            self.add(path, f"Too many: {len(value)}: must have at most {max_items} items")
        if len(value) < min_items:
            self.add(path, f"{path} in body should have at least {min_items} items")
        out: list[str] = []
        for i, raw in enumerate(value):
            parsed = item(f"{path}[{i}]", raw)
            if parsed is None:
                continue
            if parsed in out:
                self.add(f"{path}[{i}]", f'Duplicate value: "{parsed}"')
            out.append(parsed)
        return tuple(out)
