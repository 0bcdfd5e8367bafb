"""`shipper run`: exported logs in, structured events to the sinks, a report at the end.

    list_inputs -> read_input (format, batches) -> Pipeline -> Router (sinks, dead letter)
                                                        \\-> FleetReport -> table on stderr / --report JSON or HTML

Every reject (an unreadable or unrecognised input, a truncated gzip, malformed JSON, a record or log
event the decoder or classifier cannot use) is explained on standard error with the input and the
position, kept in the dead letter when there is one, and makes the exit status 1. With `strict`,
the first one stops the run.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from shipper.delivery import Router, Status
from shipper.inputs import Batch, Meter, ReadOptions, Skipped, iter_inputs, read_input, total_size
from shipper.pipeline import Pipeline, RecordOutcome
from shipper.progress import Progress
from shipper.reject import Reject
from shipper.report import UNKNOWN_FUNCTION, FleetReport, Prices, render
from shipper.terminal import printable
from shipper.timeline import Timeline

if TYPE_CHECKING:  # prometheus_client is imported only when metrics are served
    from shipper.telemetry import Telemetry

EXIT_OK = 0
EXIT_INCOMPLETE = 1
SHOWN_PER_CODE = 20
"""Rejects explained one by one per code; past that they are counted, and summed up at the end."""
UNKNOWN_FUNCTION_INPUTS_KEPT = 20
"""Inputs named in the warning about events of no known function; past that they are counted."""


@dataclass(frozen=True)
class RunOptions:
    read: ReadOptions = field(default_factory=ReadOptions)
    endpoint_url: str | None = None
    """S3 endpoint for s3:// inputs (moto, LocalStack, a VPC endpoint)."""
    strict: bool = False
    quiet: bool = False
    progress: bool = False
    report_paths: tuple[str, ...] = ()
    """Where the report goes: a page for a path ending in .html or .htm, JSON for any other."""
    prices: Prices = field(default_factory=Prices)
    top_metrics: int = 10


class _Stop(Exception):
    """--strict: the first reject ends the run."""


@dataclass
class _Tally:
    inputs: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    events_by_type: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    statuses: Counter[Status] = field(default_factory=Counter)


def run(paths: Sequence[str], router: Router, options: RunOptions, telemetry: Telemetry | None = None) -> int:
    """Process every input; returns the exit status (0 clean, 1 when anything was rejected or not delivered).

    With `telemetry`, every batch is also counted into its Prometheus metrics as it is processed.
    """
    started = time.perf_counter()
    meter = Meter()
    show_progress = options.progress and not options.quiet
    total = total_size(paths, endpoint_url=options.endpoint_url) if show_progress else None
    progress = Progress(total, show_progress)
    state = _Run(router, options, progress, telemetry)
    listed = 0
    with progress:
        try:
            for source in iter_inputs(paths, endpoint_url=options.endpoint_url):
                listed += 1
                if isinstance(source, Skipped):
                    state.skip(source)
                    continue
                if isinstance(source, Reject):
                    state.handle(Batch(f"{source.source}#0", source.source or "", rejects=[source]))
                    continue
                state.tally.inputs += 1
                state.current_input = source.name
                progress.update(meter.bytes_read, state.log_events, source.name)
                opened = read_input(source, options.read, meter)
                state.tally.formats[opened.format or "not read"] += 1
                for batch in opened.batches:
                    state.handle(batch)
                    progress.update(meter.bytes_read, state.log_events)
        except _Stop:
            state.stopped = True
        finally:
            closed = router.close()
            state.tally.statuses.update(closed.statuses.values())
            if telemetry is not None:
                telemetry.observe_report(closed)
                telemetry.sync(state.pipeline.counts, router.stats())
    elapsed = time.perf_counter() - started
    nothing = not listed
    if nothing:
        print(f"shipper: nothing to read in {printable(' '.join(paths))}", file=sys.stderr)
    tally = state.tally
    _summarise_hidden(tally)
    data = state.report.to_dict(options.prices, options.top_metrics)
    data["run"] = _run_facts(tally, state.pipeline, meter, elapsed, state.stopped)
    data["run"]["skipped_inputs"] = {"count": state.skipped_count, "named": state.skipped}
    data["run"]["unknown_function"] = {
        "events": state.unknown_function_events,
        "inputs": state.unknown_function_inputs,
        "inputs_named": sorted(state.unknown_function_names),
    }
    data["run"]["metric_lines_malformed"] = {
        "lines": state.pipeline.counts.get("metric_line_malformed", 0),
        "reasons": dict(sorted(state.pipeline.classifier.malformed_metrics.items(), key=lambda item: -item[1])),
    }
    unwritten = False
    for report_path in options.report_paths:
        try:
            Path(report_path).write_bytes(_report_bytes(report_path, data, state))
        except OSError as exc:
            where = printable(report_path)
            print(f"shipper: cannot write the report to {where}: {exc.strerror}", file=sys.stderr)
            unwritten = True
    if not options.quiet:
        _print_summary(tally, state.pipeline.counts, router, state.stopped)
        _print_malformed_metrics(state.pipeline.classifier.malformed_metrics, state.pipeline.counts)
        _print_unknown_functions(state)
        _print_skipped(state)
        _print_report(data)
    failed = sum(tally.rejects.values()) or tally.statuses[Status.NOT_DELIVERED] or nothing or unwritten
    return EXIT_INCOMPLETE if failed else EXIT_OK


