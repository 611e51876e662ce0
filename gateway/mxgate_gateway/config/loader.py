"""Read a config or policy file into a validated snapshot, with field-path errors.

This module reads files and parses YAML/JSON; it must not watch files, swap
live configuration, or log: callers decide what an error means.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mxgate_gateway.config.explain import user_errors
from mxgate_gateway.config.model import Config, PolicyDocument
from mxgate_gateway.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, source: str) -> M:
    """Validate already-parsed data; raise ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [("(top level)", "must be a mapping of keys to values")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, user_errors(exc.errors(include_url=False), model)) from None


def parse_text(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", exc)
        raise ConfigError(source, [(where, f"not valid YAML: {problem}")]) from None


def read_text(path: Path) -> str:
    """The file's text; a FIFO, socket, device or directory is refused, never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ConfigError(
                    str(path),
                    [("(file)", "not a regular file (a FIFO, socket, device or directory?)")],
                )
            return fh.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(str(path), [("(file)", f"cannot read: {reason}")]) from None


def load_config(path: Path, policy_path: Path | None = None) -> Config:
    """Load the main config file and, if given, merge the operator's policy file."""
    config = validate(Config, parse_text(read_text(path), str(path)), str(path))
    if policy_path is not None:
        config = merge_policy(config, load_policy_document(policy_path))
    return config


def load_policy_document(path: Path) -> PolicyDocument:
    return validate(PolicyDocument, parse_text(read_text(path), str(path)), str(path))


def merge_policy(config: Config, doc: PolicyDocument) -> Config:
    try:
        return config.with_policy_document(doc)
    except ValidationError as exc:
        errors = user_errors(exc.errors(include_url=False), Config, ("policy",))
        raise ConfigError("config + policy file", errors) from None
