"""Fetch ``GET /report`` JSON from the gateways (fixed URLs or pods by label selector).

I/O only: returns the parsed documents (``report.document``, the gateway's typed owner)
and a note about the ones that failed; the per-rule reading is pure
(render.status.rule_counts). It must not write status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import aiohttp

from mxgate_gateway.report.document import ReportDocument, parse_document
from mxgate_operator.kube import Kube
from mxgate_operator.settings import OperatorSettings


@dataclass(frozen=True)
class Reports:
    """The reports read this round, and why any URL could not be read.

    ``sources`` names the URL each document was read from (same order, when known): a
    gateway read for several namespaces (fixed report URLs) is summed once for a floor.
    """

    documents: tuple[ReportDocument, ...]
    failures: tuple[str, ...]
    sources: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if not self.documents and not self.failures:
            return "no gateway found to read /report from"
        if self.failures:
            return f"{len(self.failures)} gateway report(s) unreadable: " + "; ".join(
                self.failures[:3]
            )
        return ""


class ReportPass:
    """A report source that remembers what each namespace read during one pass of the
    report loop, so the floors (in every namespace's document) can be counted afterwards."""

    def __init__(self, source: Callable[[str], Awaitable[Reports]]) -> None:
        self.source = source
        self._read: dict[str, Reports] = {}

    async def __call__(self, namespace: str) -> Reports:
        read = await self.source(namespace)
        self._read[namespace] = read
        return read

    def take(self, namespaces: Iterable[str]) -> dict[str, Reports | None]:
        """What the pass over ``namespaces`` read (None: that namespace's reconcile failed
        before reading); the next pass starts empty."""
        read, self._read = self._read, {}
        return {ns: read.get(ns) for ns in sorted({*namespaces, *read})}


async def _fetch(session: aiohttp.ClientSession, url: str) -> ReportDocument:
    async with session.get(url) as response:
        response.raise_for_status()
        data = await response.json(content_type=None)
    return parse_document(data)  # ReportFormatError (a ValueError) → noted as a failure


async def fetch_reports(urls: Sequence[str], per_request_timeout: float) -> Reports:
    """GET every URL concurrently; a failing gateway is noted, never fatal."""
    if not urls:
        return Reports((), ())
    client_timeout = aiohttp.ClientTimeout(total=per_request_timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        results = await asyncio.gather(*(_fetch(session, u) for u in urls), return_exceptions=True)
    docs: list[ReportDocument] = []
    sources: list[str] = []
    failures: list[str] = []
    for url, result in zip(urls, results, strict=True):
        if isinstance(result, BaseException):
            failures.append(f"{url}: {type(result).__name__}")
        else:
            docs.append(result)
            sources.append(url)
    return Reports(tuple(docs), tuple(failures), tuple(sources))


async def report_urls(kube: Kube, namespace: str, settings: OperatorSettings) -> list[str]:
    """Fixed URLs if configured, else one per running gateway pod."""
    if settings.report_urls:
        return list(settings.report_urls)
    ips = await kube.gateway_pod_ips(namespace, settings.gateway_selector)
    port = settings.gateway_port
    return [
        f"http://[{ip}]:{port}/report" if ":" in ip else f"http://{ip}:{port}/report" for ip in ips
    ]
