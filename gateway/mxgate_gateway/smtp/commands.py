"""Pure checks for command lines and verb arguments: bytes and paths in, refusals out.

What the engine in ``server.py`` asks before acting: is this line a valid
command (512 octets, no NUL or bare CR, UTF-8), are these MAIL/RCPT
parameters acceptable, what does EHLO advertise. It must not do I/O, keep
state or count anything; callers count and reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from mxgate_gateway import replies
from mxgate_gateway.smtp.addresses import Path
from mxgate_gateway.smtp.data import DataStatus

COMMAND_LIMIT = 512  # octets including CRLF (RFC 5321 §4.5.3.1.4)
# RFC 1870/6152/6531 each let MAIL grow by the length of their parameter.
EXTRA_LIMIT = {"MAIL": 26 + 14 + 9}
BOGUS_LIMIT = 10
# Commands that move no mail; too many in a row is a client holding a slot (junk limit).
JUNK = frozenset({"NOOP", "RSET", "VRFY", "EXPN", "HELP"})
TOO_MUCH_JUNK = replies.reply(421, "Too many commands without mail, closing", "4.7.0")
SESSION_TOO_LONG = replies.reply(421, "Session time limit reached, closing", "4.7.0")
MAIL_PARAMS = frozenset({"SIZE", "BODY", "SMTPUTF8"})

DATA_ERRORS = {
    DataStatus.LINE_TOO_LONG: replies.reply(500, "Line too long (RFC 5321 4.5.3.1.6)", "5.6.0"),
    DataStatus.TOO_BIG: replies.reply(552, "Message size exceeds fixed maximum", "5.3.4"),
    DataStatus.BARE_LINE_ENDING: replies.reply(
        550, "Bare CR or LF not allowed in message (RFC 5321 2.3.8)", "5.6.0"
    ),
}


@dataclass(frozen=True)
class BadLine:
    """A command line refused before dispatch; ``kind`` is a bounded metric label."""

    kind: str
    reply: replies.Reply


def _bad(kind: str, text: str) -> BadLine:
    return BadLine(kind, replies.reply(500, text, "5.5.2"))


TOO_LONG = _bad("command_too_long", "Line too long")


def check_command(raw: bytes) -> str | BadLine:
    """Validate one LF-terminated command line; return its text without the line end."""
    line = raw.rstrip(b"\r\n")
    verb = line.split(b" ", 1)[0].upper().decode("ascii", "replace")
    if len(raw) > COMMAND_LIMIT + EXTRA_LIMIT.get(verb, 0):
        return TOO_LONG
    if b"\x00" in line or b"\r" in line:
        return _bad("bad_command_bytes", "NUL or bare CR in command")
    if not line:
        return _bad("empty_command", "Empty command")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return _bad("invalid_utf8", "Invalid UTF-8 in command")


def ehlo_keywords(max_size: int, starttls: bool) -> list[str]:
    """The extensions EHLO advertises (STARTTLS only before TLS, when configured)."""
    ext = ["PIPELINING", f"SIZE {max_size}", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]
    if starttls:
        ext.append("STARTTLS")
    return ext


def mail_refusal(path: Path, esmtp: bool, max_size: int) -> replies.Reply | None:
    """None if MAIL's parameters are acceptable (RFC 1870, 6152, 6531), else the refusal."""
    params = path.params
    if params and not esmtp:
        return replies.reply(501, "Parameters need EHLO", "5.5.4")
    if set(params) - MAIL_PARAMS:
        return replies.reply(555, "MAIL parameters not recognized", "5.5.4")
    size = params.get("SIZE")
    if "SIZE" in params and (size is None or not size.isdigit()):
        return replies.reply(501, "Syntax: SIZE=<digits>", "5.5.4")
    if size is not None and int(size) > max_size:
        return replies.reply(552, "Message size exceeds fixed maximum", "5.3.4")
    if "BODY" in params and (params["BODY"] or "").upper() not in ("7BIT", "8BITMIME"):
        return replies.reply(501, "BODY must be 7BIT or 8BITMIME", "5.5.4")
    if "SMTPUTF8" in params and params["SMTPUTF8"] is not None:
        return replies.reply(501, "SMTPUTF8 takes no value", "5.5.4")
    if not path.address.isascii() and "SMTPUTF8" not in params:
        return replies.reply(553, "Non-ASCII address needs SMTPUTF8", "5.6.7")
    return None


def rcpt_refusal(path: Path, smtputf8: bool, accepted: int, limit: int) -> replies.Reply | None:
    """None if this RCPT may go on to the relay check, else the refusal."""
    if path.params:
        return replies.reply(555, "RCPT parameters not recognized", "5.5.4")
    if not path.address.isascii() and not smtputf8:
        return replies.reply(553, "Non-ASCII address needs SMTPUTF8", "5.6.7")
    if accepted >= limit:
        return replies.reply(452, "Too many recipients", "4.5.3")
    return None


def session_limit(
    age: float, junk: int, max_duration: float, junk_limit: int
) -> tuple[str, replies.Reply] | None:
    """None while the session may go on, else (metric kind, the 421 that ends it)."""
    if age > max_duration:
        return "session_too_long", SESSION_TOO_LONG
    if junk > junk_limit:
        return "junk_command_limit", TOO_MUCH_JUNK
    return None
