"""`Telemetry`: every metric the shipper exposes to Prometheus, in its own CollectorRegistry.

It is a BatchObserver (shipper.shipping): give it to the BatchStep of `run` or `consume`, and each
outcome's events are counted as they go (`observe_events`: Lambda health, events per type, custom
metrics), each settlement by outcome (`observe_report`), and each finished batch brings the pipeline
and per-sink counters up to their cumulative totals (`sync`) and observes its duration. The Lambda
pushes one per shard (shipper.telemetry.lambda_push).

Labels never carry a request id, and no labelled family grows without bound: the Lambda families
take at most LAMBDA_MAX_SERIES label sets each (functions x status, error type ...), the custom
metrics have the limits of TelemetryConfig, and what a limit refuses is counted in
`shipper_metric_samples_dropped_total{metric,reason}`.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shipper.contract import EVENT_TYPES
from shipper.delivery import DeliveryReport, Origin
from shipper.names import REJECTED_PREFIX, Count, SinkCounter
from shipper.pipeline import RecordOutcome
from shipper.shipping import BatchObserver, BatchResult
from shipper.telemetry.config import TelemetryConfig
from shipper.telemetry.custom import SECONDS_BUCKETS, CustomMetrics
from shipper.telemetry.naming import label_value
from shipper.telemetry.totals import UNROUTED, Increments, router_totals

LAMBDA_MAX_SERIES = 20_000
MEMORY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)

# Pipeline.counts names with a family of their own; `rejected.<code>` is a reject reason, any other
# name a pipeline note. `events_emitted` is left out: events per type (from outcomes) say it.
_PIPELINE_FAMILIES = {
    Count.RECORDS_RECEIVED: ("shipper_records_received", "Kinesis records (or records of input files) read."),
    Count.LOG_EVENTS_RECEIVED: ("shipper_log_events_received", "CloudWatch Logs log events in the records."),
    Count.CONTROL_MESSAGES_SKIPPED: ("shipper_control_messages_skipped", "CloudWatch Logs CONTROL_MESSAGEs skipped."),
    Count.KPL_SUBRECORDS: ("shipper_kpl_subrecords", "User records found inside KPL-aggregated records."),
}
_PIPELINE_IGNORED = frozenset({Count.EVENTS_EMITTED})
_SINK_FAMILIES = {
    SinkCounter.RECEIVED: ("shipper_sink_events_received", "Events handed to the sink's delivery."),
    SinkCounter.SENT: ("shipper_sink_events_sent", "Events the sink accepted."),
    SinkCounter.RETRIES: ("shipper_sink_retries", "Sends that retried a failed send."),
    SinkCounter.ERRORS: ("shipper_sink_send_errors", "Sends that failed, retried or not."),
    SinkCounter.DEAD_LETTERED: (
        "shipper_sink_events_dead_lettered",
        "Events the sink refused for good, or that failed after the last attempt, written to the dead letter.",
    ),
    SinkCounter.NOT_DELIVERED: (  # a published name, kept for the dashboards built on it (shipper.names)
        "shipper_sink_events_failed",
        "Events not delivered (neither delivered nor dead-lettered): their records are sent again.",
    ),
}


class _Limited:
    """A labelled metric that takes at most `limit` label sets; samples for more are dropped and counted."""

    __slots__ = ("_dropped", "_given", "_limit", "_metric", "_name", "_series")

    def __init__(self, metric: Any, name: str, limit: int, dropped: Counter) -> None:
        self._metric = metric
        self._name = name
        self._limit = limit
        self._dropped = dropped
        self._series: dict[tuple[str, ...], Any] = {}
        """label values (as label values: cut, None as "") -> child"""
        self._given: dict[tuple[Any, ...], Any] = {}
        """the values as given -> child: the hot path, one dict lookup"""

    def child(self, *values: str | None) -> Any:
        """The series for these label values, or None when it would pass the limit."""
        child = self._given.get(values)
        if child is None:
            key = tuple(label_value(value) for value in values)
            child = self._series.get(key)
            if child is None:
                if len(self._series) >= self._limit:
                    self._dropped.labels(self._name, "series_limit").inc()
                    return None
                child = self._series[key] = self._metric.labels(*key)
            if len(self._given) < 2 * self._limit:
                self._given[values] = child
        return child

    def inc(self, *values: str | None, amount: float = 1.0) -> None:
        child = self.child(*values)
        if child is not None:
            child.inc(amount)

    def observe(self, value: float, *values: str | None) -> None:
        child = self.child(*values)
        if child is not None:
            child.observe(value)


class Telemetry(BatchObserver):
    """The shipper's metrics in a dedicated CollectorRegistry (`registry`): serve it, or push it."""

    def __init__(self, config: TelemetryConfig | None = None, registry: CollectorRegistry | None = None) -> None:
        self.config = config or TelemetryConfig()
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._dropped = Counter(
            "shipper_metric_samples_dropped",
            "Samples not recorded: over a cardinality limit, a name or type clash, or not a usable value.",
            ["metric", "reason"],
            registry=r,
        )

        def lambda_family(kind: type, name: str, doc: str, labels: list[str], **options: Any) -> _Limited:
            exposed = f"{name}_total" if kind is Counter else name
            return _Limited(kind(name, doc, labels, registry=r, **options), exposed, LAMBDA_MAX_SERIES, self._dropped)

        fn = ["function"]
        self._invocations = lambda_family(
            Counter, "shipper_lambda_invocations", "Invocations (REPORT lines), by status.", [*fn, "status"]
        )
        self._cold_starts = lambda_family(Counter, "shipper_lambda_cold_starts", "Cold starts (Init Duration).", fn)
        self._timeouts = lambda_family(Counter, "shipper_lambda_timeouts", "Invocations that timed out.", fn)
        self._out_of_memory = lambda_family(
            Counter, "shipper_lambda_out_of_memory", "Invocations killed for running out of memory.", fn
        )
        self._throttles = lambda_family(
            Counter,
            "shipper_lambda_throttles",
            "Throttling errors the function logged, by AWS error code.",
            [*fn, "error_code"],
        )
        self._errors = lambda_family(
            Counter, "shipper_lambda_errors", "Failed invocations, by error type.", [*fn, "error_type"]
        )
        self._init_errors = lambda_family(
            Counter, "shipper_lambda_init_errors", "Failed init phases, by error type.", [*fn, "error_type"]
        )
        self._duration = lambda_family(
            Histogram, "shipper_lambda_duration_seconds", "Invocation duration.", fn, buckets=SECONDS_BUCKETS
        )
        self._init_duration = lambda_family(
            Histogram,
            "shipper_lambda_init_duration_seconds",
            "Init duration of cold starts.",
            fn,
            buckets=SECONDS_BUCKETS,
        )
        self._billed = lambda_family(
            Counter, "shipper_lambda_billed_seconds", "Billed duration, SnapStart restore included.", fn
        )
        self._memory = lambda_family(
            Histogram,
            "shipper_lambda_memory_utilization_ratio",
            "Max memory used / memory size, per invocation.",
            fn,
            buckets=MEMORY_BUCKETS,
        )

        def family(kind: type, name: str, doc: str, labels: Iterable[str] = (), **options: Any) -> Any:
            return kind(name, doc, list(labels), registry=r, **options)

        self._events = family(Counter, "shipper_events_emitted", "Structured events emitted, by type.", ["type"])
        self._records = family(
            Counter,
            "shipper_records_processed",
            "Records settled by delivery, by outcome (not_delivered records are read again).",
            ["outcome"],
        )
        self._pipeline = {key: family(Counter, name, doc) for key, (name, doc) in _PIPELINE_FAMILIES.items()}
        self._rejects = family(
            Counter, "shipper_decode_rejects", "Input the shipper could not use, by reject code.", ["reason"]
        )
        self._notes = family(
            Counter,
            "shipper_pipeline_notes",
            "Other pipeline counts: malformed metric lines, suppressed duplicate signals, ...",
            ["note"],
        )
        self._sinks = {key: family(Counter, name, doc, ["sink"]) for key, (name, doc) in _SINK_FAMILIES.items()}
        self._unrouted = family(Counter, "shipper_events_unrouted", "Events whose type no sink takes.")
        self._batch = family(
            Histogram,
            "shipper_batch_duration_seconds",
            "Time to decode, classify and deliver one batch of records.",
            buckets=SECONDS_BUCKETS,
        )
        self._lag = family(
            Gauge, "shipper_consumer_lag_seconds", "How far the consumer is behind the shard's tip.", ["shard"]
        )
        self._read_errors = _Limited(
            family(
                Counter,
                "shipper_consumer_read_errors",
                "Failed Kinesis reads, by shard and error code (throttling included).",
                ["shard", "code"],
            ),
            "shipper_consumer_read_errors_total",
            LAMBDA_MAX_SERIES,
            self._dropped,
        )
        self._stalled = family(
            Gauge,
            "shipper_consumer_shard_stalled",
            "1 while a shard reads nothing new: a record it cannot pass (cause=record) or a checkpoint it "
            "cannot write (cause=checkpoint).",
            ["shard", "cause"],
        )
        self._checkpoint_failures = family(
            Counter, "shipper_consumer_checkpoint_failures", "Checkpoint writes that failed, by shard.", ["shard"]
        )
        self.custom = CustomMetrics(self.config, self._drop)
        r.register(self.custom)
        # By event type; looked up with whatever an event's "type" holds, so any key.
        self._handlers: dict[object, Callable[[dict[str, Any]], object]] = {
            "invocation": self._invocation,
            "cold_start": lambda event: self._cold_starts.inc(event["function"]),
            "timeout": lambda event: self._timeouts.inc(event["function"]),
            "out_of_memory": lambda event: self._out_of_memory.inc(event["function"]),
            "throttle": lambda event: self._throttles.inc(event["function"], event.get("error_code")),
            "error": lambda event: self._errors.inc(event["function"], event.get("error_type")),
            "init_error": lambda event: self._init_errors.inc(event["function"], event.get("error_type")),
            "metric": self.custom.observe,
        }
        self._pipeline_totals = Increments()
        self._router_totals = Increments()

    def _drop(self, metric: str, reason: str) -> None:
        self._dropped.labels(metric, reason).inc()

    # --- events ----------------------------------------------------------------------------------

    def observe_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Count structured events: Lambda health from the signal events, custom metrics, events per type."""
        handlers = self._handlers
        by_type: Tally[Any] = Tally()
        for event in events:
            event_type = event.get("type")
            handler = handlers.get(event_type)
            if handler is not None:
                handler(event)
            by_type[event_type] += 1
        for event_type, count in by_type.items():
            self._events.labels(event_type if event_type in EVENT_TYPES else "unknown").inc(count)

    def observe_outcomes(self, outcomes: Iterable[RecordOutcome]) -> None:
        """`observe_events` over the events of pipeline outcomes."""
        self.observe_events(event for outcome in outcomes for event in outcome.events)

    def _invocation(self, event: dict[str, Any]) -> None:
        function = event["function"]
        self._invocations.inc(function, event.get("status"))
        duration = event.get("duration_ms")
        if duration is not None:
            self._duration.observe(duration / 1000, function)
        init = event.get("init_duration_ms")
        if init is not None:
            self._init_duration.observe(init / 1000, function)
        billed = (event.get("billed_duration_ms") or 0) + (event.get("billed_restore_duration_ms") or 0)
        if billed:
            self._billed.inc(function, amount=billed / 1000)
        used, size = event.get("max_memory_used_mb"), event.get("memory_size_mb")
        if used is not None and size:
            self._memory.observe(used / size, function)

    # --- the shipper itself ----------------------------------------------------------------------

    def observe_report(self, report: DeliveryReport) -> None:
        """Count the records a delivery settled, by outcome: delivered, dead_lettered, not_delivered."""
        for outcome, count in report.counts().items():
            if count:
                self._records.labels(outcome).inc(count)

    def observe_batch_seconds(self, seconds: float) -> None:
        self._batch.observe(seconds)

    # --- as the BatchObserver of `run` and `consume` (shipper.shipping) --------------------------

    def outcome(self, origin: Origin, outcome: RecordOutcome) -> None:
        self.observe_events(outcome.events)

    def settled(self, report: DeliveryReport) -> None:
        self.observe_report(report)

    def batch_done(self, result: BatchResult) -> None:
        self.sync(result.pipeline_counts, result.router_stats)
        if result.seconds is not None:
            self.observe_batch_seconds(result.seconds)

    def sync(self, pipeline_counts: Mapping[str, int], router_stats: Mapping[str, Any]) -> None:
        """Bring the counters up to cumulative `Pipeline.counts` and `Router.stats()` (call after each batch)."""
        self.add_pipeline_counts(self._pipeline_totals.since_last(pipeline_counts))
        self.add_router_increments(self._router_totals.since_last(router_totals(router_stats)))

    def add_pipeline_counts(self, increments: Mapping[str, float]) -> None:
        """Add increments of `Pipeline.counts` names."""
        for name, amount in increments.items():
            if name.startswith(REJECTED_PREFIX):
                self._rejects.labels(name.removeprefix(REJECTED_PREFIX)).inc(amount)
            elif name in self._pipeline:
                self._pipeline[name].inc(amount)
            elif name not in _PIPELINE_IGNORED:
                self._notes.labels(name).inc(amount)

    def add_router_increments(self, increments: Mapping[tuple[str, str], float]) -> None:
        """Add increments of `router_totals(Router.stats())`."""
        for (sink, counter), amount in increments.items():
            if (sink, counter) == UNROUTED:
                self._unrouted.inc(amount)
            elif counter in self._sinks:
                self._sinks[counter].labels(sink).inc(amount)

    # --- the Kinesis consumer --------------------------------------------------------------------

    def set_consumer_lag(self, shard: str, millis_behind: int | None) -> None:
        """Lag of a shard from GetRecords' MillisBehindLatest; None removes the shard (it is finished)."""
        if millis_behind is None:
            self._lag.remove(shard)
        else:
            self._lag.labels(shard).set(millis_behind / 1000)

    def count_read_error(self, shard: str, code: str) -> None:
        self._read_errors.inc(shard, code)

    def set_shard_stalled(self, shard: str, cause: str, stalled: bool) -> None:
        """Whether `shard` is held up by `cause` ("record" or "checkpoint"); the series leaves when it is not."""
        if stalled:
            self._stalled.labels(shard, cause).set(1)
        else:
            self._stalled.remove(shard, cause)

    def count_checkpoint_failure(self, shard: str) -> None:
        self._checkpoint_failures.labels(shard).inc()
