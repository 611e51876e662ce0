"""The HTTP side on a real aiohttp server (loopback, port 0): policy by Host, TLS-RPT intake."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from mxgate_gateway.config.model import MTASTS, MTASTSMode, MTASTSPolicy, TLSRPTSettings
from mxgate_gateway.mtasts.http import GZIP, JSON, add_routes
from mxgate_gateway.mtasts.metrics import TLSRPTRecorder
from mxgate_gateway.mtasts.policy import render_policy

RFC_EXAMPLE = (Path(__file__).parent / "data" / "rfc8460-example-report.json").read_bytes()
POLICY = MTASTSPolicy(domain="example.com", mode="testing", mx=("mx1.example.com",))
SECTION = MTASTS(
    policies=(POLICY,),
    tlsrpt=TLSRPTSettings(enabled=True, max_compressed_bytes=8192, max_decompressed_bytes=65536),
)


@dataclass
class Served:
    base: str
    session: aiohttp.ClientSession
    registry: CollectorRegistry
    recorder: TLSRPTRecorder
    config: dict[str, MTASTS | None]

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    async def get_policy(self, host: str) -> tuple[int, str, str]:
        async with self.session.get(
            f"{self.base}/.well-known/mta-sts.txt", headers={"Host": host}
        ) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()

    async def post(
        self, body: bytes, ctype: str = JSON, **headers: str
    ) -> tuple[int, dict[str, str]]:
        async with self.session.post(
            f"{self.base}/tlsrpt", data=body, headers={"Content-Type": ctype, **headers}
        ) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    registry = CollectorRegistry()
    recorder = TLSRPTRecorder(registry)
    config: dict[str, MTASTS | None] = {"current": SECTION}
    app = web.Application()
    add_routes(app, lambda: config["current"], recorder)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        yield Served(f"http://127.0.0.1:{port}", session, registry, recorder, config)
    await runner.cleanup()


@pytest.mark.parametrize(
    "host", ["mta-sts.example.com", "MTA-STS.Example.COM", "mta-sts.example.com:443"]
)
async def test_policy_is_served_by_host_as_text_plain(served: Served, host: str) -> None:
    """``mta-sts.<domain>`` gets the domain's policy, byte for byte, as text/plain."""
    status, ctype, body = await served.get_policy(host)
    assert status == 200
    assert ctype.split(";")[0] == "text/plain"
    assert body == render_policy(POLICY)
    assert body.startswith("version: STSv1\r\nmode: testing\r\n")


@pytest.mark.parametrize(
    "host", ["example.com", "mta-sts.other.test", "mta-sts.", "x.mta-sts.example.com", "[::1]:80"]
)
async def test_unknown_hosts_get_404(served: Served, host: str) -> None:
    """Hosts that are not ``mta-sts.<configured domain>`` get 404 and are counted."""
    status, _, _ = await served.get_policy(host)
    assert status == 404
    assert served.metric("mxgate_mtasts_policy_requests_total", outcome="unknown_host") == 1


async def test_policy_follows_the_current_snapshot(served: Served) -> None:
    """A reloaded config changes what is served; no config means 404."""
    enforce = POLICY.model_copy(update={"mode": MTASTSMode.ENFORCE})
    served.config["current"] = SECTION.model_copy(update={"policies": (enforce,)})
    assert (await served.get_policy("mta-sts.example.com"))[2] == render_policy(enforce)
    served.config["current"] = None
    assert (await served.get_policy("mta-sts.example.com"))[0] == 404


async def test_rfc_example_report_is_accepted_gzip_and_counted(served: Served) -> None:
    """A gzipped RFC 8460 report gets 200 and shows up in metrics and the summary."""
    status, body = await served.post(gzip.compress(RFC_EXAMPLE), GZIP)
    assert (status, body) == (200, {"status": "accepted"})
    assert served.metric("mxgate_tlsrpt_reports_total", outcome="accepted") == 1
    assert served.metric("mxgate_tlsrpt_sessions_total", policy_type="sts", result="failed") == 303
    summary = served.recorder.summary.as_dict()
    assert summary["sessions"] == {"successful": 5326, "failed": 303}


async def test_json_report_is_accepted_once(served: Served) -> None:
    """``application/tlsrpt+json`` is accepted; a resent report is not counted twice."""
    assert await served.post(RFC_EXAMPLE, JSON) == (200, {"status": "accepted"})
    assert await served.post(RFC_EXAMPLE, JSON) == (200, {"status": "duplicate"})
    assert served.recorder.summary.as_dict()["sessions"]["failed"] == 303


@pytest.mark.parametrize(
    ("ctype", "headers"),
    [
        ("application/json", {}),
        ("text/plain", {}),
        ("application/gzip", {}),
        (JSON, {"Content-Encoding": "gzip"}),
    ],
)
async def test_wrong_content_type_gets_415(
    served: Served, ctype: str, headers: dict[str, str]
) -> None:
    """Only the two RFC 8460 media types, unencoded, are taken in."""
    status, body = await served.post(RFC_EXAMPLE, ctype, **headers)
    assert status == 415
    assert body["error"] == "unsupported_media_type"
    assert served.metric("mxgate_tlsrpt_reports_total", outcome="unsupported_media_type") == 1


