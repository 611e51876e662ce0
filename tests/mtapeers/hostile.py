"""Hostile SMTP clients on cue: every way a STARTTLS handshake can fail, slowloris.

Named for what they do to the gateway; shared by the STARTTLS tests and the invariant
suite. Each takes the gateway's port and returns when its attack is over, within a
bound (``RawClient``'s, ``LEGACY_TLS_TIMEOUT``): none can hang the test that runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mtapeers.procs import run
from mtapeers.raw import RawClient

# openssl s_client's -quiet implies -ign_eof: it exits when the handshake fails or the
# server hangs up, not when its stdin ends. The gateway ends both within seconds.
LEGACY_TLS_TIMEOUT = 20.0


async def legacy_tls_client(port: int, flag: str) -> None:
    """openssl s_client speaking only an old TLS version: the handshake fails."""
    done = await run(
        "openssl",
        "s_client",
        "-starttls",
        "smtp",
        "-connect",
        f"127.0.0.1:{port}",
        flag,
        "-cipher",
        "DEFAULT@SECLEVEL=0",
        "-quiet",
        stdin=b"QUIT\r\n",
        timeout=LEGACY_TLS_TIMEOUT,
    )
    assert done.returncode != 0, f"openssl {flag} completed a handshake: {done.stderr}"


async def after_starttls(port: int, then: Callable[[RawClient], Awaitable[None]]) -> None:
    client = await RawClient.connect(port)
    try:
        await client.greet()
        assert (await client.cmd("STARTTLS")).code == 220
        await then(client)
    finally:
        client.writer.transport.abort()  # a no-op after the attack's own close or reset


async def garbage_hello(client: RawClient) -> None:
    await client.send(b"\x16\x03\x01\x00\x05garbage-that-is-no-client-hello\r\n" * 4)
    assert await client.closed()
    await client.close()


async def truncated_hello(client: RawClient) -> None:
    await client.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # then EOF
    client.writer.write_eof()
    assert await client.closed()
    await client.close()


async def reset_mid_handshake(client: RawClient) -> None:
    await client.send(b"\x16\x03\x01\x02\x00\x01")
    await client.reset()


async def stall(client: RawClient) -> None:
    assert await client.closed(timeout=10)  # cut off after handshake_timeout
    await client.close()


FAILURES: dict[str, Callable[[int], Awaitable[None]]] = {
    "tls1.0 only": lambda port: legacy_tls_client(port, "-tls1"),
    "tls1.1 only": lambda port: legacy_tls_client(port, "-tls1_1"),
    "garbage hello": lambda port: after_starttls(port, garbage_hello),
    "truncated hello then EOF": lambda port: after_starttls(port, truncated_hello),
    "reset mid-handshake": lambda port: after_starttls(port, reset_mid_handshake),
    "stalled handshake": lambda port: after_starttls(port, stall),
}


async def slowloris(port: int, seconds: float, byte_every: float = 0.2) -> None:
    """Greets, then dribbles one command a byte at a time until cut off or ``seconds``."""
    client = await RawClient.connect(port)
    try:
        await client.reply()
        line = b"EHLO " + b"x" * 200 + b"\r\n"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        for byte in line:
            if loop.time() > deadline or client.reader.at_eof():
                break
            await client.send(bytes([byte]))
            await asyncio.sleep(byte_every)
    except ConnectionError:
        pass  # cut off by the gateway: what it should do
    finally:
        await client.close()
