"""Issue 12.10: two HTTP listeners. Public (``listen.public``): only the MTA-STS policy and
``POST /tlsrpt``, answers without internal detail. Admin (``listen.http``): health,
metrics, report. ``/readyz`` never shows file paths or OpenSSL errors."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mtapeers.gwconfig import gateway_config
from mxgate_gateway.app import Gateway

MTA_STS = {
    "policies": [{"domain": "accepted.test", "mode": "testing", "mx": ["mx.test"]}],
    "tlsrpt": {"enabled": True},
}
ADMIN_PATHS = ("/livez", "/readyz", "/metrics", "/report")


async def fetch(port: int, method: str, path: str, **kw: Any) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"http://127.0.0.1:{port}{path}", **kw) as resp,
    ):
        return resp.status, await resp.text()


@pytest.fixture
async def split(tls_files: dict[str, Path]) -> AsyncIterator[Gateway]:
    cfg = gateway_config(
        1,
        tls_files,
        listen={"smtp": "127.0.0.1:0", "http": "127.0.0.1:0", "public": "127.0.0.1:0"},
        mta_sts=MTA_STS,
    )
    async with Gateway(cfg) as gw:
        yield gw


async def test_public_listener_serves_only_mta_sts_and_tlsrpt(split: Gateway) -> None:
    assert split.public_port not in (None, split.http_port)
    status, text = await fetch(
        split.public_port,
        "GET",
        "/.well-known/mta-sts.txt",
        headers={"Host": "mta-sts.accepted.test"},
    )
    assert (status, text.splitlines()[0]) == (200, "version: STSv1")
    for path in ADMIN_PATHS:
        assert (await fetch(split.public_port, "GET", path))[0] == 404, path


async def test_admin_listener_serves_no_public_routes(split: Gateway) -> None:
    for path in ADMIN_PATHS:
        assert (await fetch(split.http_port, "GET", path))[0] == 200, path
    status, _ = await fetch(
        split.http_port,
        "GET",
        "/.well-known/mta-sts.txt",
        headers={"Host": "mta-sts.accepted.test"},
    )
    assert status == 404
    status, _ = await fetch(
        split.http_port,
        "POST",
        "/tlsrpt",
        data=b"{}",
        headers={"Content-Type": "application/tlsrpt+json"},
    )
    assert status in (404, 405)


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"{not json", "application/tlsrpt+json"),
        (b"\x1f\x8b\x08\x00garbage-after-a-gzip-magic", "application/tlsrpt+gzip"),
        (gzip.compress(b"\xff\xfe not utf-8"), "application/tlsrpt+gzip"),
        (b"{}", "application/json"),
    ],
)
async def test_public_errors_carry_no_internal_detail(
    split: Gateway, body: bytes, ctype: str
) -> None:
    """Error bodies name the problem kind (and schema field), never exception text."""
    status, text = await fetch(
        split.public_port, "POST", "/tlsrpt", data=body, headers={"Content-Type": ctype}
    )
    assert 400 <= status < 500
    reply = json.loads(text)
    assert set(reply) <= {"error", "field"}, reply
    for leak in ("Error -3", "Expecting", "codec", "line 1", "/", "zlib", "Traceback"):
        assert leak not in reply.get("error", "") + reply.get("field", ""), reply


async def test_readyz_shows_no_paths_or_openssl_errors(tmp_path: Path) -> None:
    """A missing or broken pair: /readyz says so without the file paths or OpenSSL text."""
    (tmp_path / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\nnot a cert\n")
    (tmp_path / "tls.key").write_text("junk")
    tls = {"cert": tmp_path / "tls.crt", "key": tmp_path / "tls.key"}
    async with Gateway(gateway_config(1, tls)) as gw:
        status, text = await fetch(gw.http_port, "GET", "/readyz")
    assert status == 503
    assert json.loads(text)["checks"]["tls"]["ok"] is False
    for leak in (str(tmp_path), "tls.crt", "PEM", "_ssl.c", "SSL"):
        assert leak not in text, text
