"""`shipper run`: exported logs in, structured events to the sinks, a report at the end.

    list_inputs -> read_input (format, batches) -> Pipeline -> Router (sinks, dead letter)
                                                        \\-> FleetReport -> table on stderr / --report JSON or HTML

Every reject (an unreadable or unrecognised input, a truncated gzip, malformed JSON, a record or log
event the decoder or classifier cannot use) is explained on standard error with the input and the
position, and kept in the dead letter when there is one. With `strict`, the first one stops the run.
A `stop` (SIGTERM or Ctrl-C) stops it too, within a second even while a sink waits to retry: no more
input is read, what is still buffered or waiting is reported not delivered, and the summary and report
cover what was read until then. Events a sink did not take are counted per input, so the summary says
what a re-run would send again.

Exit status (the EXIT_* names below are the one definition; docs/run.md explains them):
    0    everything read was delivered
    1    input problems: something was rejected or unreadable, or there was nothing to read
    2    usage or configuration error, found before anything is read
    3    delivery failures: events not delivered, or dead-lettered because a sink refused them
         (also a report that could not be written); wins over 1
    130  stopped by Ctrl-C or SIGTERM: what was read so far is flushed, summed up and reported
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from shipper.delivery import DeliveryReport, Origin, Router, Status
from shipper.inputs import Batch, Meter, ReadOptions, Skipped, iter_inputs, read_input, total_size
from shipper.names import Count, SinkCounter
from shipper.pipeline import Pipeline, RecordOutcome
from shipper.progress import Progress
from shipper.reject import Reject
from shipper.report import UNKNOWN_FUNCTION, FleetReport, Prices, render
from shipper.shipping import BatchObserver, BatchResult, BatchStep
from shipper.stopping import Interrupted, grace_deadline, interrupting_reads
from shipper.terminal import plural, printable
from shipper.timeline import Timeline

if TYPE_CHECKING:  # prometheus_client is imported only when metrics are served
    from shipper.telemetry import Telemetry

EXIT_OK = 0
EXIT_INCOMPLETE = 1
"""Input problems: a reject, an unreadable input, or nothing to read."""
EXIT_USAGE = 2
EXIT_UNDELIVERED = 3
"""Delivery failures: events a sink did not take (not delivered, or refused and dead-lettered)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report SIGINT (128 + 2)."""
SHOWN_INPUTS = 10
"""Inputs named one by one in the summary of what was not delivered; past that they are counted."""
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
    functions: tuple[str, ...] = ()
    """Only events of functions matching one of these names or globs are shipped and reported (all if empty)."""
    since_ms: int | None = None
    """Only events at or after this time (epoch ms)."""
    until_ms: int | None = None
    """Only events before this time (epoch ms)."""

    def keeps(self, event: dict[str, Any]) -> bool:
        """Whether `event` passes --function, --since and --until."""
        if self.functions:
            function = event.get("function") or ""
            if not any(fnmatch.fnmatchcase(function, pattern) for pattern in self.functions):
                return False
        timestamp = event["timestamp"]
        return (self.since_ms is None or timestamp >= self.since_ms) and (
            self.until_ms is None or timestamp < self.until_ms
        )

    @property
    def filtering(self) -> bool:
        return bool(self.functions) or self.since_ms is not None or self.until_ms is not None


class _Stop(Exception):
    """--strict: the first reject ends the run."""


@dataclass
class _Tally:
    inputs: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    statuses: Counter[Status] = field(default_factory=Counter)
    filtered_out: int = 0


@dataclass
class _InputDelivery:
    """What became of the events of one input: kept while its batches are in flight, or when some failed."""

    events: int = 0
    pending: int = 0
    failed_events: int = 0
    failed_batches: int = 0


def run(
    paths: Sequence[str],
    router: Router,
    options: RunOptions,
    telemetry: Telemetry | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Process every input; returns the exit status (EXIT_*: see the module docstring).

    With `telemetry`, every batch is also counted into its Prometheus metrics as it is processed. Once
    `stop` is set, no more input is read and nothing more is sent; what was read is summed up and reported.
    """
    stop = stop or threading.Event()
    started = time.perf_counter()
    meter = Meter()
    show_progress = options.progress and not options.quiet
    total = total_size(paths, endpoint_url=options.endpoint_url) if show_progress else None
    progress = Progress(total, show_progress)
    state = _Run(router, options, progress, telemetry, stop)
    listed = 0
    with progress:
        try:
            written = [*router.written_paths(), *options.report_paths]
            for source in iter_inputs(paths, endpoint_url=options.endpoint_url, written=written):
                if stop.is_set():
                    break
                listed += 1
                if isinstance(source, Skipped):
                    state.skip(source)
                    continue
                if isinstance(source, Reject):
                    state.handle(Batch(f"{source.source}#0", source.source or "", rejects=[source]))
                    continue
                state.tally.inputs += 1
                state.next_input()
                state.current_input = source.name
                progress.update(meter.bytes_read, state.log_events, source.name)
                with interrupting_reads(stop):
                    opened = read_input(source, options.read, meter)
                state.tally.formats[opened.format or "not read"] += 1
                while True:
                    with interrupting_reads(stop):  # a FIFO or a pipe may keep a read waiting
                        batch = next(opened.batches, None)
                    if batch is None:
                        break
                    state.handle(batch)
                    progress.update(meter.bytes_read, state.log_events)
        except _Stop:
            state.stopped = not stop.is_set()  # else a signal, not --strict
        except Interrupted:
            pass  # `stop` is set: what was read is flushed and reported below
        finally:
            state.step.close(state.deadline)
    elapsed = time.perf_counter() - started
    nothing = not listed
    if nothing:
        print(f"shipper: nothing to read in {printable(' '.join(paths))}", file=sys.stderr)
    tally = state.tally
    _summarise_hidden(tally)
    data = state.report.to_dict(options.prices, options.top_metrics)
    by_type = sorted(state.report.events_by_type.items(), key=lambda item: -item[1])  # most first
    data["run"] = _run_facts(tally, by_type, state.pipeline, meter, elapsed, state.stopped)
    data["run"]["interrupted"] = stop.is_set()
    data["run"]["events_filtered_out"] = tally.filtered_out
    data["run"]["skipped_inputs"] = {"count": state.skipped_count, "named": state.skipped}
    data["run"]["unknown_function"] = {
        "events": state.unknown_function_events,
        "inputs": state.unknown_function_inputs,
        "inputs_named": sorted(state.unknown_function_names),
    }
    data["run"]["metric_lines_malformed"] = {
        "lines": state.pipeline.counts.get(Count.METRIC_LINE_MALFORMED, 0),
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
        _print_summary(tally, by_type, state.pipeline.counts, router, state.stopped, stop.is_set())
        _print_malformed_metrics(state.pipeline.classifier.malformed_metrics, state.pipeline.counts)
        _print_unknown_functions(state)
        _print_skipped(state)
        _print_report(data)
    undelivered = _print_undelivered(state, router, options)
    if stop.is_set():
        return EXIT_INTERRUPTED
    if undelivered or unwritten:
        return EXIT_UNDELIVERED
    return EXIT_INCOMPLETE if sum(tally.rejects.values()) or nothing else EXIT_OK


class _Run(BatchObserver):
    """What one run carries from batch to batch; it watches the batches go by (report, timeline, tally,
    rejects explained, and per input what a sink did not take)."""

    def __init__(
        self,
        router: Router,
        options: RunOptions,
        progress: Progress,
        telemetry: Telemetry | None,
        stop: threading.Event,
    ) -> None:
        self.stop = stop
        self.options = options
        self.progress = progress
        self.pipeline = Pipeline(options.read.max_decompressed_bytes, options.read.max_message_chars)
        self.step = BatchStep(self.pipeline, router, [self] if telemetry is None else [self, telemetry])
        self.report = FleetReport()
        self.timeline = Timeline() if any(map(_is_html, options.report_paths)) else None
        self.deadline = grace_deadline(stop)
        """Seconds sends may still take: no limit until a stop, then SHUTDOWN_GRACE_S to flush."""
        self.tally = _Tally()
        self.stopped = False
        self.inputs: dict[str, _InputDelivery] = {}
        """Per input name: the inputs in flight, and those with events a sink did not take."""
        self._in_flight: dict[Origin, tuple[str, int, bool]] = {}
        """Origins handed to the router and not settled yet: (input, events, whether it held rejects)."""
        self._current: str | None = None
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
        return self.pipeline.counts.get(Count.LOG_EVENTS_RECEIVED, 0)

    def handle(self, batch: Batch) -> None:
        """Decode and classify one batch and ship it.

        Records go one at a time, each to the router before the next is decoded: what is held is one
        record's events (the decoder caps its inflated size) and the sinks' buffers, never a whole batch.
        """
        if self.stop.is_set():
            raise _Stop
        pipeline, shipped = self.pipeline, self.step.begin()
        for index, record in enumerate(batch.records):
            self._route(shipped, batch, pipeline.process_records([record])[0], index)
        if batch.documents:
            self._route(shipped, batch, pipeline.process_documents(batch.documents, batch.where), len(batch.records))
        if batch.rejects:
            self._route(shipped, batch, pipeline.rejected("input", batch.rejects), 0, where=False)
        self.step.done(shipped)
        if shipped.rejects and self.options.strict:
            raise _Stop

    def next_input(self) -> None:
        """A new input starts: forget the last one if all its batches were delivered."""
        if self._current is not None:
            self._forget_if_done(self._current)
        self._current = None

    def _route(
        self, shipped: BatchResult, batch: Batch, outcome: RecordOutcome, index: int, *, where: bool = True
    ) -> None:
        """Ship one outcome of `batch` (`index` numbers it when it has no origin), its rejects' reasons prefixed
        with the batch's position when `where`, its events filtered by --function, --since and --until."""
        options = self.options
        if where and outcome.rejects:
            outcome.rejects = [dataclasses.replace(r, reason=f"{batch.where}: {r.reason}") for r in outcome.rejects]
        if options.filtering:
            kept = [event for event in outcome.events if options.keeps(event)]
            self.tally.filtered_out += len(outcome.events) - len(kept)
            outcome.events = kept
        self.step.route(shipped, [((batch.origin, outcome.origin or index), outcome)], self.deadline)

    # --- as the BatchObserver ---------------------------------------------------------------------

    def outcome(self, origin: Origin, outcome: RecordOutcome) -> None:
        """Report and timeline take the events; the input's delivery is tracked; rejects are explained."""
        unknown = self.report.add(outcome.events)
        if unknown:
            self._unknown_function(unknown)
        if self.timeline is not None:
            self.timeline.add(outcome.events)
        name = origin[0].rpartition("#")[0]  # type: ignore[index]  # (batch origin, position): see _route
        self._current = name
        entry = self.inputs.setdefault(name, _InputDelivery())
        self._in_flight[origin] = (name, len(outcome.events), bool(outcome.rejects))
        entry.events += len(outcome.events)
        entry.pending += 1
        rejects = self.tally.rejects
        for reject in outcome.rejects:
            rejects[reject.code] += 1
            if rejects[reject.code] <= SHOWN_PER_CODE:
                at = f" (sequence number {reject.sequence_number})" if reject.sequence_number else ""
                self.progress.note(f"shipper: rejected{at}: {reject.reason}")

    def settled(self, report: DeliveryReport) -> None:
        """Count what the router settled, per input; a batch with rejects is an input problem, not a sink's."""
        self.tally.statuses.update(report.statuses.values())
        for origin, status in report.statuses.items():
            name, events, had_rejects = self._in_flight.pop(origin, ("", 0, False))
            entry = self.inputs.get(name)
            if entry is None:
                continue
            entry.pending -= 1
            if status is not Status.DELIVERED and not had_rejects:
                entry.failed_events += events
                entry.failed_batches += 1
            if name != self._current:
                self._forget_if_done(name)

    def _forget_if_done(self, name: str) -> None:
        entry = self.inputs.get(name)
        if entry is not None and not entry.pending and not entry.failed_batches:
            del self.inputs[name]

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
        f"shipper: {plural(state.unknown_function_events, 'event')} from {plural(inputs, 'input')} have no known "
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


def _run_facts(
    tally: _Tally, by_type: list[tuple[str, int]], pipeline: Pipeline, meter: Meter, elapsed: float, stopped: bool
) -> dict[str, Any]:
    counts = pipeline.counts
    log_events = counts.get(Count.LOG_EVENTS_RECEIVED, 0)
    return {
        "inputs": tally.inputs,
        "formats": dict(tally.formats.most_common()),
        "bytes_read": meter.bytes_read,
        "records": counts.get(Count.RECORDS_RECEIVED, 0),
        "log_events": log_events,
        "events": dict(by_type),
        Count.CONTROL_MESSAGES_SKIPPED: counts.get(Count.CONTROL_MESSAGES_SKIPPED, 0),
        "rejects": dict(sorted(tally.rejects.items())),
        "not_delivered_origins": tally.statuses[Status.NOT_DELIVERED],
        "stopped_at_first_error": stopped,
        "elapsed_s": elapsed,
        "log_events_per_s": log_events / elapsed if elapsed else None,
        "mb_per_s": meter.bytes_read / 1e6 / elapsed if elapsed else None,
    }


def _print_summary(
    tally: _Tally,
    by_type: list[tuple[str, int]],
    counts: dict[str, int],
    router: Router,
    stopped: bool,
    interrupted: bool,
) -> None:
    types = ", ".join(f"{name} {count:,}" for name, count in by_type)
    print(
        f"shipper: {plural(tally.inputs, 'file')}, "
        f"{plural(counts.get(Count.RECORDS_RECEIVED, 0), 'record')}, "
        f"{plural(counts.get(Count.LOG_EVENTS_RECEIVED, 0), 'log event')} -> "
        f"{plural(sum(count for _, count in by_type), 'event')}"
        f"{f' ({types})' if types else ''}; "
        f"{plural(counts.get(Count.CONTROL_MESSAGES_SKIPPED, 0), 'control message')} skipped; "
        f"{sum(tally.rejects.values()):,} rejected",
        file=sys.stderr,
    )
    if tally.formats:
        formats = ", ".join(f"{name} {count:,}" for name, count in tally.formats.most_common())
        print(f"shipper: formats: {formats}", file=sys.stderr)
    for name, sink in router.stats()["sinks"].items():
        print(
            f"shipper: sink {name}: {sink[SinkCounter.SENT]:,} sent, "
            f"{plural(sink[SinkCounter.RETRIES], 'retry', 'retries')}, "
            f"{sink[SinkCounter.DEAD_LETTERED]:,} dead-lettered, {sink[SinkCounter.NOT_DELIVERED]:,} not delivered",
            file=sys.stderr,
        )
    if tally.filtered_out:
        print(
            f"shipper: {plural(tally.filtered_out, 'event')} left out by --function, --since or --until",
            file=sys.stderr,
        )
    if stopped:
        print("shipper: stopped at the first error (--strict)", file=sys.stderr)
    if interrupted:
        print("shipper: interrupted: the summary and report cover what was read until then", file=sys.stderr)


def _print_undelivered(state: _Run, router: Router, options: RunOptions) -> bool:
    """Say which events no sink took and what a re-run would send again; True when there were any.

    Printed even with --quiet: it is what the exit status is about. Rejects are not in it: they are input
    problems, explained as they were found, and a re-run rejects them again.
    """
    stats = router.stats()
    failed_sinks = {
        name: (sink[SinkCounter.NOT_DELIVERED], sink[SinkCounter.DEAD_LETTERED])
        for name, sink in stats["sinks"].items()
        if sink[SinkCounter.NOT_DELIVERED] or sink[SinkCounter.DEAD_LETTERED]
    }
    dead_letter = stats["dead_letter"]
    lost_rejects = dead_letter[SinkCounter.NOT_DELIVERED] if dead_letter else 0
    if not failed_sinks and not lost_rejects:
        return False
    for name, (undelivered, dead_lettered) in failed_sinks.items():
        parts = [f"{plural(undelivered, 'event')} not delivered"] if undelivered else []
        if dead_lettered:
            parts.append(f"{plural(dead_lettered, 'event')} refused and kept in the dead letter")
        print(f"shipper: sink {name}: {' and '.join(parts)}", file=sys.stderr)
    if lost_rejects:
        print(f"shipper: dead letter: {plural(lost_rejects, 'reject')} could not be written to it", file=sys.stderr)
    failed = {name: entry for name, entry in state.inputs.items() if entry.failed_batches}
    if failed:
        resent = sum(entry.events for entry in failed.values())
        print(f"shipper: the events not taken came from {plural(len(failed), 'input')}:", file=sys.stderr)
        for name, entry in list(failed.items())[:SHOWN_INPUTS]:
            print(
                f"shipper:   {printable(name)}: {entry.failed_events:,} of its {plural(entry.events, 'event')} "
                f"({plural(entry.failed_batches, 'batch', 'batches')})",
                file=sys.stderr,
            )
        if len(failed) > SHOWN_INPUTS:
            print(f"shipper:   and {plural(len(failed) - SHOWN_INPUTS, 'more input')}", file=sys.stderr)
        filters = " with the same --function, --since and --until" if options.filtering else ""
        again = sum(entry.failed_events for entry in failed.values())
        twice = (
            f"{resent - again:,} of them already delivered, which the sinks would get twice"
            if resent > again
            else ("none of them was delivered")
        )
        print(
            f"shipper: running again on {'this input' if len(failed) == 1 else 'these inputs'}{filters} sends "
            f"{plural(resent, 'event')} again ({twice}); the other inputs need not be read again",
            file=sys.stderr,
        )
    return True


def _print_malformed_metrics(reasons: dict[str, int], counts: dict[str, int]) -> None:
    """How many lines looked like metric lines and could not be read (they stay `log` events), and why."""
    total = counts.get(Count.METRIC_LINE_MALFORMED, 0)
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
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=True, width=160)  # a file or pipe: wide enough for one table per topic
    render(data, console)
