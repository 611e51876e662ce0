"""mxgate operator: reconciles TLSPolicy resources into gateway policy and Certificates.

It imports only ``mxgate_gateway.config.model`` from the gateway (the rendering contract).
"""

from __future__ import annotations

__version__ = "0.1.0"
