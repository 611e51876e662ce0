"""SMTP reply values and their wire form, always with an enhanced status code.

A leaf module (it imports nothing of the gateway): the wire engine, the session
handler and the relay all speak in ``Reply`` values. Pure: builds and sanitises
reply lines (RFC 5321 §4.2, RFC 2034/3463). It must not send anything, log, or
ever embed exception text in a reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_UNSAFE = re.compile(r"[^\x20-\x7e]")
_MAX_TEXT = 200

# The enhanced code we add when a reply line has none (by basic reply code).
DEFAULT_ENHANCED: dict[int, str] = {
    211: "2.0.0",
    214: "2.0.0",
    220: "2.0.0",
    221: "2.0.0",
    250: "2.0.0",
    251: "2.1.5",
    252: "2.5.2",
    421: "4.3.0",
    450: "4.2.0",
    451: "4.3.0",
    452: "4.3.1",
    454: "4.7.0",
    500: "5.5.2",
    501: "5.5.4",
    502: "5.5.1",
    503: "5.5.1",
    504: "5.5.4",
    530: "5.7.0",
    550: "5.0.0",
    551: "5.1.6",
    552: "5.3.4",
    553: "5.1.3",
    554: "5.0.0",
    555: "5.5.4",
}


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: basic code, enhanced code and human text."""

    code: int
    enhanced: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


def reply(code: int, text: str, enhanced: str | None = None) -> Reply:
    """Build a reply, filling in the default enhanced code for ``code``."""
    return Reply(code, enhanced or default_enhanced(code), clean_text(text))


def default_enhanced(code: int) -> str:
    return DEFAULT_ENHANCED.get(code, f"{code // 100}.0.0")


def clean_text(text: str) -> str:
    """Printable ASCII only, bounded length: safe to put on the wire."""
    text = _UNSAFE.sub("?", text).strip()
    return text[:_MAX_TEXT] or "-"


def with_enhanced(line: str) -> str:
    """Add the default enhanced code to a ``NNN text`` line that lacks one.

    Lines that are not 2xx/4xx/5xx replies (e.g. 354) or already carry a code
    are returned unchanged.
    """
    if len(line) < 3 or not line[:3].isdigit() or line[0] not in "245":
        return line
    code = int(line[:3])
    sep, rest = line[3:4], line[4:]
    first = rest.split(" ", 1)[0]
    if _ENHANCED.match(first):
        return line
    return f"{code}{sep or ' '}{default_enhanced(code)} {rest}".rstrip()


def from_upstream(code: int, message: str) -> Reply:
    """Turn an upstream reply into one we may show our client.

    Keeps the code and the upstream's enhanced code when it is well formed
    and of the same class; the text is sanitised. A 421 (the upstream is
    closing *its* connection) becomes 451: our client's session goes on.
    """
    if code == 421:
        code = 451
    if not 200 <= code <= 599:
        return reply(451, "Upstream answered with an invalid reply", "4.4.2")
    first_line = message.splitlines()[0] if message else ""
    head, _, tail = first_line.partition(" ")
    match = _ENHANCED.match(head)
    if match and match.group(1) == str(code // 100):
        return Reply(code, head, clean_text("upstream: " + tail))
    return reply(code, "upstream: " + first_line)


# Replies used in more than one place.
TEMPFAIL = reply(451, "Local error in processing, try again later", "4.3.0")
UPSTREAM_UNAVAILABLE = reply(451, "Upstream unavailable, try again later", "4.4.1")
UPSTREAM_FAILED = reply(451, "Upstream connection failed, try again later", "4.4.2")
TIMEOUT = reply(421, "Timeout, closing connection", "4.4.2")
SHUTTING_DOWN = reply(421, "Service shutting down, try again later", "4.3.2")
