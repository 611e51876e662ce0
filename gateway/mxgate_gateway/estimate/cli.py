"""``mxgate estimate LOG...``: the loss report from Postfix or Exim logs, before installing.

Opens the logs (reader), feeds each format's parser in time order, counts with
the estimator and prints with ``mxgate report``'s printer. Errors are one line on
stderr with an exit code, never a traceback; a line it cannot read never is one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol, TextIO

from mxgate_gateway.config.model import Listener
from mxgate_gateway.errors import ConfigError
from mxgate_gateway.estimate.estimator import Estimator, Replay
from mxgate_gateway.estimate.exim import EximParser
from mxgate_gateway.estimate.facts import ParseStats
from mxgate_gateway.estimate.postfix import PostfixParser
from mxgate_gateway.estimate.reader import LogError, LogFile, Progress, chronological, open_log
from mxgate_gateway.estimate.stamps import Window, parse_bound
from mxgate_gateway.report.cli import print_document

EXIT_OK, EXIT_INPUT, EXIT_POLICY = 0, 1, 2
FORMATS = ("auto", "postfix", "exim")


class _Parser(Protocol):
    stats: ParseStats

    def feed(self, line: str) -> None: ...
    def finish(self) -> None: ...


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``mxgate estimate`` options to ``parser`` (used by the main CLI)."""
    parser.add_argument("logs", nargs="+", metavar="LOG", help="log files (.gz ok; - for stdin)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="log format")
    parser.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="replay through this policy (gateway config, policy file, or TLSPolicy and"
        " ClusterTLSPolicy YAML, e.g. kubectl get tlsp,ctlsp -A -o yaml)",
    )
    parser.add_argument(
        "--listener",
        choices=[x.value for x in Listener],
        help="the listener role the policy judges (default: the config's, else public-mx)",
    )
    parser.add_argument("--json", action="store_true", help="print the mxgate-report/1 JSON")
    parser.add_argument("--since", metavar="T", help="only lines at or after T (ISO 8601)")
    parser.add_argument("--until", metavar="T", help="only lines before T (ISO 8601)")
    parser.add_argument(
        "--year",
        type=int,
        help="year of syslog timestamps, which carry none (default: each file's modification year)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress on stderr (auto: when stderr is a terminal)",
    )


def _open_all(
    names: Sequence[str], forced: str, stdin: BinaryIO | None, year: int | None
) -> list[LogFile]:
    logs = [open_log(name, stdin, year) for name in names]
    for log in logs:
        if forced != "auto":
            log.format = forced
        elif log.format is None and log.head:
            raise LogError(f"{log.name}: neither a Postfix nor an Exim log (try --format)")
    return chronological(logs)


def estimate(
    logs: list[LogFile],
    window: Window,
    replay: Replay | None,
    progress: Progress | None = None,
) -> tuple[Estimator, str, ParseStats]:
    """Stream every log through its format's parser into one estimator."""
    estimator = Estimator(replay)
    stats = ParseStats()
    parsers: dict[str, _Parser] = {}

    def parser_for(log: LogFile) -> _Parser:
        fmt = log.format or "postfix"
        if fmt not in parsers:
            if fmt == "exim":
                parsers[fmt] = EximParser(estimator.add, window=window, stats=stats)
            else:
                parsers[fmt] = PostfixParser(
                    estimator.add, year=log.year, window=window, stats=stats
                )
        parser = parsers[fmt]
        if isinstance(parser, PostfixParser):  # syslog stamps: this file's year
            parser.year, parser.last_month = log.year, log.last_month
        return parser

    for log in logs:
        if log.format is None:  # an empty file
            continue
        feed: Callable[[str], None] = parser_for(log).feed
        if progress is None:
            for line in log.lines():
                feed(line)
        else:
            for n, line in enumerate(log.lines()):
                feed(line)
                if not n & 0xFFFF:
                    progress.tick(stats.lines, log)
            progress.file_done(log)
        log.close()
    for parser in parsers.values():
        parser.finish()
    if progress is not None:
        progress.finish()
    source = "+".join(sorted(parsers)) or "empty"
    return estimator, source, stats


def run(
    args: argparse.Namespace,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: BinaryIO | None = None,
) -> int:
    """Read, count and print; return the process exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        window = Window(
            parse_bound(args.since) if args.since else None,
            parse_bound(args.until) if args.until else None,
        )
    except ValueError as exc:
        print(f"mxgate estimate: {exc}", file=stderr)
        return EXIT_INPUT
    replay = None
    if args.policy is not None:
        try:
            from mxgate_gateway.estimate.policyfile import load_replay  # noqa: PLC0415

            listener = Listener(args.listener) if args.listener else None
            replay = load_replay(args.policy, listener)
        except ConfigError as exc:
            print(f"mxgate estimate: {exc.source} is invalid:", file=stderr)
            for field, message in exc.errors:
                print(f"  {field}: {message}", file=stderr)
            return EXIT_POLICY
    try:
        logs = _open_all(args.logs, args.format, stdin, args.year)
        show = args.progress == "always" or (args.progress == "auto" and stderr.isatty())
        progress = Progress(sum(log.size for log in logs), stderr if show else None)
        estimator, source, stats = estimate(logs, window, replay, progress)
    except (LogError, OSError, EOFError) as exc:
        print(f"mxgate estimate: cannot read: {exc}", file=stderr)
        return EXIT_INPUT
    document = estimator.document(source, len(logs), stats)
    print_document(document, as_json=args.json, stdout=stdout)
    return EXIT_OK
