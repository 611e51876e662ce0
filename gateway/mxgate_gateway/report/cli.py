"""``mxgate report``: fetch ``/report`` from one or more gateways, merge, print.

The only I/O in the report package: HTTP GETs with aiohttp and stdout/stderr.
It must not compute report numbers itself (``merge`` and ``render_table`` do)
and fails loudly rather than print a partial merge as if it were complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from mxgate_gateway.report.document import ReportDocument, ReportFormatError, parse_document
from mxgate_gateway.report.loss import merge
from mxgate_gateway.report.render import render_table

if TYPE_CHECKING:
    import aiohttp

DEFAULT_URL = "http://127.0.0.1:8025"
EXIT_OK, EXIT_FETCH, EXIT_FORMAT = 0, 1, 2


class FetchError(Exception):
    """A gateway's /report could not be fetched or was not JSON."""


def report_url(url: str) -> str:
    """``http://host:8025`` → ``http://host:8025/report``; a full /report URL is kept."""
    base = url.rstrip("/")
    return base if base.endswith("/report") else base + "/report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``mxgate report`` options to ``parser`` (used by the main CLI too)."""
    parser.add_argument(
        "--url",
        action="append",
        metavar="URL",
        help=f"a gateway's HTTP address (repeat to merge several; default {DEFAULT_URL})",
    )
    parser.add_argument("--json", action="store_true", help="print the merged JSON, not a table")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each gateway"
    )


async def _fetch_one(session: aiohttp.ClientSession, url: str) -> object:
    import aiohttp  # noqa: PLC0415 - imported only when fetching: `mxgate --help` stays light

    try:
        async with session.get(report_url(url)) as resp:
            if resp.status != 200:
                raise FetchError(f"{url}: HTTP {resp.status}")
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
    if not isinstance(body, dict):
        raise FetchError(f"{url}: the body is not a JSON object")
    return body


async def fetch_all(urls: Sequence[str], per_request_s: float) -> list[object]:
    """GET every gateway's /report concurrently; raise FetchError naming each failure."""
    import aiohttp  # noqa: PLC0415 - see _fetch_one

    client_timeout = aiohttp.ClientTimeout(total=per_request_s)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        results = await asyncio.gather(
            *(_fetch_one(session, u) for u in urls), return_exceptions=True
        )
    errors = [str(r) for r in results if isinstance(r, BaseException)]
    if errors:
        raise FetchError("; ".join(errors))
    return [r for r in results if not isinstance(r, BaseException)]


def run(args: argparse.Namespace, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    """Fetch, merge and print; return the process exit code."""
    urls: list[str] = args.url or [DEFAULT_URL]
    try:
        snapshots = asyncio.run(fetch_all(urls, args.timeout))
    except FetchError as exc:
        print(f"mxgate report: cannot fetch: {exc}", file=stderr)
        return EXIT_FETCH
    try:
        merged = merge(parse_document(s) for s in snapshots)
    except ReportFormatError as exc:
        print(f"mxgate report: {exc}", file=stderr)
        return EXIT_FORMAT
    print_document(merged, as_json=args.json, stdout=stdout)
    return EXIT_OK


def print_document(doc: ReportDocument, *, as_json: bool, stdout: TextIO) -> None:
    """The document as JSON (``--json``) or as the table; shared with ``mxgate estimate``."""
    if as_json:
        json.dump(doc.to_json(), stdout, indent=2, sort_keys=False)
        stdout.write("\n")
    else:
        stdout.write(render_table(doc))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mxgate report",
        description="How much mail would I lose? The loss report of one or more gateways.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
