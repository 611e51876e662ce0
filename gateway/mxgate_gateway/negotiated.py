"""The TLS a session negotiated, as one bounded enum, and its one label function.

A leaf module (it imports nothing of the gateway): metrics labels, the loss report,
the trace header and the logs all name a session's TLS with ``tls_label``. Pure;
it must not read SSL objects (tls/contexts.py extracts the version string).
"""

from __future__ import annotations

from enum import StrEnum


class NegotiatedTLS(StrEnum):
    """Plaintext, a protocol version Python's ``ssl`` names, or ``other``."""

    NONE = "none"
    TLS1 = "TLSv1"
    TLS1_1 = "TLSv1.1"
    TLS1_2 = "TLSv1.2"
    TLS1_3 = "TLSv1.3"
    OTHER = "other"

    @classmethod
    def of(cls, version: str | None) -> NegotiatedTLS:
        """``None`` (plaintext) -> NONE; a known protocol name -> itself; else OTHER."""
        if version is None:
            return cls.NONE
        try:
            found = cls(version)
        except ValueError:
            return cls.OTHER
        return cls.OTHER if found is cls.NONE else found


def tls_label(version: str | None) -> str:
    """The bounded label of a negotiated TLS version (metrics, report, trace header)."""
    return NegotiatedTLS.of(version).value
