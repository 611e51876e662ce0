"""Config and certificate swaps during load, against the real ``mxgate gateway`` process.

Issue 12's last attack. While a bounded load runs through the gateway process (relaying
to the real Postfix upstream): (a) its config file is replaced atomically several times
(domains, limits, policy mode; the load's domain stays accepted); (b) its TLS pair is
swapped the kubelet way (a new ``..data`` directory renamed into place) during STARTTLS
load; (c) a half-written and then an invalid config arrive. Judged by the suite's
invariants (conservation, resources back to baseline, bystander greetings) and by what
each swap promises: a session keeps the snapshot (config, certificate) it started with,
new sessions get the new one, a refused file leaves the last good config serving.
Bounded: at most 200 messages from 10 clients per test, a few swaps, ~10 s each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from eventually import eventually_async
from invariants.harness import Bystander, Ledger, ProcessBaseline, send_message
from mtapeers.gatewayproc import GatewayProcess
from mtapeers.ports import free_port
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient, Reply

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

EXTRA = "extra.test"  # accepted only by odd config versions
CLIENTS = 10
SWAPS = 3
TLS_LOAD = 60  # STARTTLS messages (a handshake each) in the certificate test


@dataclass(frozen=True)
class Version:
    """Config version ``n``: its SIZE, domains and policy mode all tell it apart."""

    n: int

    @property
    def size(self) -> int:
        return (1 << 20) + self.n * 4096

    @property
    def domains(self) -> list[str]:
        return ["accepted.test", EXTRA] if self.n % 2 else ["accepted.test"]

    @property
    def mode(self) -> str:
        return "audit" if self.n % 2 else "opportunistic"


class SwappedGateway:
    """One ``mxgate gateway`` process, its config file and (optionally) its TLS pair."""

    def __init__(self, root: Path, upstream_port: int, tls_dir: Path | None = None) -> None:
        self.root = root
        self.upstream_port = upstream_port
        self.tls_dir = tls_dir
        self.smtp_port = free_port()
        self.config = root / "config.json"  # JSON is YAML: a half-written file never parses
        self.proc = GatewayProcess(self.config, http_port=free_port())

    def data(self, version: Version) -> dict[str, Any]:
        data: dict[str, Any] = {
            "hostname": "mx.test",
            "listen": {
                "smtp": f"127.0.0.1:{self.smtp_port}",
                "http": f"127.0.0.1:{self.proc.http_port}",
            },
            "domains": version.domains,
            "upstreams": [{"address": f"127.0.0.1:{self.upstream_port}", "timeout": 5}],
            "limits": {
                "max_message_size": version.size,
                "max_connections_per_ip": 200,
                "command_timeout": 5,
                "drain_timeout": 0,
            },
            "policy": {"mode": version.mode},
            "log": {"format": "json"},
        }
        if self.tls_dir is not None:
            data["tls"] = {
                "cert": str(self.tls_dir / "tls.crt"),
                "key": str(self.tls_dir / "tls.key"),
            }
        return data

    def write(self, version: Version) -> None:
        self.replace_with(json.dumps(self.data(version), indent=1))

    def replace_with(self, text: str) -> None:
        """Atomic: a whole new file renamed over the old one (as a ConfigMap update)."""
        tmp = self.root / "config.json.tmp"
        tmp.write_text(text)
        tmp.replace(self.config)

    async def sample(self, name: str, **labels: str) -> float:
        for family in text_string_to_metric_families(await self.proc.metrics()):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return 0.0

    async def connections(self) -> float:
        return await self.sample("mxgate_connections")

    async def wait_for(self, name: str, value: float, timeout: float = 10.0, **labels: str) -> None:
        async def reached() -> bool:
            return await self.sample(name, **labels) >= value

        await eventually_async(
            reached, timeout, lambda: f"{name}{labels} to reach {value}: {self.proc.tail()}"
        )

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid


@pytest.fixture
async def swapped(
    tmp_path: Path, postfix_upstream: Postfix
) -> AsyncIterator[Callable[[Path | None], Awaitable[SwappedGateway]]]:
    started: list[SwappedGateway] = []

    async def start(tls_dir: Path | None = None) -> SwappedGateway:
        gw = SwappedGateway(tmp_path, postfix_upstream.port, tls_dir)
        gw.write(Version(0))
        started.append(gw)
        await gw.proc.start()
        return gw

    try:
        yield start
    finally:
        for gw in started:
            await gw.proc.stop()


def advertised_size(ehlo: Reply) -> int:
    for line in ehlo.lines:
        if line[4:].startswith("SIZE "):
            return int(line[4:].split()[1])
    raise AssertionError(f"no SIZE in {ehlo.lines}")


@contextlib.asynccontextmanager
async def under_load(*clients: Awaitable[None]) -> AsyncIterator[asyncio.Future[list[None]]]:
    """Run the clients; if the test fails first, cancel them rather than orphan them."""
    load = asyncio.gather(*clients)
    try:
        yield load
    finally:
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await load


async def paced_load(port: int, ledger: Ledger, count: int, gap: float) -> None:
    for _ in range(count):
        await send_message(port, ledger)
        await asyncio.sleep(gap)


def postfix_copies(postfix: Postfix) -> Callable[[str], int]:
    return lambda mark: len(postfix.find(mark.encode(), "alice"))


async def test_config_swaps_during_load_keep_each_session_on_its_snapshot(
    swapped: Callable[[Path | None], Awaitable[SwappedGateway]], postfix_upstream: Postfix
) -> None:
    """200 messages from 10 clients while the config is replaced 3 times: each reaches
    Postfix once; a session started before a swap keeps its domains and SIZE, a new one
    gets the new config."""
    gw = await swapped(None)
    ledger = Ledger()
    baseline = await ProcessBaseline.take(gw.pid, gw.connections)
    generation = await gw.sample("mxgate_config_generation")
    sent_at_swap: list[int] = []
    clients = (paced_load(gw.smtp_port, ledger, 200 // CLIENTS, 0.35) for _ in range(CLIENTS))
    async with Bystander(gw.smtp_port).watching(), under_load(*clients) as load:
        for n in range(1, SWAPS + 1):
            old, new = Version(n - 1), Version(n)
            held = await RawClient.connect(gw.smtp_port)
            assert advertised_size(await held.greet()) == old.size
            gw.write(new)
            await gw.wait_for("mxgate_config_generation", generation + n)
            sent_at_swap.append(len(ledger.sent))
            # the held session still runs on the snapshot it started with...
            assert advertised_size(await held.cmd("EHLO again.test")) == old.size
            assert (await held.cmd("MAIL FROM:<s@example.org>")).code == 250
            rcpt = await held.cmd(f"RCPT TO:<alice@{EXTRA}>")
            assert (rcpt.code == 250) is (EXTRA in old.domains), (n, rcpt)
            await held.send(b"QUIT\r\n")
            await held.close()
            # ...and a new session gets the new config
            fresh = await RawClient.connect(gw.smtp_port)
            assert advertised_size(await fresh.greet()) == new.size
            assert (await fresh.cmd("MAIL FROM:<s@example.org>")).code == 250
            rcpt = await fresh.cmd(f"RCPT TO:<alice@{EXTRA}>")
            assert (rcpt.code == 250) is (EXTRA in new.domains), (n, rcpt)
            await fresh.send(b"QUIT\r\n")
            await fresh.close()
        await load
    assert all(0 < sent < 200 for sent in sent_at_swap), sent_at_swap  # swaps under load
    assert len(ledger.sent) == 200
    assert all(s.code == 250 for s in ledger.sent), [s for s in ledger.sent if s.code != 250]
    assert await gw.sample("mxgate_config_reload_total", result="failure") == 0
    await ledger.check(postfix_copies(postfix_upstream))
    await baseline.back_to(gw.connections)


def tls_pair(ca: trustme.CA, root: Path, name: str) -> int:
    """Write a new leaf for 127.0.0.1 into ``root/name``; return its serial."""
    leaf = ca.issue_cert("mx.test", "127.0.0.1")
    target = root / name
    target.mkdir()
    leaf.private_key_and_cert_chain_pem.write_to_path(str(target / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(target / "tls.key"))
    pem = leaf.cert_chain_pems[0].bytes()
    return int(x509.load_pem_x509_certificate(pem).serial_number)


def kubelet_swap(root: Path, name: str) -> None:
    """What the kubelet does to a Secret volume: ``..data`` renamed to a new directory."""
    tmp = root / "..data_tmp"
    tmp.symlink_to(name)
    tmp.replace(root / "..data")


def secret_volume(ca: trustme.CA, root: Path) -> int:
    root.mkdir()
    serial = tls_pair(ca, root, "..v1")
    (root / "..data").symlink_to("..v1")
    for file in ("tls.crt", "tls.key"):
        (root / file).symlink_to(f"..data/{file}")
    return serial


def served_serial(client: RawClient) -> int:
    der = client.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return int(x509.load_der_x509_certificate(der).serial_number)


async def tls_message(port: int, ledger: Ledger, serials: list[int]) -> None:
    """One message after STARTTLS; the served certificate's serial is noted."""
    mark = ledger.new_mark()
    code: int | None = None
    client = await RawClient.connect(port)
    try:
        await client.greet()
        await client.starttls()
        serials.append(served_serial(client))
        await client.cmd("EHLO client.test")
        await client.cmd("MAIL FROM:<s@example.org>")
        rcpt_ok = (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
        if rcpt_ok and (await client.cmd("DATA")).code == 354:
            code = (await client.cmd(b"Subject: " + mark.encode() + b"\r\n\r\nx\r\n.")).code
        await client.send(b"QUIT\r\n")
    except (ConnectionError, TimeoutError, ssl.SSLError):
        pass
    finally:
        ledger.record(mark, code)
        await client.close()


async def test_certificate_swap_during_starttls_load(
    tmp_path: Path,
    swapped: Callable[[Path | None], Awaitable[SwappedGateway]],
    postfix_upstream: Postfix,
) -> None:
    """The TLS pair swapped (..data rename) during 60 STARTTLS messages: none fails,
    new sessions are served the new certificate, a session begun on the old one ends."""
    ca = trustme.CA()
    tls_dir = tmp_path / "tls"
    old_serial = secret_volume(ca, tls_dir)
    gw = await swapped(tls_dir)
    ledger = Ledger()
    serials: list[int] = []
    baseline = await ProcessBaseline.take(gw.pid, gw.connections)

    async def load(count: int) -> None:
        for _ in range(count):
            await tls_message(gw.smtp_port, ledger, serials)
            await asyncio.sleep(0.2)

    clients = (load(TLS_LOAD // CLIENTS) for _ in range(CLIENTS))
    async with Bystander(gw.smtp_port).watching(), under_load(*clients) as running:
        held = await RawClient.connect(gw.smtp_port)
        await held.greet()
        await held.starttls()
        assert served_serial(held) == old_serial
        new_serial = tls_pair(ca, tls_dir, "..v2")
        kubelet_swap(tls_dir, "..v2")
        await gw.wait_for("mxgate_config_reload_total", 1, result="success")
        assert len(ledger.sent) < TLS_LOAD  # the swap happened under load
        probe: list[int] = []
        await tls_message(gw.smtp_port, ledger, probe)
        assert probe == [new_serial]
        # the session that began on the old pair finishes on it
        await held.cmd("EHLO client.test")
        mark = ledger.new_mark()
        await held.cmd("MAIL FROM:<s@example.org>")
        await held.cmd("RCPT TO:<alice@accepted.test>")
        await held.cmd("DATA")
        ledger.record(mark, (await held.cmd(b"Subject: " + mark.encode() + b"\r\n\r\n.")).code)
        assert served_serial(held) == old_serial
        await held.send(b"QUIT\r\n")
        await held.close()
        await running
    assert all(s.code == 250 for s in ledger.sent), [s for s in ledger.sent if s.code != 250]
    assert len(ledger.sent) == TLS_LOAD + 2
    assert set(serials) == {old_serial, new_serial}, (old_serial, new_serial, set(serials))
    first_new = serials.index(new_serial)
    assert old_serial not in serials[first_new + CLIENTS :]  # no session starts on the old one
    await ledger.check(postfix_copies(postfix_upstream))
    await baseline.back_to(gw.connections)


async def test_half_written_and_invalid_configs_are_refused_during_load(
    swapped: Callable[[Path | None], Awaitable[SwappedGateway]], postfix_upstream: Postfix
) -> None:
    """During load a config written half-way in place, then an invalid one renamed into
    place: both refused, readiness kept, new sessions still on the last good config."""
    gw = await swapped(None)
    good = Version(1)
    gw.write(good)
    await gw.wait_for("mxgate_config_generation", 2)
    ledger = Ledger()
    baseline = await ProcessBaseline.take(gw.pid, gw.connections)
    text = json.dumps(gw.data(Version(2)), indent=1)
    invalid = gw.data(Version(2))
    invalid["limits"]["max_message_size"] = 1  # below the model's floor
    clients = (paced_load(gw.smtp_port, ledger, 10, 0.5) for _ in range(CLIENTS))
    async with Bystander(gw.smtp_port).watching(), under_load(*clients) as load:
        with gw.config.open("w") as half:  # in place, as a careless editor would
            half.write(text[: len(text) // 2])
        await gw.wait_for("mxgate_config_reload_total", 1, result="failure")
        gw.replace_with(json.dumps(invalid))
        await gw.wait_for("mxgate_config_reload_total", 2, result="failure")
        assert len(ledger.sent) < 100  # both refusals happened under load
        status, body = await gw.proc.readyz()
        assert status == 200, body
        assert "still serving the last good config" in body["checks"]["config"]["detail"]
        assert await gw.sample("mxgate_config_generation") == 2
        fresh = await RawClient.connect(gw.smtp_port)
        assert advertised_size(await fresh.greet()) == good.size
        assert (await fresh.cmd("MAIL FROM:<s@example.org>")).code == 250
        assert (await fresh.cmd(f"RCPT TO:<alice@{EXTRA}>")).code == 250  # good's domains
        await fresh.send(b"QUIT\r\n")
        await fresh.close()
        await load
    assert all(s.code == 250 for s in ledger.sent), [s for s in ledger.sent if s.code != 250]
    gw.write(Version(2))  # the watcher is still alive: the next good file applies
    await gw.wait_for("mxgate_config_generation", 3)
    fresh = await RawClient.connect(gw.smtp_port)
    assert advertised_size(await fresh.greet()) == Version(2).size
    await fresh.close()
    await ledger.check(postfix_copies(postfix_upstream))
    await baseline.back_to(gw.connections)
