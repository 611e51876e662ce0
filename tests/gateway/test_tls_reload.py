"""Certificate reload: a rotated pair reaches new STARTTLS sessions; a broken one is refused."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime
from typing import Any

import pytest
import trustme

from mxgate_gateway.config.model import TLS
from mxgate_gateway.config.watcher import ReloadResult
from mxgate_gateway.tls.reloader import TLSMaterial, TLSReloader, certificate_not_after


def pair(ca: trustme.CA, name: str) -> dict[str, bytes]:
    cert = ca.issue_cert(name)
    return {
        "tls.crt": b"".join(b.bytes() for b in cert.cert_chain_pems),
        "tls.key": cert.private_key_pem.bytes(),
    }


async def served_name(context: ssl.SSLContext, ca: trustme.CA) -> str:
    """Handshake a real TLS client against ``context``; return the leaf's CN."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.check_hostname = False
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        cert = writer.get_extra_info("peercert")
        writer.close()
        return str(dict(x[0] for x in cert["subject"]).get("commonName", "")) or str(
            cert["subjectAltName"][0][1]
        )
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def tls_of(mount: Any) -> TLS:
    return TLS(cert=mount.path("tls.crt"), key=mount.path("tls.key"))


async def test_rotated_certificate_serves_new_handshakes(kubelet_mount: Any, ca: Any) -> None:
    """After a kubelet swap, the next session's context presents the new certificate."""
    kubelet_mount.update(pair(ca, "old.mx.test"))
    seen: list[TLSMaterial] = []
    reloader = TLSReloader(tls_of(kubelet_mount), on_material=seen.append)
    before = reloader.context
    assert await served_name(before, ca) == "old.mx.test"
    kubelet_mount.update(pair(ca, "new.mx.test"))
    assert await reloader.poll_once() is ReloadResult.SUCCESS
    assert await served_name(reloader.context, ca) == "new.mx.test"
    assert await served_name(before, ca) == "old.mx.test"  # a running session's context
    assert len(seen) == 2


@pytest.mark.parametrize(
    "broken",
    [
        {"tls.crt": b"not a certificate"},
        {"tls.key": b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
        "mismatched",
    ],
)
async def test_broken_or_mismatched_pair_keeps_the_last_good(
    kubelet_mount: Any, ca: Any, broken: Any
) -> None:
    """A garbage cert, a garbage key or a key of another cert is refused; old one serves."""
    good = pair(ca, "good.mx.test")
    kubelet_mount.update(good)
    results: list[ReloadResult] = []
    reloader = TLSReloader(tls_of(kubelet_mount), on_result=lambda r, _: results.append(r))
    if broken == "mismatched":
        broken = {"tls.key": pair(ca, "other.mx.test")["tls.key"]}
    kubelet_mount.update({**good, **broken})
    assert await reloader.poll_once() is ReloadResult.FAILURE
    assert results == [ReloadResult.FAILURE]
    assert reloader.status.last_error
    assert "PRIVATE KEY-----" not in reloader.status.last_error
    assert await served_name(reloader.context, ca) == "good.mx.test"


def test_unusable_pair_at_start_fails_loudly(kubelet_mount: Any, ca: Any) -> None:
    """At start-up there is no last good pair, so a broken one raises."""
    kubelet_mount.update({**pair(ca, "x.mx.test"), "tls.crt": b"junk"})
    with pytest.raises(ValueError, match=r"."):
        TLSReloader(tls_of(kubelet_mount))


def test_not_after_is_read_from_the_leaf(ca: Any) -> None:
    """The exposed expiry is the leaf certificate's (not the CA's), in epoch seconds."""
    end = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    cert = ca.issue_cert("leaf.mx.test", common_name="leaf.mx.test", not_after=end)
    pem = b"".join(b.bytes() for b in cert.cert_chain_pems)
    not_after, subject = certificate_not_after(pem)
    assert not_after == end.timestamp()
    assert subject.startswith("CN=leaf.mx.test,")


async def test_certificate_swapped_for_a_fifo_is_refused_not_read(tmp_path: Any) -> None:
    """Issue 12.9: a FIFO at the certificate path is a failed reload, never a hung read."""
    import os  # noqa: PLC0415

    for name, data in pair(trustme.CA(), "one.example").items():
        (tmp_path / name).write_bytes(data)
    reloader = TLSReloader(TLS(cert=tmp_path / "tls.crt", key=tmp_path / "tls.key"))
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "fifo").replace(tmp_path / "tls.crt")
    assert await asyncio.wait_for(reloader.poll_once(), 5) is ReloadResult.FAILURE
    assert "not a regular file" in (reloader.status.last_error or "")


def test_a_fifo_certificate_at_start_is_refused_unread(tmp_path: Any) -> None:
    """Issue 12.9: a FIFO as ``tls.cert`` at start-up is an error, not a hung event loop."""
    import os  # noqa: PLC0415

    from mxgate_gateway.tls.contexts import TLSMaterialError, server_context  # noqa: PLC0415

    os.mkfifo(tmp_path / "tls.crt")
    (tmp_path / "tls.key").write_text("x")
    with pytest.raises(TLSMaterialError, match="not a regular file"):
        server_context(TLS(cert=tmp_path / "tls.crt", key=tmp_path / "tls.key"))
