"""Structured logging: structlog JSON (or console), stdlib loggers routed through it.

Configures the process once at start. It must not log message bodies, AUTH
lines or keys, and must not be imported for side effects: call
``configure_logging`` from the composition root.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from mxgate_gateway.logformat import log_pipeline

# Third-party loggers and the level they are allowed to speak at. aiosmtpd logs
# every command line at INFO (addresses included); we log our own events instead.
_QUIET = {
    "mail.log": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "asyncio": logging.WARNING,
}


def configure_logging(
    fmt: Literal["json", "console"] = "json",
    level: str = "info",
) -> None:
    """Route structlog and stdlib logging to stderr as JSON lines or console text."""
    pipeline = log_pipeline(fmt, colors=sys.stderr.isatty())
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=pipeline.processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(pipeline.formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, numeric))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named after the component (``mxgate.smtp`` ...)."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
