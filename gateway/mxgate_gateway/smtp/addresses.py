"""Strict parsing of MAIL/RCPT paths and the never-an-open-relay check.

Pure (RFC 5321 §4.1.2, RFC 6531): argument text in, a parsed path or an
error reply out. It must not do I/O or consult anything but its arguments;
anything unusual in a recipient is refused rather than interpreted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import idna

from mxgate_gateway.replies import Reply, reply

_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\U0010ffff]"
_DOT_STRING = re.compile(rf"^{_ATEXT}+(\.{_ATEXT}+)*$")
_LABEL = r"[A-Za-z0-9\x80-\U0010ffff]([A-Za-z0-9\-\x80-\U0010ffff]*[A-Za-z0-9\x80-\U0010ffff])?"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_PARAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*(=[\x21-\x3c\x3e-\x7e]+)?$")


@dataclass(frozen=True)
class Mailbox:
    """A parsed ``local@domain``; ``address`` is exactly what we relay."""

    local: str
    domain: str
    quoted: bool
    literal: bool

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"


@dataclass(frozen=True)
class Path:
    """A parsed MAIL/RCPT argument: mailbox (None for ``<>``), route, params."""

    mailbox: Mailbox | None
    route: str | None
    params: dict[str, str | None]

    @property
    def address(self) -> str:
        return self.mailbox.address if self.mailbox else ""


def parse_path(arg: str, keyword: str) -> Path | Reply:
    """Parse ``FROM:<a@b> PARAMS`` / ``TO:<a@b> PARAMS``; a Reply means refused."""
    syntax = reply(501, f"Syntax: {keyword}<address> [parameters]", "5.5.4")
    if arg[: len(keyword)].upper() != keyword:
        return syntax
    rest = arg[len(keyword) :].lstrip(" ")
    if not rest.startswith("<"):
        return syntax
    end = _closing_bracket(rest)
    if end < 0:
        return syntax
    inner, tail = rest[1:end], rest[end + 1 :]
    if tail and not tail.startswith(" "):
        return syntax
    params = _parse_params(tail.split())
    if params is None:
        return syntax
    route = None
    if inner.startswith("@"):
        route, colon, inner = inner.partition(":")
        if not colon:
            return syntax
    if inner == "":
        return Path(None, route, params) if route is None else syntax
    mailbox = parse_mailbox(inner)
    if mailbox is None:
        return reply(553, "Malformed address", "5.1.3")
    return Path(mailbox, route, params)


def _closing_bracket(text: str) -> int:
    quoted = escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ">" and not quoted:
            return i
    return -1


def _parse_params(words: list[str]) -> dict[str, str | None] | None:
    params: dict[str, str | None] = {}
    for word in words:
        if not _PARAM.match(word):
            return None
        key, eq, value = word.partition("=")
        params[key.upper()] = value if eq else None
    return params


def parse_mailbox(text: str) -> Mailbox | None:
    """Split and validate ``local@domain``; None if it is not RFC 5321 syntax."""
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or len(text) > 254:
        return None
    quoted = local.startswith('"')
    if quoted:
        if len(local) < 2 or not local.endswith('"'):
            return None
    elif not _DOT_STRING.match(local):
        return None
    literal = domain.startswith("[")
    if literal:
        if not domain.endswith("]"):
            return None
    elif not _DOMAIN.match(domain):
        return None
    return Mailbox(local, domain, quoted, literal)


def is_ascii_path(path: Path) -> bool:
    return path.address.isascii()


def canonical_domain(domain: str) -> str | None:
    """The domain's IDNA A-label form after UTS #46 mapping (lower case), or None if it
    does not map. The one form domains are compared in: Unicode case folding (U+212A
    KELVIN SIGN, fullwidth letters) cannot make a different spelling match."""
    if domain.isascii():
        ascii_form = domain.lower()
        if "xn--" not in ascii_form:
            return ascii_form if _DOMAIN.match(ascii_form) else None
    try:
        encoded = idna.encode(domain, uts46=True, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return encoded.decode("ascii").lower()


def relay_target(path: Path, domains: tuple[str, ...]) -> str | Reply:
    """The address to relay this recipient to, or the refusal.

    Only a plain ``local@domain`` whose domain is one of ours, compared in its canonical
    A-label form (``canonical_domain``), is relayed, and always with our spelling of the
    domain that matched, never the client's. Source routes, quoted local parts, ``%``
    and ``!`` routing, address literals and domains that do not map are refused.
    """
    box = path.mailbox
    denied = reply(550, "Relay access denied", "5.7.1")
    if box is None:
        return reply(553, "Null recipient not allowed", "5.1.3")
    if path.route is not None or box.quoted or box.literal:
        return denied
    if "%" in box.local or "!" in box.local or "@" in box.local:
        return denied
    domain = canonical_domain(box.domain)
    if domain is None or domain not in domains:
        return denied
    return f"{box.local}@{domain}"


def relay_refusal(path: Path, domains: tuple[str, ...]) -> Reply | None:
    """None if we may relay to this recipient; otherwise the refusal (``relay_target``)."""
    target = relay_target(path, domains)
    return target if isinstance(target, Reply) else None


def sender_domain(path: Path) -> str | None:
    """The envelope sender's domain in canonical form (lower case if it does not map),
    None for ``<>``."""
    if path.mailbox is None:
        return None
    return canonical_domain(path.mailbox.domain) or path.mailbox.domain.lower()
