"""The ``mxgate`` command: ``dev``, ``gateway``, ``check-config``, ``config-keys``, ``report``,
``estimate``.

Parses arguments into settings, loads config through the loader, and hands
off to the composition root. It must not contain protocol logic; errors in
files are printed with their field paths, never as tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mxgate_gateway import __version__
from mxgate_gateway.config.keys import config_keys, render_keys
from mxgate_gateway.config.loader import load_config
from mxgate_gateway.errors import ConfigError, MxgateError
from mxgate_gateway.estimate.cli import add_arguments as add_estimate_arguments
from mxgate_gateway.estimate.cli import run as run_estimate
from mxgate_gateway.policy.standards import standards_warnings
from mxgate_gateway.report.cli import add_arguments as add_report_arguments
from mxgate_gateway.report.cli import run as run_report
from mxgate_gateway.settings import DevSettings, GatewaySettings, Tuning


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxgate", description="SMTP edge gateway")
    parser.add_argument("--version", action="version", version=f"mxgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run a STARTTLS gateway relaying to a local Maildir sink")
    dev.add_argument("--dir", type=Path, default=DevSettings.directory, help="state directory")
    dev.add_argument("--smtp", default=DevSettings.smtp, help="SMTP listen host:port")
    dev.add_argument(
        "--http", default=DevSettings.http, help="admin HTTP host:port (health, metrics, report)"
    )
    dev.add_argument(
        "--public", default=DevSettings.public, help="public HTTP host:port (MTA-STS, TLS-RPT)"
    )

    gw = sub.add_parser("gateway", help="run the production gateway")
    gw.add_argument("--config", type=Path, required=True, help="gateway config file (YAML)")
    gw.add_argument("--policy", type=Path, help="policy file written by the operator")
    gw.add_argument("--log-format", choices=("json", "console"), help="override log.format")

    keys = "every key of the config file, its default and what it holds:\n" + render_keys(
        config_keys()
    )
    check = sub.add_parser(
        "check-config",
        help="validate a config file; exit 0 valid, 1 invalid",
        description="Validate a gateway config file: every mistake on one line, with its key.",
        epilog=keys,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("file", type=Path)
    check.add_argument("--policy", type=Path, help="also merge this policy file")
    sub.add_parser("config-keys", help="list every config key with its default")

    report = sub.add_parser("report", help="the loss report of one or more gateways, merged")
    add_report_arguments(report)

    est = sub.add_parser(
        "estimate",
        help="the loss report from an existing MTA's logs (Postfix, Exim), before installing",
    )
    add_estimate_arguments(est)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file, args.policy)
    if args.command == "config-keys":
        print(render_keys(config_keys()))
        return 0
    if args.command == "report":
        return run_report(args)
    if args.command == "estimate":
        return run_estimate(args)
    if args.command == "gateway":
        settings = GatewaySettings(args.config, args.policy, args.log_format)
        return _run(run_gateway(settings))
    settings_dev = DevSettings(
        directory=args.dir, smtp=args.smtp, http=args.http, public=args.public
    )
    return _run(run_dev(settings_dev))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop unless MXGATE_UVLOOP=0, when installed (bench/README.md: less CPU per message)."""
    if not Tuning.from_env().uvloop:
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run(coro: object) -> int:
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return int(runner.run(coro))  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return 130


def check_config(path: Path, policy: Path | None) -> int:
    """Print every problem with its field path; 0 if valid, 1 if not."""
    try:
        config = load_config(path, policy)
    except ConfigError as exc:
        print(f"{exc.source}: invalid ({len(exc.errors)} error(s))", file=sys.stderr)
        for field, message in exc.errors:
            print(f"  {field}: {message}", file=sys.stderr)
        return 1
    print(
        f"{path}: ok (hostname {config.hostname}, {len(config.domains)} domain(s), "
        f"{len(config.upstreams)} upstream(s), {len(config.policy.rules)} rule(s))"
    )
    for field, message in standards_warnings(config):  # valid, but worth a second look
        print(f"  warning: {field}: {message}", file=sys.stderr)
    return 0


async def run_gateway(settings: GatewaySettings) -> int:
    """Load the config, configure logs, and serve until a signal."""
    from mxgate_gateway.app import Gateway, run  # noqa: PLC0415 - keep check-config light
    from mxgate_gateway.logs import configure_logging  # noqa: PLC0415
    from mxgate_gateway.reloading import (  # noqa: PLC0415
        load_for_start,
        policy_file_state,
        watch_files,
    )

    try:
        config, refused = load_for_start(settings.config_path, settings.policy_path)
    except ConfigError as exc:
        return check_config_error(exc)
    configure_logging(settings.log_format or config.log.format, config.log.level)
    try:
        gateway = Gateway(config)
        if settings.policy_path is not None:
            policy_file_state(gateway, refused)
        watch_files(gateway, settings.config_path, settings.policy_path)  # hot reload
        return await run(gateway)
    except MxgateError as exc:
        print(f"mxgate: {exc}", file=sys.stderr)
        return 1


def check_config_error(exc: ConfigError) -> int:
    print(f"mxgate: {exc.source} is invalid:", file=sys.stderr)
    for field, message in exc.errors:
        print(f"  {field}: {message}", file=sys.stderr)
    return 1


async def run_dev(settings: DevSettings) -> int:
    """Self-signed cert + Maildir sink + gateway; print how to try it."""
    from mxgate_gateway.app import Gateway, run  # noqa: PLC0415 - keep check-config light
    from mxgate_gateway.dev import (  # noqa: PLC0415
        dev_config,
        instructions,
        self_signed,
        start_sink,
    )
    from mxgate_gateway.logs import configure_logging  # noqa: PLC0415

    configure_logging("console", "info")
    cert, key = self_signed(settings.directory / "tls", settings.hostname)
    sink = await start_sink(settings.directory / "Maildir")
    try:
        sink_port = sink.sockets[0].getsockname()[1]
        gateway = Gateway(dev_config(settings, cert, key, sink_port))

        async def announce(gw: Gateway) -> None:
            print(instructions(settings, gw.smtp_port, gw.http_port, gw.public_port), flush=True)

        gateway.background.append(announce)
        return await run(gateway)
    except OSError as exc:
        print(f"mxgate dev: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        sink.close()


if __name__ == "__main__":
    sys.exit(main())
