"""The log pipeline both processes share: one JSON object per line, ours and stdlib's alike."""

from __future__ import annotations

import json
import logging

import structlog

from mxgate_gateway.logformat import log_pipeline


def _format(record: logging.LogRecord, fmt: str = "json") -> str:
    return log_pipeline(fmt, colors=False).formatter.format(record)  # type: ignore[arg-type]


def test_a_stdlib_record_is_one_json_object_with_level_time_and_logger() -> None:
    """A third-party record (kopf, aiosmtpd) renders with its logger name and a UTC timestamp."""
    record = logging.LogRecord(
        "kopf.objects", logging.WARNING, __file__, 1, "slow %s", ("api",), None
    )
    line = json.loads(_format(record))
    assert line["event"] == "slow api"
    assert line["level"] == "warning"
    assert line["logger"] == "kopf.objects"
    assert line["timestamp"].endswith("Z")
    assert "_record" not in line
    assert "_from_structlog" not in line


def test_console_format_is_text_not_json() -> None:
    """The console renderer writes readable text, not a JSON object."""
    record = logging.LogRecord("aiohttp.server", logging.INFO, __file__, 1, "hello", (), None)
    text = _format(record, "console")
    assert "hello" in text
    assert not text.startswith("{")


def test_structlog_events_pass_through_the_stdlib_formatter() -> None:
    """An event logged through structlog ends as the same kind of line, contextvars bound."""
    pipeline = log_pipeline("json", colors=False)
    handler = logging.StreamHandler()
    handler.setFormatter(pipeline.formatter)
    lines: list[str] = []
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    stdlib = logging.getLogger("mxgate.test_logformat")
    stdlib.addHandler(handler)
    stdlib.setLevel(logging.INFO)
    stdlib.propagate = False
    try:
        logger = structlog.wrap_logger(
            stdlib,
            processors=pipeline.processors,
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        with structlog.contextvars.bound_contextvars(session="s1"):
            logger.info("gateway_started", smtp_port=25)
    finally:
        stdlib.removeHandler(handler)
    (line,) = (json.loads(x) for x in lines)
    assert line["event"] == "gateway_started"
    assert line["smtp_port"] == 25
    assert line["session"] == "s1"
    assert line["level"] == "info"
