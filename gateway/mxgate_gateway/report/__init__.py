"""The loss report: bounded counters, rolling window, exact merge, rendering.

Everything here is pure except ``cli.py`` (the ``mxgate report`` command, which
fetches over HTTP and is not imported from this package's top level).
"""

from __future__ import annotations

from mxgate_gateway.report.document import (
    FORMAT,
    ReportDocument,
    ReportFormatError,
    parse_document,
)
from mxgate_gateway.report.loss import LossReport, client_network, merge
from mxgate_gateway.report.render import render_table

__all__ = [
    "FORMAT",
    "LossReport",
    "ReportDocument",
    "ReportFormatError",
    "client_network",
    "merge",
    "parse_document",
    "render_table",
]
