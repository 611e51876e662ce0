"""Every key of the gateway config file, in users' words: path, kind, default.

Read from the config model itself (walking ``Config``'s fields), so a key added to the model
is listed without anyone remembering to. Pure: no files, no printing; ``mxgate config-keys``
and ``check-config --help`` print what ``render_keys`` returns, and the error wording in
``config.explain`` names a field's kind with ``kind_of``.
"""

from __future__ import annotations

import enum
import json
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mxgate_gateway.config.model import CIDR, Config, Domain, DomainPattern, HostPort, PathStr

# The model's named value types, as users call them.
_NOUNS: list[tuple[Any, str]] = [
    (HostPort, "host:port"),
    (Domain, "domain name"),
    (DomainPattern, "domain or *.domain pattern"),
    (CIDR, "CIDR network (e.g. 10.0.0.0/8)"),
    (PathStr, "file path"),
]
_PLURAL = {
    "host:port": "host:port addresses",
    "file path": "file paths",
    "CIDR network (e.g. 10.0.0.0/8)": "CIDR networks (e.g. 10.0.0.0/8)",
}


_BOUNDS = (("ge", "at least"), ("gt", "above"), ("le", "at most"), ("lt", "below"))


@dataclass(frozen=True)
class Key:
    """One config key: ``upstreams[].address``, what it holds, and its default."""

    path: str
    kind: str
    default: str
    description: str = ""


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def kind_of(annotation: Any) -> str:
    """A field's type in words: "list of domain names", "one of: json | console", ..."""
    annotation, optional = _strip_optional(annotation)
    for named, noun in _NOUNS:
        if annotation == named:
            return noun
    origin = get_origin(annotation)
    if origin is Annotated:
        return kind_of(get_args(annotation)[0])
    if origin in (tuple, list):
        item = kind_of(get_args(annotation)[0])
        if item == "section":
            return "list of sections"
        if item.startswith("one of"):
            return f"list, each {item}"
        return f"list of {_PLURAL.get(item, item + 's')}"
    if origin is Literal:
        return "one of: " + " | ".join(str(a) for a in get_args(annotation))
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "section"
        if issubclass(annotation, enum.Enum):
            return "one of: " + " | ".join(str(m.value) for m in annotation)
        if annotation is bool:
            return "true or false"
        if annotation is int:
            return "whole number"
        if annotation is float:
            return "number (seconds for timeouts)"
        if annotation is str:
            return "text"
        if issubclass(annotation, Path):
            return "file path"
    return "value" + (" or null" if optional else "")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "(not set)"
    if isinstance(value, BaseModel):
        return "(its keys below)"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is PydanticUndefined:
        return "(required)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The section model a field holds (itself or as list items), and whether it is a list."""
    annotation, _ = _strip_optional(annotation)
    if get_origin(annotation) in (tuple, list):
        inner, _ = _strip_optional(get_args(annotation)[0])
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner, True
        return None, False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def field_kind(field: FieldInfo) -> str:
    """kind_of for a model field (pydantic keeps a field's Annotated metadata apart)."""
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    bounds = []
    for item in field.metadata:
        for attr, words in (
            ("ge", "at least"),
            ("gt", "above"),
            ("le", "at most"),
            ("lt", "below"),
        ):
            if getattr(item, attr, None) is not None:
                bounds.append(f"{words} {getattr(item, attr)}")
    return ", ".join([kind_of(annotation), *bounds])


def _walk(model: type[BaseModel], prefix: str) -> Iterator[Key]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        section, is_list = _model_of(field.annotation)
        doc = (section.__doc__ or "").strip().splitlines()[0] if section and section.__doc__ else ""
        yield Key(path, field_kind(field), _default(field), field.description or doc)
        if section is not None:
            yield from _walk(section, f"{path}[]." if is_list else f"{path}.")


def config_keys(model: type[BaseModel] = Config) -> list[Key]:
    """Every key of the model, depth first, in declaration order."""
    return list(_walk(model, ""))


def key_index(model: type[BaseModel] = Config) -> dict[str, Key]:
    """Keys by path (list items as ``[]``), for wording errors about one field."""
    return {k.path: k for k in config_keys(model)}


def render_keys(keys: list[Key]) -> str:
    """Aligned text: path, default, kind (and a description line where there is one)."""
    width = max(len(k.path) for k in keys) + 2
    lines = []
    for k in keys:
        lines.append(f"  {k.path.ljust(width)}default {k.default}; {k.kind}")
        if k.description:
            lines.append(f"  {'':{width}}{k.description}")
    return "\n".join(lines)
