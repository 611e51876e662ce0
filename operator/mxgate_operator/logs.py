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
from structlog.typing import Processor


def configure_logging(fmt: Literal["json", "console"] = "json") -> None:
    """Route structlog and every stdlib logger (kopf, aiohttp) to stderr in one format.

    Keeps the root level kopf chose (``--verbose``, ``--quiet``).
    """
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    for noisy in ("aiohttp.access", "httpx", "httpx2"):  # one line per API request
        logging.getLogger(noisy).setLevel(logging.WARNING)
