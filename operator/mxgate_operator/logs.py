"""Structured logging for the operator: structlog JSON lines, kopf's own records included.

kopf configures the root logger from its CLI flags; ``configure_logging`` replaces kopf's
handler with one structlog formatter so every line (ours and kopf's) is one JSON object.
It must not log policy contents beyond names, or any token or Secret data.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from mxgate_gateway.logformat import log_pipeline


def configure_logging(fmt: Literal["json", "console"] = "json") -> None:
    """Route structlog and every stdlib logger (kopf, aiohttp) to stderr in one format.

    Keeps the root level kopf chose (``--verbose``, ``--quiet``).
    """
    pipeline = log_pipeline(fmt, colors=sys.stderr.isatty())
    structlog.configure(
        processors=pipeline.processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(pipeline.formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    for noisy in ("aiohttp.access", "httpx", "httpx2"):  # one line per API request
        logging.getLogger(noisy).setLevel(logging.WARNING)
