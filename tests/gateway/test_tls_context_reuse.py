"""SSL contexts are built once per config generation, never per connection (issue 13.1).

Building a client context that loads the system CA bundle costs ~10 ms of CPU;
built per upstream connection it dominated the cost of a relayed message. The
count of ``ssl.SSLContext`` constructions while relaying proves it is not.
"""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest

from mtapeers.gwconfig import gateway_config
from mtapeers.postfix import Postfix
from mtapeers.raw import RawClient
from mxgate_gateway.app import Gateway
from mxgate_gateway.config.model import Upstream, UpstreamTLS
from mxgate_gateway.tls.contexts import UpstreamContexts, upstream_context

pytestmark = pytest.mark.postfix

MESSAGES = 6


class Built:
    """Counts every ``ssl.SSLContext`` made while installed (create_default_context too)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = ssl.SSLContext.__new__

        def counting(cls: type[ssl.SSLContext], *args: Any, **kwargs: Any) -> ssl.SSLContext:
            self.count += 1
            return original(cls, *args, **kwargs)

        monkeypatch.setattr(ssl.SSLContext, "__new__", staticmethod(counting))


async def relay_one(port: int, mark: str) -> int:
    client = await RawClient.connect(port)
    await client.greet()
    assert (await client.cmd("MAIL FROM:<s@example.org>")).code == 250
    assert (await client.cmd("RCPT TO:<alice@accepted.test>")).code == 250
    assert (await client.cmd("DATA")).code == 354
    final = await client.cmd(f"Subject: {mark}\r\n\r\nhello\r\n.".encode())
    await client.close()
    return final.code


@pytest.mark.parametrize("tls", ["opportunistic", "required"])
async def test_relaying_n_messages_builds_no_new_ssl_context(
    postfix_upstream: Postfix,
    tls_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tls: str,
) -> None:
    """N messages, each on a new upstream connection with STARTTLS: at most one client
    context for the upstream in all (the first use), none per message."""
    upstream = {"address": f"127.0.0.1:{postfix_upstream.port}", "tls": tls}
    if tls == "required":
        upstream["ca_file"] = str(tls_files["ca"])
    config = gateway_config(0, tls_files, upstreams=[upstream])
    async with Gateway(config) as gw:
        built = Built(monkeypatch)
        marks = [f"mxgate-ctx-{uuid.uuid4().hex}" for _ in range(MESSAGES)]
        codes = [await relay_one(gw.smtp_port, mark) for mark in marks]
    assert codes == [250] * MESSAGES
    assert built.count <= 1
    for mark in marks:  # each went over STARTTLS to the upstream
        message = postfix_upstream.wait_for(mark.encode(), "alice")
        hop = message.split(b"by upstream.test", 1)[0].rsplit(b"Received:", 1)[-1]
        assert b"(using TLS" in hop


def test_opportunistic_loads_no_ca_store() -> None:
    """Opportunistic TLS verifies nothing, so it holds no CA certificates at all."""
    ctx = upstream_context(Upstream(address="127.0.0.1:25", tls=UpstreamTLS.OPPORTUNISTIC))
    assert ctx is not None
    assert ctx.verify_mode is ssl.CERT_NONE
    assert ctx.cert_store_stats()["x509_ca"] == 0
    assert ctx.get_ca_certs() == []


def test_a_new_config_generation_gets_new_contexts_the_same_one_reuses_them() -> None:
    contexts = UpstreamContexts()
    first = (Upstream(address="127.0.0.1:25", tls=UpstreamTLS.OPPORTUNISTIC),)
    second = (Upstream(address="127.0.0.1:25", tls=UpstreamTLS.OPPORTUNISTIC),)
    ctx = contexts.get(first, first[0])
    assert contexts.get(first, first[0]) is ctx
    assert contexts.get(second, second[0]) is not ctx
    assert contexts.get(first, first[0]) is ctx  # the previous generation is still kept
    plain = (Upstream(address="127.0.0.1:25", tls=UpstreamTLS.NONE),)
    assert contexts.get(plain, plain[0]) is None
