"""The `shipper` command.

    shipper run PATH... [--format NAME] [--log-group GROUP] [--report FILE]... [--strict] [--sink SPEC]...

`run` reads exported CloudWatch Logs in any format people have (saved Lambda Kinesis and subscription
events, filter-log-events / get-log-events JSON, `aws logs tail` text, CreateExportTask objects,
Firehose-to-S3 objects, Logs Insights results, NDJSON, plain text) from files, directories, standard
input or S3, sends the structured events to the sinks (standard output by default), explains every
reject on stderr, shows a progress bar on a terminal and a report per function at the end. The exit
status tells apart input problems (1), usage errors (2), delivery failures (3) and Ctrl-C (130): see
docs/run.md and shipper.runner, which defines them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipper import __version__, native
from shipper.config import add_delivery_arguments, build_router, config_from_args
from shipper.delivery import Router
from shipper.errors import ConfigError
from shipper.inputs import FORMATS, ReadOptions
from shipper.pipeline import fewer_collections
from shipper.report import PRICE_GB_SECOND_ARM64, PRICE_GB_SECOND_X86_64, PRICE_REQUEST, Prices
from shipper.runner import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNDELIVERED,
    EXIT_USAGE,
    RunOptions,
    run,
)
from shipper.stopping import interruptible_sleep, stopped_by_signals
from shipper.telemetry.config import add_telemetry_arguments, metrics_port, serve_metrics, telemetry_config_from_args
from shipper.terminal import log_to_terminal, printable

__all__ = ["EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNDELIVERED", "EXIT_USAGE", "main"]

_RELATIVE = re.compile(r"(\d{1,9})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


#: Modules that add a subcommand: each has `add_command(subparsers)`, which sets `func` on its parser.
_COMMAND_MODULES: tuple[str, ...] = ("shipper.subscribe", "shipper.consume")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shipper", description="Log pipeline for AWS Lambda fleets.")
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__} (lambda-shipper; hot path {native.implementation()})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_command(commands)
    for module in _COMMAND_MODULES:
        importlib.import_module(module).add_command(commands)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        # The usage of the command that was given (`shipper run ...`), not the top-level one.
        command_parser: argparse.ArgumentParser = getattr(args, "parser", parser)
        command_parser.error(str(exc))


def _run(args: argparse.Namespace) -> int:
    log_to_terminal()  # delivery warnings, which may quote what a server answered
    for path in args.report:
        check_writable(path)
    since = _time(args.since, "--since") if args.since else None
    until = _time(args.until, "--until") if args.until else None
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since {args.since} is not before --until {args.until}")
    stop = threading.Event()
    router = build_router(config_from_args(args, os.environ, _default_sink), sleep=interruptible_sleep(stop))
    options = RunOptions(
        read=ReadOptions(format=args.format, log_group=args.log_group),
        endpoint_url=args.endpoint_url,
        strict=args.strict,
        quiet=args.quiet,
        progress=sys.stderr.isatty(),
        report_paths=tuple(args.report),
        prices=Prices(args.price_gb_second_x86_64, args.price_gb_second_arm64, args.price_request),
        top_metrics=args.top_metrics,
        functions=tuple(args.function),
        since_ms=since,
        until_ms=until,
    )
    port = metrics_port(args)
    if port is None and args.serve:
        raise ConfigError("--serve keeps serving metrics: it needs --metrics-port")
    with stopped_by_signals(stop), fewer_collections():
        if port is None:
            return run(args.paths, router, options, stop=stop)
        return _run_serving_metrics(args, router, options, port, stop)


def _run_serving_metrics(
    args: argparse.Namespace, router: Router, options: RunOptions, port: int, stop: threading.Event
) -> int:
    """`run` with /metrics served while it works and, with --serve, after it until SIGTERM or Ctrl-C."""
    from shipper.telemetry import Telemetry  # loads prometheus_client

    telemetry = Telemetry(telemetry_config_from_args(args))
    server = serve_metrics(telemetry.registry, port, args)
    print(f"shipper: serving metrics at {server.url}", file=sys.stderr)
    try:
        status = run(args.paths, router, options, telemetry, stop)
        if args.serve and not stop.is_set():
            print("shipper: inputs done; still serving metrics until interrupted", file=sys.stderr)
            while not stop.wait(1.0):
                pass
        return status
    finally:
        server.close()


def _add_run_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="process exported CloudWatch Logs of Lambda functions and report on them",
        description="Read exported logs (any format below, gzip'd or not), send structured events to the sinks, "
        "and report per function: invocations, cold starts, durations, cost, memory, failures, custom metrics.",
    )
    run.set_defaults(func=_run, parser=run)
    run.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a file, a directory (read recursively), - for standard input, or s3://BUCKET/PREFIX",
    )
    run.add_argument(
        "--format",
        choices=list(FORMATS),
        metavar="NAME",
        help="read every input as this format instead of recognising it: "
        + "; ".join(f"{name}: {text}" for name, text in FORMATS.items()),
    )
    run.add_argument(
        "--log-group",
        metavar="GROUP",
        help="log group of inputs whose format does not carry one (default: aws/lambda/NAME in the path)",
    )
    run.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint for s3:// inputs (LocalStack, moto, VPC)")
    run.add_argument("--strict", action="store_true", help="stop at the first rejected input, record or event")
    run.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="FILE",
        help="also write the report to FILE (repeatable; checked at start): a page with charts for FILE.html, "
        "JSON for any other name",
    )
    run.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME",
        help="ship and report only the events of this function (repeatable; globs such as 'orders-*')",
    )
    run.add_argument(
        "--since",
        metavar="TIME",
        help="ship and report only events at or after TIME: ISO 8601 (2024-05-20T16:00Z; UTC if no zone) or "
        "a time ago such as 30m, 2h, 7d",
    )
    run.add_argument("--until", metavar="TIME", help="only events before TIME (as --since)")
    run.add_argument("--top-metrics", type=_count, default=10, metavar="N", help="custom metrics in the report (10)")
    run.add_argument(
        "--price-gb-second-x86-64",
        type=_price,
        default=PRICE_GB_SECOND_X86_64,
        metavar="USD",
        help=f"price per GB-second on x86_64 (default {PRICE_GB_SECOND_X86_64:.10f})",
    )
    run.add_argument(
        "--price-gb-second-arm64",
        type=_price,
        default=PRICE_GB_SECOND_ARM64,
        metavar="USD",
        help=f"price per GB-second on arm64 (default {PRICE_GB_SECOND_ARM64:.10f})",
    )
    run.add_argument(
        "--price-request",
        type=_price,
        default=PRICE_REQUEST,
        metavar="USD",
        help=f"price per request (default {PRICE_REQUEST:.7f}, $0.20 per million)",
    )
    add_delivery_arguments(
        run,
        sink_help="where events go (repeatable): stdout, null, jsonl:FILE, dir:PATH, https://..., s3://BUCKET/PREFIX, "
        "kinesis:STREAM, firehose:NAME, cloudwatch, cloudwatch:emf; default stdout",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar, summary or report (rejects still show)")
    add_telemetry_arguments(run)
    run.add_argument("--serve", action="store_true", help="with --metrics-port: keep serving after the inputs are done")


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a price in USD (a number, 0 or more)")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _time(text: str, flag: str, now: datetime | None = None) -> int:
    """Epoch milliseconds of an ISO 8601 time (UTC when it has no zone) or of a time ago (`90s`, `2h`, `7d`)."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        ago = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        when = (now or datetime.now(UTC)) - ago
    else:
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ConfigError(
                f"{flag} {text!r} is neither an ISO 8601 time (2024-05-20T16:00:00Z) nor a time ago (30m, 2h, 7d)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def check_writable(path: str) -> None:
    """Raise ConfigError unless a file can be written at `path`: checked before anything is read."""
    target = Path(path)
    where = printable(path)
    if target.is_dir():
        raise ConfigError(f"--report {where} is a directory; name a file in it")
    parent = target.parent
    if not parent.is_dir():
        raise ConfigError(f"--report {where}: directory {printable(str(parent))} does not exist")
    if not os.access(target if target.exists() else parent, os.W_OK):
        raise ConfigError(f"--report {where}: not writable")


def _default_sink() -> str:
    """Standard output, unless it is a terminal: thousands of lines of NDJSON would scroll the report away."""
    if not sys.stdout.isatty():
        return "stdout"
    print(
        "shipper: standard output is a terminal, so events are not printed; to get them, pass "
        "--sink stdout, pipe the output (shipper run ... | jq), or --sink jsonl:FILE",
        file=sys.stderr,
    )
    return "null"


if __name__ == "__main__":
    sys.exit(main())
