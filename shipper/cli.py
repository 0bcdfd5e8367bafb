"""The `shipper` command.

    shipper run PATH... [--sink SPEC]

`run` reads Lambda Kinesis events and direct CloudWatch Logs subscription events saved as JSON
files (a directory is searched recursively for *.json), writes one JSON object per structured event
to the sink, explains every reject on stderr, and exits 1 when any input was rejected.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from shipper.pipeline import Pipeline, RecordOutcome
from shipper.reject import Reject
from shipper.sinks import Sink, SinkError, build_sink

EXIT_OK = 0
EXIT_REJECTS = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shipper", description="Log pipeline for AWS Lambda fleets.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="process saved Lambda Kinesis / CloudWatch Logs events")
    run.add_argument("paths", nargs="+", metavar="PATH", help="JSON event files, or directories of them")
    run.add_argument(
        "--sink", default="stdout", metavar="SPEC", help="where events go: stdout (default), null, jsonl:FILE"
    )
    run.add_argument("--quiet", action="store_true", help="print no summary (rejects are still reported)")
    args = parser.parse_args(argv)
    try:
        sink = build_sink(args.sink)
    except (ValueError, SinkError) as exc:
        parser.error(str(exc))
    return run_files(args.paths, sink, quiet=args.quiet)


def run_files(paths: Sequence[str], sink: Sink, quiet: bool = False) -> int:
    pipeline = Pipeline()
    events_by_type: Counter[str] = Counter()
    rejects = files = 0
    try:
        for path in _input_files(paths):
            files += 1
            for outcome in _process_file(pipeline, path):
                if outcome.events:
                    sink.send(outcome.events)
                    events_by_type.update(event["type"] for event in outcome.events)
                for reject in outcome.rejects:
                    rejects += 1
                    _report_reject(reject)
    except SinkError as exc:
        print(f"shipper: sink {sink.name} failed: {exc}", file=sys.stderr)
        return EXIT_REJECTS
    finally:
        sink.close()
    if not quiet:
        _print_summary(files, pipeline.counts, events_by_type, rejects)
    return EXIT_REJECTS if rejects else EXIT_OK


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
        return [
            RecordOutcome(
                None, rejects=[Reject("unreadable_file", f"cannot read {path}: {exc.strerror}", b"", None, source)]
            )
        ]
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


def _print_summary(files: int, counts: dict[str, int], events_by_type: Counter[str], rejects: int) -> None:
    by_type = ", ".join(f"{name} {count:,}" for name, count in events_by_type.most_common())
    print(
        f"shipper: {files:,} files, {counts.get('records_received', 0):,} records, "
        f"{counts.get('log_events_received', 0):,} log events -> {sum(events_by_type.values()):,} events"
        f"{f' ({by_type})' if by_type else ''}; "
        f"{counts.get('control_messages_skipped', 0):,} control messages skipped; {rejects:,} rejected",
        file=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main())
