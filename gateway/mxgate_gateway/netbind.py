"""Listening sockets: one socket per listen address, dual-stack on the IPv6 wildcard.

``[::]:port`` serves IPv6 *and* IPv4 (IPV6_V6ONLY off, IPv4 clients appear as
``::ffff:a.b.c.d``); on a host without IPv6 it falls back to ``0.0.0.0``. Used by
every listener so a chart's single listen address serves both families. It must
not accept connections or know any protocol.
"""

from __future__ import annotations

import contextlib
import socket

from mxgate_gateway.config.model import split_hostport

WILDCARD_V6 = "::"


def listen_socket(address: str, backlog: int = 512) -> socket.socket:
    """A bound, listening, non-blocking TCP socket for ``host:port`` / ``[v6]:port``."""
    host, port = split_hostport(address)
    if host == WILDCARD_V6:
        try:
            return _bind(socket.AF_INET6, "::", port, backlog, v6only=False)
        except OSError:
            if socket.has_ipv6 and _ipv6_works():
                raise  # a real bind error (port in use), not a host without IPv6
            return _bind(socket.AF_INET, "0.0.0.0", port, backlog)  # noqa: S104 - wildcard wanted
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if family is socket.AF_INET and not _is_ipv4_literal(host):
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, host = info[0][0], str(info[0][4][0])
    return _bind(family, host, port, backlog, v6only=True)


def _bind(
    family: socket.AddressFamily, host: str, port: int, backlog: int, *, v6only: bool = True
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _ipv6_works() -> bool:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET6, socket.SOCK_STREAM):
        return True
    return False


def _is_ipv4_literal(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return host.count(".") == 3
