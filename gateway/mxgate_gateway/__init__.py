"""mxgate gateway: a stateless SMTP edge that relays in-line and measures TLS.

This package holds the gateway process only; it never imports the operator.
"""

from __future__ import annotations

__version__ = "0.1.0"