class _Run:
    """What one run carries from batch to batch."""

    def __init__(self, router: Router, options: RunOptions, progress: Progress, telemetry: Telemetry | None) -> None:
        self.router = router
        self.telemetry = telemetry
        self.options = options
        self.progress = progress
        self.pipeline = Pipeline(options.read.max_decompressed_bytes, options.read.max_message_chars)
        self.report = FleetReport()
        self.timeline = Timeline() if any(map(_is_html, options.report_paths)) else None
        self.tally = _Tally()
        self.stopped = False
        self.current_input = ""
        # files a directory walk did not read (their names say they are no logs): the first ones, and how many
        self.skipped: list[dict[str, str]] = []
        self.skipped_count = 0
        # events whose function no log group, stream or path names, and the inputs they came from
        self.unknown_function_events = 0
        self.unknown_function_inputs = 0
        self.unknown_function_names: set[str] = set()

    @property
    def log_events(self) -> int:
        return self.pipeline.counts.get("log_events_received", 0)

    def handle(self, batch: Batch) -> None:
        """Decode and classify one batch, explain its rejects, add it up, and hand it to the router."""
        started = time.perf_counter()
        pipeline, tally = self.pipeline, self.tally
        outcomes = pipeline.process_records(batch.records) if batch.records else []
        if batch.documents:
            outcomes.append(pipeline.process_documents(batch.documents, batch.where))
        for outcome in outcomes:
            outcome.rejects = [dataclasses.replace(r, reason=f"{batch.where}: {r.reason}") for r in outcome.rejects]
        if batch.rejects:
            for reject in batch.rejects:
                pipeline.classifier.count(f"rejected.{reject.code}")
            outcomes.append(RecordOutcome("input", rejects=batch.rejects))
        items: list[tuple[Any, list[Any]]] = []
        rejected: list[Reject] = []
        for index, outcome in enumerate(outcomes):
            tally.events_by_type.update(event["type"] for event in outcome.events)
            unknown = sum(event["function"] is None and not event["log_group"] for event in outcome.events)
            if unknown:
                self._unknown_function(unknown)
            self.report.add(outcome.events)
            if self.timeline is not None:
                self.timeline.add(outcome.events)
            rejected += outcome.rejects
            items.append(((batch.origin, outcome.origin or index), [*outcome.events, *outcome.rejects]))
        settled = self.router.submit(items)
        tally.statuses.update(settled.statuses.values())
        if self.telemetry is not None:
            seconds = time.perf_counter() - started
            self.telemetry.observe_batch(outcomes, settled, pipeline.counts, self.router.stats(), seconds)
        for reject in rejected:
            tally.rejects[reject.code] += 1
            if tally.rejects[reject.code] <= SHOWN_PER_CODE:
                where = f" (sequence number {reject.sequence_number})" if reject.sequence_number else ""
                self.progress.note(f"shipper: rejected{where}: {reject.reason}")
        if rejected and self.options.strict:
            raise _Stop

    def skip(self, skipped: Skipped) -> None:
        self.skipped_count += 1
        if len(self.skipped) < UNKNOWN_FUNCTION_INPUTS_KEPT:
            self.skipped.append({"name": skipped.name, "reason": skipped.reason})

    def _unknown_function(self, events: int) -> None:
        self.unknown_function_events += events
        names = self.unknown_function_names
        if self.current_input not in names:
            self.unknown_function_inputs += 1
            if len(names) < UNKNOWN_FUNCTION_INPUTS_KEPT:
                names.add(self.current_input)


def _print_unknown_functions(state: _Run) -> None:
    """Say which inputs gave events of no known function, that the report adds them up together, and the fix."""
    if not state.unknown_function_events:
        return
    inputs = state.unknown_function_inputs
    names = ", ".join(printable(name) for name in sorted(state.unknown_function_names))
    more = inputs - len(state.unknown_function_names)
    print(
        f"shipper: {state.unknown_function_events:,} events from {inputs:,} input{'s' * (inputs != 1)} have no known "
        f"function (no log group in the data or the path): {names}{f' and {more:,} more' if more else ''}.",
        file=sys.stderr,
    )
    if inputs > 1:
        print(
            f"shipper: the report adds them up together as {UNKNOWN_FUNCTION}, whatever function each input holds.",
            file=sys.stderr,
        )
    print(
        "shipper: to name the function, pass --log-group /aws/lambda/NAME (one run per function), or keep each file "
        "under a path holding aws/lambda/NAME (aws/lambda/NAME.json, .../aws/lambda/NAME/...).",
        file=sys.stderr,
    )


