"""Config validation errors in users' words: one line per real mistake, no validator jargon.

Turns pydantic's error records into (field path, message) pairs: "domains must be a list of
domain names", not "Input should be a valid tuple"; an unknown key names the closest known
one; follow-on errors (a list "too short" only because its items were refused) are dropped.
Pure: it must not read files, print or log.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from mxgate_gateway.config.keys import Key, key_index

# Errors that only restate a problem already reported on a field inside the same value.
_FOLLOW_ON = {"too_short", "missing"}
_TYPE_ERRORS = {
    "string_type", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
    "bool_type", "bool_parsing", "tuple_type", "list_type", "dict_type", "model_type",
    "model_attributes_type", "enum", "literal_error", "is_instance_of", "path_type",
}  # fmt: skip
_YAML_HINT = {bool: "YAML read it as true/false", int: "YAML read it as a number",
              float: "YAML read it as a number"}  # fmt: skip


def format_loc(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as ``upstreams[0].address``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _generic(loc: Sequence[int | str]) -> str:
    """``upstreams[0].address`` -> ``upstreams[].address`` (the key table's spelling)."""
    return re.sub(r"\[\d+\]", "[]", format_loc(loc))


def _a(kind: str) -> str:
    if kind.startswith(("one of", "true or false", "text")):
        return kind
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


def _section(keys: Mapping[str, Key], path: str) -> str:
    """What a section must look like: a mapping, naming its required keys."""
    required = [k for k in _siblings(keys, path) if keys[f"{path}.{k}"].default == "(required)"]
    shape = "a section of keys (a YAML mapping)"
    return shape + (f" with {', '.join(required)}" if required else "")


def _closest(name: str, known: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _siblings(keys: Mapping[str, Key], parent: str) -> list[str]:
    prefix = f"{parent}." if parent else ""
    return [
        p.removeprefix(prefix)
        for p in keys
        if p.startswith(prefix) and "." not in p.removeprefix(prefix).replace("[].", "\0")
    ]


def word(err: Mapping[str, Any], keys: Mapping[str, Key], loc: Sequence[int | str]) -> str:
    """One pydantic error record as a sentence about the field at ``loc`` (not included)."""
    kind_name = str(err["type"])
    ctx = err.get("ctx") or {}
    path = _generic(loc)
    key = keys.get(path)
    what = key.kind.split(",")[0] if key else ""
    given = err.get("input")
    scalar = isinstance(given, str | int | float | bool)
    if kind_name in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be {_section(keys, path)}" + (f", not {given!r}" if scalar else "")
    if kind_name == "extra_forbidden":
        parent = _generic(loc[:-1]) if len(loc) > 1 else ""
        hint = _closest(str(loc[-1]), _siblings(keys, parent))
        return f"unknown key{hint}; `mxgate config-keys` lists every key"
    if kind_name == "missing":
        if what == "list of sections":
            return f"is required: a list, each entry {_section(keys, path + '[]')}"
        if what == "section":
            return f"is required: {_section(keys, path)}"
        return "is required" + (f" ({_a(what)})" if what else "")
    if kind_name in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"must be one of {expected}, not {given!r}"
    if kind_name in _TYPE_ERRORS:
        read_as = _YAML_HINT.get(type(given))
        must = f"must be {_a(what)}" if what else "has the wrong type"
        if read_as and what in ("text", "host:port", "domain name", "file path"):
            return f"{must} ({read_as}: put it in quotes)"
        if what.startswith("list") and isinstance(given, str):
            return f"{must}, not a single value: write [{given}]"
        return must + (f", not {given!r}" if scalar else "")
    if kind_name in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {"greater_than": "above", "greater_than_equal": "at least",
                 "less_than": "below", "less_than_equal": "at most"}[kind_name]  # fmt: skip
        bound = next(iter(ctx.values()), "")
        return f"must be {words} {bound:g}, not {given!r}"
    if kind_name == "too_short":
        n = ctx.get("min_length", 1)
        return f"needs at least {n} entr{'y' if n == 1 else 'ies'}"
    if kind_name == "too_long":
        return f"may have at most {ctx.get('max_length')} entries"
    if kind_name == "string_too_long":
        return f"may be at most {ctx.get('max_length')} characters"
    if kind_name == "string_too_short":
        return "must not be empty"
    if kind_name == "string_pattern_mismatch":
        path = _generic(loc)
        form = next((f for suffix, f in _PATTERNS.items() if path.endswith(suffix)), "")
        return f"{given!r} has the wrong form" + (f": {form}" if form else "")
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


# Field-specific forms, keyed by the end of the path (rule ids, header names).
_PATTERNS = {
    "rules[].id": "lowercase letters, digits and . _ / -, starting and ending with a letter "
    "or digit, at most 128 characters",
    "trace_header": "a header name: letters, digits and -, at most 64",
}


def user_errors(
    raw: Sequence[Mapping[str, Any]], model: type[BaseModel], prefix: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """pydantic's errors as (path, message) in users' words, follow-on errors dropped."""
    keys = key_index(model)
    located = [((*prefix, *err["loc"]), err) for err in raw]
    kept = []
    for loc, err in located:
        deeper = any(other[: len(loc)] == loc and len(other) > len(loc) for other, _ in located)
        if err["type"] in _FOLLOW_ON and deeper:
            continue  # e.g. "upstreams needs 1 entry" because every entry was refused
        if err["type"] == "value_error" and deeper:
            continue  # a section-level check that ran on a section already refused
        kept.append((format_loc(loc), word(err, keys, loc)))
    return list(dict.fromkeys(kept))  # one line per (path, message), in pydantic's order
