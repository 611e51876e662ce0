"""MTA-STS and TLS-RPT inside a running gateway: policy, intake, /report and /metrics."""

from __future__ import annotations

import gzip
from pathlib import Path

import aiohttp

from mxgate_gateway.app import Gateway
from mxgate_gateway.config.model import Config
from mxgate_gateway.report import LossReport, merge, parse_document
from mxgate_gateway.report.render import render_table

RFC_EXAMPLE = (Path(__file__).parent / "data" / "rfc8460-example-report.json").read_bytes()


def config() -> Config:
    return Config.model_validate(
        {
            "hostname": "mx1.accepted.test",
            "listen": {"smtp": "127.0.0.1:0", "http": "127.0.0.1:0"},
            "domains": ["accepted.test"],
            "upstreams": [{"address": "127.0.0.1:9"}],  # never dialled: no mail is sent here
            "limits": {"drain_timeout": 0},
            "mta_sts": {
                "policies": [{"domain": "accepted.test", "mx": ["mx1.accepted.test"]}],
                "tlsrpt": {"enabled": True},
            },
        }
    )


async def test_gateway_serves_policy_and_reports_tlsrpt_results() -> None:
    """A TLS-RPT report POSTed to the gateway shows up in /report and /metrics."""
    loss = LossReport()
    async with Gateway(config(), report_snapshot=loss.snapshot) as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{base}/.well-known/mta-sts.txt", headers={"Host": "mta-sts.accepted.test"}
            ) as resp:
                assert resp.status == 200
                assert await resp.text() == (
                    "version: STSv1\r\nmode: testing\r\nmx: mx1.accepted.test\r\n"
                    "max_age: 604800\r\n"
                )
            async with http.post(
                f"{base}/tlsrpt",
                data=gzip.compress(RFC_EXAMPLE),
                headers={"Content-Type": "application/tlsrpt+gzip"},
            ) as resp:
                assert resp.status == 200
            async with http.get(f"{base}/report") as resp:
                report = await resp.json()
            async with http.get(f"{base}/metrics") as resp:
                metrics = await resp.text()
    assert report["format"] == "mxgate-report/1"
    assert report["tlsrpt"]["sessions"] == {"successful": 5326, "failed": 303}
    assert report["tlsrpt"]["organizations"][0]["organization"] == "Company-X"
    assert 'mxgate_tlsrpt_sessions_total{policy_type="sts",result="failed"} 303.0' in metrics
    merged = merge([parse_document(report), parse_document(report)])
    assert merged.tlsrpt is not None
    assert merged.tlsrpt["sessions"]["failed"] == 606
    assert "TLS-RPT" in render_table(merged)