async def test_body_over_the_compressed_cap_gets_413(served: Served) -> None:
    """A body over ``max_compressed_bytes`` is refused with 413, with or without a length."""
    big = b"x" * 9000
    assert (await served.post(big, JSON))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000

    async with served.session.post(
        f"{served.base}/tlsrpt", data=chunks(), headers={"Content-Type": GZIP}
    ) as resp:
        assert resp.status == 413
    assert served.metric("mxgate_tlsrpt_rejected_reports_total", reason="too_large") == 2


async def test_gzip_bomb_gets_413(served: Served) -> None:
    """A small gzip inflating past ``max_decompressed_bytes`` is refused with 413."""
    bomb = gzip.compress(b" " * (4 << 20), compresslevel=9)
    assert len(bomb) < 8192
    status, body = await served.post(bomb, GZIP)
    assert (status, body["error"]) == (413, "too_large")


@pytest.mark.parametrize(
    ("body", "ctype", "error"),
    [
        (gzip.compress(RFC_EXAMPLE)[:100], GZIP, "bad_gzip"),
        (RFC_EXAMPLE[:-10], JSON, "not_json"),
        (b'["a report"]', JSON, "wrong_type"),
        (b"{}", JSON, "missing_field"),
    ],
)
async def test_malformed_reports_get_400_and_are_counted(
    served: Served, body: bytes, ctype: str, error: str
) -> None:
    """Broken reports get 400 naming the problem; the server keeps serving."""
    status, reply = await served.post(body, ctype)
    assert (status, reply["error"]) == (400, error)
    assert served.metric("mxgate_tlsrpt_rejected_reports_total", reason=error) == 1
    assert served.recorder.summary.as_dict()["reports"]["rejected"] == {error: 1}
    assert await served.post(RFC_EXAMPLE, JSON) == (200, {"status": "accepted"})


async def test_intake_disabled_gets_404(served: Served) -> None:
    """With ``tlsrpt.enabled: false`` the endpoint answers 404 and counts nothing else."""
    served.config["current"] = SECTION.model_copy(update={"tlsrpt": TLSRPTSettings()})
    status, body = await served.post(RFC_EXAMPLE, JSON)
    assert (status, body["error"]) == (404, "disabled")
    assert served.recorder.summary.as_dict()["reports"]["accepted"] == 0


async def test_logs_name_the_outcome_never_the_report_contents(served: Served) -> None:
    """Intake logs carry counts and the organisation, never contact, ids or addresses."""
    with capture_logs() as logs:
        await served.post(RFC_EXAMPLE, JSON)
        await served.post(b"{}", JSON)
    events = [e["event"] for e in logs]
    assert events == ["tlsrpt_report_accepted", "tlsrpt_report_rejected"]
    text = repr(logs)
    for secret in ("sts-reporting@company-x.example", "5065427c", "2001:db8", "203.0.113"):
        assert secret not in text


def _report(report_id: str, successful: int = 5326, failed: int = 303) -> bytes:
    import json  # noqa: PLC0415

    doc = json.loads(RFC_EXAMPLE)
    doc["report-id"] = report_id
    doc["policies"][0]["summary"] = {
        "total-successful-session-count": successful,
        "total-failure-session-count": failed,
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("successful", "failed"), [(8 * 10**15, 0), (10**9 + 1, 0), (10**9, 1), (0, 2 * 10**9)]
)
async def test_implausible_session_counts_are_refused(
    served: Served, successful: int, failed: int
) -> None:
    """Issue 12.11: more than 10^9 sessions in one report is nonsense; nothing is counted."""
    status, reply = await served.post(_report("big", successful, failed), JSON)
    assert (status, reply["error"]) == (400, "invalid_value")
    assert served.recorder.summary.as_dict()["sessions"] == {"successful": 0, "failed": 0}
    assert (
        served.metric("mxgate_tlsrpt_sessions_total", policy_type="sts", result="successful") == 0
    )


async def test_one_source_gets_a_bounded_number_of_reports_per_interval(served: Served) -> None:
    """Issue 12.11: past ``max_reports_per_source`` a source gets 429 and adds nothing."""
    tlsrpt = SECTION.tlsrpt.model_copy(update={"max_reports_per_source": 3})
    served.config["current"] = SECTION.model_copy(update={"tlsrpt": tlsrpt})
    for i in range(3):
        assert await served.post(_report(f"r{i}"), JSON) == (200, {"status": "accepted"})
    status, reply = await served.post(_report("r3"), JSON)
    assert (status, reply) == (429, {"error": "over_quota"})
    assert served.recorder.summary.as_dict()["reports"]["accepted"] == 3
    assert served.metric("mxgate_tlsrpt_rejected_reports_total", reason="over_quota") == 1


async def test_one_source_contributes_a_bounded_number_of_sessions_per_interval(
    served: Served,
) -> None:
    """Issue 12.11: a source's sessions per interval are capped; the report that would pass
    the cap is refused whole (no partial counts)."""
    tlsrpt = SECTION.tlsrpt.model_copy(update={"max_sessions_per_source": 10_000})
    served.config["current"] = SECTION.model_copy(update={"tlsrpt": tlsrpt})
    assert (await served.post(_report("a", 6000, 0), JSON))[0] == 200
    assert (await served.post(_report("b", 6000, 0), JSON))[0] == 429
    assert (await served.post(_report("c", 4000, 0), JSON))[0] == 200
    assert served.recorder.summary.as_dict()["sessions"]["successful"] == 10_000
