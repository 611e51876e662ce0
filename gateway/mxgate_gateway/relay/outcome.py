"""What happened at the upstream, as values the SMTP handler maps to replies.

Pure: the outcome kinds and how an upstream reply or failure becomes one.
It must not talk to the network or log; the client produces these values
and the handler decides what the client sees (a 250 only for ACCEPTED).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mxgate_gateway.replies import (
    UPSTREAM_FAILED,
    UPSTREAM_UNAVAILABLE,
    Reply,
    from_upstream,
)


class RelayStatus(StrEnum):
    """Three ways an upstream step can end."""

    ACCEPTED = "accepted"  # upstream said 2xx
    REJECTED = "rejected"  # upstream said 5xx: passed through, the sender bounces
    TEMPFAILED = "tempfailed"  # upstream 4xx, timeout, drop, refused connection: 4xx


class Failure(StrEnum):
    """Why a step failed without a proper upstream reply (bounded label values)."""

    NONE = "none"
    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    DISCONNECTED = "disconnected"
    PROTOCOL = "protocol"


@dataclass(frozen=True)
class RelayOutcome:
    """One upstream step's result and the reply our client should get."""

    status: RelayStatus
    reply: Reply
    failure: Failure = Failure.NONE
    upstream: str | None = None
    # Not accepted although the upstream had the whole message (its final dot was
    # relayed): it may have stored it anyway, so a retry may duplicate it.
    after_dot: bool = False

    @property
    def accepted(self) -> bool:
        return self.status is RelayStatus.ACCEPTED


def from_reply(code: int, message: str, upstream: str | None) -> RelayOutcome:
    """Classify an upstream reply: 2xx accepted, 5xx rejected, anything else 4xx."""
    shown = from_upstream(code, message)
    if 200 <= code < 300:
        return RelayOutcome(RelayStatus.ACCEPTED, shown, upstream=upstream)
    if 500 <= code < 600:
        return RelayOutcome(RelayStatus.REJECTED, shown, upstream=upstream)
    if not 400 <= shown.code < 500:
        return failed(Failure.PROTOCOL, upstream)
    return RelayOutcome(RelayStatus.TEMPFAILED, shown, upstream=upstream)


def failed(failure: Failure, upstream: str | None = None) -> RelayOutcome:
    """An upstream step that ended without a usable reply: always 4xx."""
    shown = UPSTREAM_UNAVAILABLE if failure in (Failure.CONNECT, Failure.TLS) else UPSTREAM_FAILED
    return RelayOutcome(RelayStatus.TEMPFAILED, shown, failure, upstream)
