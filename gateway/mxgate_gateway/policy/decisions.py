"""Decision values: what the policy decided for one MAIL or RCPT command, and why.

A decision names the rule that fired, its mode, the action, and the exact SMTP
reply to send when refusing. This module must not decide anything itself and
must not do I/O; it only defines the outcome vocabulary and the reply texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mxgate_gateway.config.model import Mode, Refusal, TLSVersion

#: ``rule_id`` of decisions made by ``policy.mode`` (no rule matched). Rule ids must
#: start with a lower-case letter or digit, so this can never clash with a real rule.
DEFAULT_RULE_ID = "(default)"


class Action(Enum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    WOULD_REFUSE = "would_refuse"


class Stage(Enum):
    MAIL = "mail"
    RCPT = "rcpt"


class Shortfall(Enum):
    """How the session falls short of the rule's TLS requirement."""

    NONE = "none"
    PLAINTEXT = "plaintext"
    WEAK_TLS = "weak_tls"


@dataclass(frozen=True)
class Decision:
    """The outcome of one policy decision.

    ``reply`` is set only for ``REFUSE``. ``carried`` is True for an RCPT decision
    that merely repeats the MAIL decision (no recipient-scoped rule won); the loss
    report does not count such a decision a second time.
    """

    action: Action
    rule_id: str
    mode: Mode
    reply: tuple[int, str] | None
    stage: Stage = Stage.MAIL
    carried: bool = False
    shortfall: Shortfall = Shortfall.NONE
    minimum: TLSVersion = TLSVersion.TLS1_2  # the minimum TLS version enforced (after floors)

    @property
    def refused(self) -> bool:
        return self.action is Action.REFUSE


def refusal_reply(shortfall: Shortfall, refusal: Refusal, minimum: TLSVersion) -> tuple[int, str]:
    """The SMTP reply for a ``require`` refusal.

    Plaintext: ``530 5.7.0`` (RFC 3207 §4: "Must issue a STARTTLS command first").
    TLS older than the minimum: ``550 5.7.10`` (RFC 5248 "Encryption Needed").
    ``refusal: temporary`` answers ``450`` with the same ``4.7.x`` detail, so the
    sender queues and retries instead of bouncing.
    """
    if shortfall is Shortfall.NONE:
        raise ValueError("a session that meets the requirement is never refused")
    temporary = refusal is Refusal.TEMPORARY
    if shortfall is Shortfall.PLAINTEXT:
        if temporary:
            return (450, "4.7.0 Must issue a STARTTLS command first (TLS required, try again)")
        return (530, "5.7.0 Must issue a STARTTLS command first")
    text = f"Encryption too weak: TLS {minimum.value} or later required"
    if temporary:
        return (450, f"4.7.10 {text} (try again)")
    return (550, f"5.7.10 {text}")
