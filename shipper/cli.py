"""The `shipper` command.

    shipper run PATH... [--sink SPEC]... [--route NAME=TYPES]... [--dead-letter SPEC] [--config FILE]

`run` reads Lambda Kinesis events and direct CloudWatch Logs subscription events saved as JSON
files (a directory is searched recursively for *.json), sends the structured events to the sinks
(standard output by default), explains every reject on stderr, and exits 1 when any input was
rejected or any event could not be delivered.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from shipper.config import Config, build_router, load_config_from_file, merge_cli
from shipper.delivery import Router, Status
from shipper.errors import ConfigError
from shipper.pipeline import Pipeline, RecordOutcome
from shipper.reject import Reject

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2


#: Modules that add a subcommand: each has `add_command(subparsers)`, which sets `func` on its parser.
_COMMAND_MODULES: tuple[str, ...] = ("shipper.subscribe", "shipper.consume")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shipper", description="Log pipeline for AWS Lambda fleets.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_command(commands)
    for module in _COMMAND_MODULES:
        importlib.import_module(module).add_command(commands)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        parser.error(str(exc))


def _run(args: argparse.Namespace) -> int:
    router = build_router(_config(args))
    return run_files(args.paths, router, quiet=args.quiet)


def _add_run_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="process saved Lambda Kinesis / CloudWatch Logs subscription events")
    run.set_defaults(func=_run)
    run.add_argument("paths", nargs="+", metavar="PATH", help="JSON event files, or directories of them")
    run.add_argument("--config", metavar="FILE", help="TOML file with sinks, routes, dead letter and delivery settings")
    run.add_argument(
        "--sink",
        action="append",
        default=[],
        metavar="SPEC",
        help="where events go (repeatable): stdout, null, jsonl:FILE, dir:PATH, https://..., s3://BUCKET/PREFIX, "
        "kinesis:STREAM, firehose:NAME, cloudwatch, cloudwatch:emf; default stdout",
    )
    run.add_argument("--route", action="append", default=[], metavar="NAME=TYPES", help="event types a sink gets")
    run.add_argument("--dead-letter", metavar="SPEC", help="where rejects and refused events go: dir:PATH, s3://...")
    run.add_argument("--retry-max-attempts", metavar="N")
    run.add_argument("--retry-base-s", metavar="SECONDS")
    run.add_argument("--retry-cap-s", metavar="SECONDS")
    run.add_argument("--batch-max-wait-s", metavar="SECONDS")
    run.add_argument("--quiet", action="store_true", help="print no summary (rejects are still reported)")


def _config(args: argparse.Namespace) -> Config:
    config = load_config_from_file(args.config) if args.config else None
    sinks = args.sink or ([] if config is not None else ["stdout"])
    return merge_cli(
        config,
        sinks=sinks,
        routes=args.route,
        dead_letter=args.dead_letter,
        retry_max_attempts=args.retry_max_attempts,
        retry_base_s=args.retry_base_s,
        retry_cap_s=args.retry_cap_s,
        batch_max_wait_s=args.batch_max_wait_s,
    )


def run_files(paths: Sequence[str], router: Router, quiet: bool = False) -> int:
    pipeline = Pipeline()
    events_by_type: Counter[str] = Counter()
    statuses: Counter[Status] = Counter()
    rejects = files = 0
    try:
        for path in _input_files(paths):
            files += 1
            items = []
            for index, outcome in enumerate(_process_file(pipeline, path)):
                events_by_type.update(event["type"] for event in outcome.events)
                for reject in outcome.rejects:
                    rejects += 1
                    _report_reject(reject)
                items.append(((str(path), outcome.origin or index), [*outcome.events, *outcome.rejects]))
            _tally(router.submit(items).statuses, statuses)
    finally:
        _tally(router.close().statuses, statuses)
    if not quiet:
        _print_summary(files, pipeline.counts, events_by_type, rejects, statuses, router)
    return EXIT_INCOMPLETE if rejects or statuses[Status.NOT_DELIVERED] else EXIT_OK


def _tally(settled: dict, statuses: Counter[Status]) -> None:
    statuses.update(settled.values())


def _input_files(paths: Sequence[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path


def _process_file(pipeline: Pipeline, path: Path) -> list[RecordOutcome]:
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = f"cannot read {path}: {exc.strerror}"
        return [RecordOutcome(None, rejects=[Reject("unreadable_file", reason, b"", None, source)])]
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = f"{path} is not a JSON event file ({exc})"
        return [RecordOutcome(None, rejects=[Reject("unrecognised_input", reason, data, None, source)])]
    if type(event) is dict and "Records" in event:
        outcomes = pipeline.process_kinesis_event(event)
    elif type(event) is dict and "awslogs" in event:
        outcomes = pipeline.process_awslogs_event(event, source)
    else:
        reason = f"{path} is JSON but neither a Lambda Kinesis event (Records) nor a subscription event (awslogs)"
        return [RecordOutcome(None, rejects=[Reject("unrecognised_input", reason, data, None, source)])]
    for outcome in outcomes:
        outcome.rejects = [dataclasses.replace(r, reason=f"{path}: {r.reason}") for r in outcome.rejects]
    return outcomes


def _report_reject(reject: Reject) -> None:
    where = f" (sequence number {reject.sequence_number})" if reject.sequence_number else ""
    print(f"shipper: rejected{where}: {reject.reason}", file=sys.stderr)


def _print_summary(
    files: int,
    counts: dict[str, int],
    events_by_type: Counter[str],
    rejects: int,
    statuses: Counter[Status],
    router: Router,
) -> None:
    by_type = ", ".join(f"{name} {count:,}" for name, count in events_by_type.most_common())
    print(
        f"shipper: {files:,} files, {counts.get('records_received', 0):,} records, "
        f"{counts.get('log_events_received', 0):,} log events -> {sum(events_by_type.values()):,} events"
        f"{f' ({by_type})' if by_type else ''}; "
        f"{counts.get('control_messages_skipped', 0):,} control messages skipped; {rejects:,} rejected",
        file=sys.stderr,
    )
    for name, sink in router.stats()["sinks"].items():
        print(
            f"shipper: sink {name}: {sink['sent_events']:,} sent, {sink['retries']:,} retries, "
            f"{sink['dead_lettered_events']:,} dead-lettered, {sink['undelivered_events']:,} not delivered",
            file=sys.stderr,
        )
    if statuses[Status.NOT_DELIVERED]:
        print(
            f"shipper: {statuses[Status.NOT_DELIVERED]:,} records were not fully delivered; run again to retry them",
            file=sys.stderr,
        )


if __name__ == "__main__":
    sys.exit(main())
