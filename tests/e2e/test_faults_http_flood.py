"""Issue 12.5: slowloris against both HTTP listeners of a real ``mxgate gateway`` process
running under a low descriptor limit (RLIMIT_NOFILE 256).

Hundreds of half-sent requests, from the first second after start: the process stays up,
SMTP keeps greeting within a second, HTTP connections beyond the bound are refused (and
logged a bounded number of times, not once each), every half-sent request is closed by
the gateway once the header deadline passes, and HTTP serves again afterwards.
Runtime ~20 s.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
import time
from pathlib import Path

import pytest

from mtapeers.gatewayproc import MXGATE
from mtapeers.ports import free_port

pytestmark = [pytest.mark.slow]

NOFILE = 256
HALF_SENT = 300  # per HTTP listener: more than the descriptor limit in total
HEADER_TIMEOUT = 3.0


def low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


async def half_sent(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Open a connection and send the start of a request, never the blank line."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
    except (OSError, TimeoutError):
        return None
    return reader, writer


async def greeting_time(port: int) -> float:
    start = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    assert line.startswith(b"220 "), line
    return time.monotonic() - start


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True if the gateway closed it (EOF or reset, after any error reply)."""
    try:
        async with asyncio.timeout(2):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_slowloris_under_low_nofile_never_stops_smtp(tmp_path: Path) -> None:
    smtp, admin, public = free_port(), free_port(), free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
hostname: mx.example.test
listen: {{smtp: "127.0.0.1:{smtp}", http: "127.0.0.1:{admin}", public: "127.0.0.1:{public}"}}
domains: [accepted.test]
upstreams: [{{address: "127.0.0.1:{free_port()}"}}]
limits: {{http_header_timeout: {HEADER_TIMEOUT}, drain_timeout: 1}}
"""
    )
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(MXGATE), "gateway", "--config", str(config),
            stdout=out, stderr=asyncio.subprocess.STDOUT, preexec_fn=low_nofile,
        )  # fmt: skip
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        # The flood starts before the gateway listens and goes on through its first second.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(conns) < 2 * HALF_SENT:
            batch = await asyncio.gather(
                *(half_sent(port) for port in (admin, public) for _ in range(50))
            )
            conns += [c for c in batch if c is not None]
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # the config and TLS watchers poll meanwhile
        assert proc.returncode is None, log.read_text()[-3000:]
        waits = [await greeting_time(smtp) for _ in range(5)]
        assert max(waits) < 1.0, waits

        await asyncio.sleep(HEADER_TIMEOUT + 1.5)
        closed = await asyncio.gather(*(closed_by_server(reader) for reader, _ in conns))
        assert all(closed), f"{closed.count(False)} of {len(conns)} half-sent requests still open"
        assert proc.returncode is None
        for port in (admin,):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
            writer.close()
    finally:
        for _, writer in conns:
            writer.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    events = [
        json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")
    ]
    refused = events.count("http_connections_refused")
    assert 1 <= refused <= 5, f"{refused} refusal log lines"
    assert proc.returncode == 0, log.read_text()[-3000:]
    print(f"half-sent connections opened: {len(conns)}", file=sys.stderr)
