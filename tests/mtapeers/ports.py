"""Loopback ports for the peers and the gateway: the kernel picks one (port 0).

The port is released before it is handed to a child, so a rare race with another
listener is possible; callers that start servers retry on a bind failure.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port the kernel just handed out, free again for a child."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
