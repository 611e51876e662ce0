"""The structlog pipeline both processes log through: JSON lines (or console text).

Builds, as a value, the processor chain for structlog and the formatter that renders
stdlib records (aiosmtpd, kopf, aiohttp) the same way. It configures nothing (no
``structlog.configure``, no handlers, no levels: each process's ``logs`` module does
that from its one composition root) and imports nothing of mxgate, so the operator may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import structlog
from structlog.typing import Processor


@dataclass(frozen=True)
class LogPipeline:
    """``processors`` for ``structlog.configure``; ``formatter`` for the root handler."""

    processors: list[Processor]
    formatter: structlog.stdlib.ProcessorFormatter


def log_pipeline(fmt: Literal["json", "console"], *, colors: bool) -> LogPipeline:
    """One event per line: ISO UTC timestamp, level, contextvars; logger name on stdlib records."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=colors)
    )
    return LogPipeline(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        formatter=structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        ),
    )
