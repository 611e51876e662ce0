"""Pure TLS policy: session facts + config snapshot → decision values.

Nothing here does I/O, logs, or imports asyncio, aiosmtpd or aiohttp.
"""

from __future__ import annotations

from mxgate_gateway.policy.decide import decide_mail, decide_rcpt
from mxgate_gateway.policy.decisions import DEFAULT_RULE_ID, Action, Decision, Shortfall, Stage
from mxgate_gateway.policy.facts import SessionFacts, domain_of, trace_header_value

__all__ = [
    "DEFAULT_RULE_ID",
    "Action",
    "Decision",
    "SessionFacts",
    "Shortfall",
    "Stage",
    "decide_mail",
    "decide_rcpt",
    "domain_of",
    "trace_header_value",
]
