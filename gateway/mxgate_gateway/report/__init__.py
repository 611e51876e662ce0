"""The loss report: bounded counters, rolling window, exact merge, rendering.

Everything here is pure except ``cli.py`` (the ``mxgate report`` command, which
fetches over HTTP and is not imported from this package's top level).
"""

from __future__ import annotations

from mxgate_gateway.report.loss import FORMAT, LossReport, client_network, merge
from mxgate_gateway.report.render import render_table
from mxgate_gateway.report.tally import ReportFormatError

__all__ = ["FORMAT", "LossReport", "ReportFormatError", "client_network", "merge", "render_table"]