def _print_skipped(state: _Run) -> None:
    """List the files a directory walk did not read, and why."""
    count = state.skipped_count
    if not count:
        return
    what = "file that does" if count == 1 else "files that do"
    print(f"shipper: skipped {count:,} {what} not look like logs:", file=sys.stderr)
    for skipped in state.skipped:
        print(f"shipper:   {printable(skipped['name'])}: {printable(skipped['reason'])}", file=sys.stderr)
    if count > len(state.skipped):
        print(f"shipper:   and {count - len(state.skipped):,} more", file=sys.stderr)
    print("shipper: name a file on the command line to read it anyway.", file=sys.stderr)


def _is_html(path: str) -> bool:
    return path.lower().endswith((".html", ".htm"))


def _report_bytes(path: str, data: dict[str, Any], state: _Run) -> bytes:
    if state.timeline is not None and _is_html(path):
        from shipper.report_html import html_report

        return html_report(data, state.report, state.timeline)
    return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


def _summarise_hidden(tally: _Tally) -> None:
    for code, count in sorted(tally.rejects.items()):
        if count > SHOWN_PER_CODE:
            print(f"shipper: {count - SHOWN_PER_CODE:,} more {code} rejects not shown", file=sys.stderr)


def _run_facts(tally: _Tally, pipeline: Pipeline, meter: Meter, elapsed: float, stopped: bool) -> dict[str, Any]:
    counts = pipeline.counts
    log_events = counts.get("log_events_received", 0)
    return {
        "inputs": tally.inputs,
        "formats": dict(tally.formats.most_common()),
        "bytes_read": meter.bytes_read,
        "records": counts.get("records_received", 0),
        "log_events": log_events,
        "events": dict(tally.events_by_type.most_common()),
        "control_messages_skipped": counts.get("control_messages_skipped", 0),
        "rejects": dict(sorted(tally.rejects.items())),
        "not_delivered_origins": tally.statuses[Status.NOT_DELIVERED],
        "stopped_at_first_error": stopped,
        "elapsed_s": elapsed,
        "log_events_per_s": log_events / elapsed if elapsed else None,
        "mb_per_s": meter.bytes_read / 1e6 / elapsed if elapsed else None,
    }


def _print_summary(tally: _Tally, counts: dict[str, int], router: Router, stopped: bool) -> None:
    by_type = ", ".join(f"{name} {count:,}" for name, count in tally.events_by_type.most_common())
    print(
        f"shipper: {tally.inputs:,} files, "
        f"{counts.get('records_received', 0):,} records, "
        f"{counts.get('log_events_received', 0):,} log events -> {sum(tally.events_by_type.values()):,} events"
        f"{f' ({by_type})' if by_type else ''}; "
        f"{counts.get('control_messages_skipped', 0):,} control messages skipped; "
        f"{sum(tally.rejects.values()):,} rejected",
        file=sys.stderr,
    )
    if tally.formats:
        formats = ", ".join(f"{name} {count:,}" for name, count in tally.formats.most_common())
        print(f"shipper: formats: {formats}", file=sys.stderr)
    for name, sink in router.stats()["sinks"].items():
        print(
            f"shipper: sink {name}: {sink['sent_events']:,} sent, {sink['retries']:,} retries, "
            f"{sink['dead_lettered_events']:,} dead-lettered, {sink['undelivered_events']:,} not delivered",
            file=sys.stderr,
        )
    if tally.statuses[Status.NOT_DELIVERED]:
        print(
            f"shipper: {tally.statuses[Status.NOT_DELIVERED]:,} batches were not fully delivered; run again to retry",
            file=sys.stderr,
        )
    if stopped:
        print("shipper: stopped at the first error (--strict)", file=sys.stderr)


def _print_malformed_metrics(reasons: dict[str, int], counts: dict[str, int]) -> None:
    """How many lines looked like metric lines and could not be read (they stay `log` events), and why."""
    total = counts.get("metric_line_malformed", 0)
    if not total:
        return
    print(f"shipper: {total:,} metric lines could not be read and were kept as log events:", file=sys.stderr)
    shown = sorted(reasons.items(), key=lambda item: -item[1])[:5]
    for reason, count in shown:
        print(f"shipper:   {count:,} x {printable(reason)}", file=sys.stderr)
    rest = total - sum(count for _, count in shown)
    if rest:
        print(f"shipper:   {rest:,} for other reasons", file=sys.stderr)


def _print_report(data: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=max(console.width, 160))
    render(data, console)
