"""Sinks that deliver to AWS: Kinesis Data Streams, Firehose, S3, CloudWatch metrics and CloudWatch EMF.

This module is imported only when an AWS sink is configured; it is the one place the sinks import
boto3. Each sink sends one batch per `send` and classifies its own failures. Retrying, backoff and
deadlines belong to the delivery layer, so botocore's own retries are turned off here.

A batch may be partly delivered. What was not delivered is built in one place, `Outcome`: the indices
of the events the destination did not take, retryable when any of them may succeed on a second try
(an event that can never be delivered, such as one larger than a record, then fails for good on the
retry). Events that cannot be represented at all fail at once, not retryable; the rest still goes out.
"""

from __future__ import annotations

import gzip
import math
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, NamedTuple

import boto3
import orjson
from aws_kinesis_agg import MAX_BYTES_PER_RECORD
from aws_kinesis_agg.aggregator import AggRecord, RecordAggregator
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from shipper.aws_errors import RETRYABLE_CODES, classify
from shipper.errors import ConfigError
from shipper.files import PartialWrite, unbuffered_write, write_all
from shipper.sinks.backend import Converter, flag, positive, text
from shipper.sinks.base import Sink, SinkError

__all__ = [
    "CloudWatchMetricsSink",
    "EmfSink",
    "FirehoseSink",
    "KinesisSink",
    "Outcome",
    "Packed",
    "S3Sink",
    "build_aws_sink",
    "cloudwatch_unit",
]

MiB = 1024 * 1024


@dataclass(slots=True)
class Packed:
    """One unit a destination takes (a record, a metric datum, an object) and the batch indices of its events."""

    payload: Any
    events: list[int]
    size: int
    key: str = ""
    """What the unit is addressed by: the partition key (Kinesis) or the namespace (CloudWatch)."""


class Outcome:
    """Which events of one batch were not delivered, why, and whether trying them again may help."""

    def __init__(self) -> None:
        self.failed: set[int] = set()
        self.retryable = False
        self.retry_after: float | None = None
        self._reasons: dict[str, None] = {}

    def fail(self, events: Iterable[int], reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        self.failed.update(events)
        self.retryable |= retryable
        self._reasons.setdefault(reason)
        if retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, retry_after)

    def entries(self, call: Sequence[Packed], entries: Sequence[Mapping[str, Any]]) -> None:
        """Take the per-record results of PutRecords or PutRecordBatch, in the order of `call`."""
        for unit, entry in zip(call, entries, strict=True):
            code = entry.get("ErrorCode")
            if code:
                self.fail(unit.events, f"{code}: {entry.get('ErrorMessage', '')}", retryable=code in RETRYABLE_CODES)

    def raise_if_failed(self, sink: str, total: int) -> None:
        """Raise the one SinkError that describes this batch, if anything in it was not delivered."""
        if not self.failed:
            return
        reasons = list(self._reasons)
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        raise SinkError(
            f"{sink}: {len(self.failed)} of {total} events not delivered: {'; '.join(reasons[:3])}{more}",
            retryable=self.retryable,
            failed=None if len(self.failed) == total else sorted(self.failed),
            retry_after=self.retry_after,
        )


def chunks(units: Iterable[Packed], max_units: int, max_bytes: int) -> Iterator[list[Packed]]:
    """Split units into calls of at most `max_units` units and `max_bytes` bytes, in order."""
    call: list[Packed] = []
    size = 0
    for unit in units:
        if call and (len(call) == max_units or size + unit.size > max_bytes):
            yield call
            call, size = [], 0
        call.append(unit)
        size += unit.size
    if call:
        yield call


def deliver(
    calls: Sequence[list[Packed]],
    put: Callable[[list[Packed]], Sequence[Mapping[str, Any]]],
    outcome: Outcome,
) -> None:
    """Make each call in turn; `put` returns per-record results, or nothing when a call is all-or-nothing.

    A call that fails for good fails its own events and the next call still goes. A call that may pass
    later stops the batch there: its events and all the calls after it are left for the retry.
    """
    for n, call in enumerate(calls):
        try:
            entries = put(call)
        except (BotoCoreError, ClientError) as exc:
            retryable, reason, retry_after = classify(exc)
            failing = calls[n:] if retryable else [call]
            events = (index for each in failing for unit in each for index in unit.events)
            outcome.fail(events, reason, retryable=retryable, retry_after=retry_after)
            if retryable:
                return
            continue
        if entries:
            outcome.entries(call, entries)


def ndjson_lines(events: Sequence[Mapping[str, Any]], outcome: Outcome) -> list[tuple[int, bytes]]:
    """(index, line) for every event that encodes as JSON; an event that does not fails for good."""
    lines = []
    dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for index, event in enumerate(events):
        try:
            lines.append((index, dumps(event, option=option)))
        except orjson.JSONEncodeError as exc:
            outcome.fail([index], f"event is not JSON-serialisable: {exc}", retryable=False)
    return lines


# --- Kinesis Data Streams ------------------------------------------------------------------------

# PutRecords limits: 500 records and 5 MiB per call, partition keys included. A record holds 1 MiB,
# its partition key included: leave room for the longest key Kinesis allows (256 characters).
KINESIS_MAX_RECORDS = 500
KINESIS_MAX_CALL_BYTES = 5 * MiB
KINESIS_MAX_AGGREGATE_BYTES = MAX_BYTES_PER_RECORD - 1024
NO_FUNCTION_KEY = "-"


def _random_key() -> str:
    return uuid.uuid4().hex


def _aggregated(record: AggRecord, events: list[int]) -> Packed:
    key, _, data = record.get_contents()
    return Packed(data, events, len(data) + len(key.encode()), key)


class _Aggregate:
    """The KPL record being filled for one partition key, and the batch indices of the events in it.

    Every user record in an aggregate carries the aggregate's own partition key: KCL drops, on
    deaggregation, a user record whose key hashes outside the shard the aggregate landed on.
    """

    __slots__ = ("aggregator", "events", "key", "rekey")

    def __init__(self, key: str, *, rekey: bool) -> None:
        self.aggregator = RecordAggregator(max_size=KINESIS_MAX_AGGREGATE_BYTES)
        self.key = key
        self.rekey = rekey
        self.events: list[int] = []

    def add(self, index: int, line: bytes) -> Packed | None:
        """Add one event; return the previous record when this event did not fit in it.

        Raises ValueError when the line alone is larger than a record.
        """
        full = self.aggregator.add_user_record(self.key, line)
        done = None
        if full is not None:
            done = _aggregated(full, self.events)
            self.events = []
            if self.rekey:  # random keys: start the next record under a fresh key
                self.aggregator.clear_record()
                self.key = _random_key()
                self.aggregator.add_user_record(self.key, line)
        self.events.append(index)
        return done

    def flush(self) -> Packed | None:
        record = self.aggregator.clear_and_get()
        return None if record is None else _aggregated(record, self.events)


class KinesisSink:
    """PutRecords of KPL-aggregated records, each a run of NDJSON events under one partition key.

    `partition_key="function"` keeps each function's events on one shard, in order; `"random"` spreads
    the load evenly, with a fresh key per aggregated record.
    """

    max_batch_events = 10_000
    max_batch_bytes = 4 * MiB

    def __init__(self, client: Any, stream: str, *, partition_key: str = "function") -> None:
        if partition_key not in ("function", "random"):
            raise ConfigError(f"partition_key must be 'function' or 'random', not {partition_key!r}")
        self.name = f"kinesis:{stream}"
        self._client = client
        self._stream = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
        self._by_function = partition_key == "function"

    def pack(self, events: Sequence[Mapping[str, Any]], outcome: Outcome) -> list[Packed]:
        """Aggregate the events into records; an event too large for a record fails for good."""
        aggregates: dict[str | None, _Aggregate] = {}
        records = []
        for index, line in ndjson_lines(events, outcome):
            bucket = (events[index].get("function") or NO_FUNCTION_KEY) if self._by_function else None
            aggregate = aggregates.get(bucket)
            if aggregate is None:
                aggregate = aggregates[bucket] = _Aggregate(bucket or _random_key(), rekey=bucket is None)
            try:
                done = aggregate.add(index, line)
            except ValueError:
                outcome.fail([index], f"event larger than a Kinesis record ({len(line)} bytes)", retryable=False)
                continue
            if done is not None:
                records.append(done)
        records.extend(record for aggregate in aggregates.values() if (record := aggregate.flush()) is not None)
        return records

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        records = self.pack(events, outcome)
        deliver(list(chunks(records, KINESIS_MAX_RECORDS, KINESIS_MAX_CALL_BYTES)), self._put, outcome)
        outcome.raise_if_failed(self.name, len(events))

    def _put(self, call: list[Packed]) -> Sequence[Mapping[str, Any]]:
        response = self._client.put_records(
            Records=[{"Data": unit.payload, "PartitionKey": unit.key} for unit in call], **self._stream
        )
        return response["Records"] if response.get("FailedRecordCount") else ()

    def close(self) -> None:
        self._client.close()


# --- Firehose ------------------------------------------------------------------------------------

# PutRecordBatch limits: 500 records and 4 MiB per call, 1,000 KiB per record.
FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_CALL_BYTES = 4 * MiB
FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024


class FirehoseSink:
    """PutRecordBatch of NDJSON records.

    By default consecutive events share a record up to the record limit (Firehose bills each record
    rounded up to 5 KB; an S3 destination concatenates records, so objects stay NDJSON).
    `record_per_event=True` sends one event per record, for destinations that need one document per
    record (OpenSearch, Splunk, a transforming Lambda that expects it).
    """

    max_batch_bytes = FIREHOSE_MAX_CALL_BYTES

    def __init__(self, client: Any, delivery_stream: str, *, record_per_event: bool = False) -> None:
        self.name = f"firehose:{delivery_stream}"
        self.max_batch_events = FIREHOSE_MAX_RECORDS if record_per_event else 10_000
        self._client = client
        self._delivery_stream = delivery_stream
        self._record_per_event = record_per_event

    def pack(self, events: Sequence[Mapping[str, Any]], outcome: Outcome) -> list[Packed]:
        """NDJSON records of one event each, or of as many consecutive events as fit."""
        records: list[Packed] = []
        for index, line in ndjson_lines(events, outcome):
            if len(line) > FIREHOSE_MAX_RECORD_BYTES:
                outcome.fail([index], f"event larger than a Firehose record ({len(line)} bytes)", retryable=False)
            elif self._record_per_event or not records or records[-1].size + len(line) > FIREHOSE_MAX_RECORD_BYTES:
                records.append(Packed([line], [index], len(line)))
            else:
                records[-1].payload.append(line)
                records[-1].events.append(index)
                records[-1].size += len(line)
        return records

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        records = self.pack(events, outcome)
        deliver(list(chunks(records, FIREHOSE_MAX_RECORDS, FIREHOSE_MAX_CALL_BYTES)), self._put, outcome)
        outcome.raise_if_failed(self.name, len(events))

    def _put(self, call: list[Packed]) -> Sequence[Mapping[str, Any]]:
        response = self._client.put_record_batch(
            DeliveryStreamName=self._delivery_stream, Records=[{"Data": b"".join(unit.payload)} for unit in call]
        )
        return response["RequestResponses"] if response.get("FailedPutCount") else ()

    def close(self) -> None:
        self._client.close()


# --- S3 ------------------------------------------------------------------------------------------


class S3Sink:
    """One gzip-compressed NDJSON object per batch, at `<prefix>/YYYY/MM/DD/HH/<UTC time>-<uuid>.ndjson.gz`.

    The hour partition and the time in the name are the UTC send time. Also the dead-letter target:
    dead-letter entries are JSON objects like events.
    """

    max_batch_events = 100_000
    max_batch_bytes = 16 * MiB

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, clock: Callable[[], float] = time.time) -> None:
        prefix = prefix.strip("/")
        self.name = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self._clock = clock

    def object_key(self, now: float) -> str:
        t = datetime.fromtimestamp(now, UTC)
        stamp = f"{t:%Y%m%dT%H%M%S}.{t.microsecond // 1000:03d}Z"
        return f"{self._prefix}{t:%Y/%m/%d/%H}/{stamp}-{uuid.uuid4().hex}.ndjson.gz"

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        lines = ndjson_lines(events, outcome)
        if lines:
            body = gzip.compress(b"".join(line for _, line in lines))
            deliver([[Packed(body, [index for index, _ in lines], len(body))]], self._put, outcome)
        outcome.raise_if_failed(self.name, len(events))

    def _put(self, call: list[Packed]) -> Sequence[Mapping[str, Any]]:
        self._client.put_object(
            Bucket=self._bucket,
            Key=self.object_key(self._clock()),
            Body=call[0].payload,
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
        )
        return ()

    def close(self) -> None:
        self._client.close()


# --- CloudWatch metrics: what both metric sinks send --------------------------------------------

DEFAULT_NAMESPACE = "Shipper"
MAX_DIMENSIONS = 30
MAX_DATA_AGE_S = 14 * 24 * 3600  # CloudWatch takes data points up to two weeks old ...
MAX_DATA_AHEAD_S = 2 * 3600  # ... and up to two hours ahead.
_VALUE_LIMIT = 2.0**360  # CloudWatch rejects values outside ±2^360 (and non-zero ones closer to 0 than 2^-360).

_RATE_UNITS = frozenset(
    {"Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits"}
    | {"Terabits", "Count"}
)
_CLOUDWATCH_UNITS = _RATE_UNITS | {"Seconds", "Microseconds", "Milliseconds", "Percent", "None"}
_UNIT_NAMES = {unit.lower(): unit for unit in _CLOUDWATCH_UNITS} | {
    "ms": "Milliseconds",
    "msec": "Milliseconds",
    "s": "Seconds",
    "sec": "Seconds",
    "secs": "Seconds",
    "us": "Microseconds",
    "µs": "Microseconds",
    "μs": "Microseconds",
    "b": "Bytes",
    "kb": "Kilobytes",
    "kib": "Kilobytes",
    "mb": "Megabytes",
    "mib": "Megabytes",
    "gb": "Gigabytes",
    "gib": "Gigabytes",
    "tb": "Terabytes",
    "tib": "Terabytes",
    "kbit": "Kilobits",
    "mbit": "Megabits",
    "gbit": "Gigabits",
    "tbit": "Terabits",
    "%": "Percent",
    "pct": "Percent",
    "percentage": "Percent",
}
_DEFAULT_UNITS = {"count": "Count", "timer": "Milliseconds"}

# Dimensions must never carry per-request identifiers: each value would start a new metric.
_ID_TAG = re.compile(r"(request|trace|span)[-_.]?id", re.IGNORECASE)

# From `invocation` events: (field, metric name, unit).
_INVOCATION_VALUES = (
    ("duration_ms", "Duration", "Milliseconds"),
    ("billed_duration_ms", "BilledDuration", "Milliseconds"),
    ("max_memory_used_mb", "MaxMemoryUsed", "Megabytes"),
    ("init_duration_ms", "InitDuration", "Milliseconds"),
    ("restore_duration_ms", "RestoreDuration", "Milliseconds"),
)
# One count per event of these types.
_EVENT_COUNTS = {
    "invocation": "Invocations",
    "cold_start": "ColdStarts",
    "timeout": "Timeouts",
    "out_of_memory": "OutOfMemory",
    "error": "Errors",
    "init_error": "InitErrors",
    "throttle": "Throttles",
}


def cloudwatch_unit(unit: str | None, metric_type: str | None = None) -> str:
    """The CloudWatch unit for a metric's own unit (`ms`, `bytes`, `KB/s`, `%` ...); `None` when unknown."""
    if not unit:
        return _DEFAULT_UNITS.get(metric_type or "", "None")
    key = unit.strip().lower()
    base, per, rate = key.partition("/")
    if per:
        base_unit = _UNIT_NAMES.get(base) or _UNIT_NAMES.get(base + "s")
        if rate in ("s", "sec", "second") and base_unit in _RATE_UNITS:
            return f"{base_unit}/Second"
        return "None"
    return _UNIT_NAMES.get(key) or _UNIT_NAMES.get(key + "s") or "None"


def _is_name(text: Any, limit: int) -> bool:
    """Whether CloudWatch takes `text` as a name or dimension value: printable ASCII, not blank, not too long."""
    if not isinstance(text, str):
        return False
    return 0 < len(text) <= limit and text.isascii() and text.isprintable() and not text.isspace()


def _is_namespace(text: Any) -> bool:
    return _is_name(text, 255) and not text.startswith("AWS/")


def _dimensions(tags: Mapping[str, str], request_id: str | None) -> tuple[tuple[str, str], ...]:
    """Tags that make valid dimensions (never an id, never `_aws`, which EMF reserves), the first 30 by name."""
    kept = [
        (name, value)
        for name, value in sorted(tags.items())
        if _is_name(name, 255)
        and _is_name(value, 1024)
        and not name.startswith((":", "_aws"))
        and value != request_id
        and not _ID_TAG.search(name)
    ]
    return tuple(kept[:MAX_DIMENSIONS])


class Series(NamedTuple):
    """One metric stream: data points sharing all of these aggregate into one datum (or one EMF member)."""

    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    minute: int
    """The data points' minute, in epoch milliseconds."""


@dataclass(slots=True)
class Samples:
    values: list[float] = field(default_factory=list)
    events: list[int] = field(default_factory=list)


class _Unrepresentable(Exception):
    """An event CloudWatch cannot take as a metric."""


def _points(event: Mapping[str, Any], namespace: str) -> list[tuple[str, str, str, tuple[tuple[str, str], ...], Any]]:
    """(namespace, name, unit, dimensions, value) for each data point an event yields; none for most events."""
    event_type = event.get("type")
    if event_type == "metric":
        if event.get("metric_type") == "set":  # a set counts distinct members: CloudWatch has no such statistic
            return []
        name, value = event.get("name"), event.get("value")
        namespace = event.get("namespace") or namespace
        if not _is_name(name, 255):
            raise _Unrepresentable(f"metric name {name!r} is not a valid CloudWatch metric name")
        if not _is_namespace(namespace):
            raise _Unrepresentable(f"namespace {namespace!r} is not a valid CloudWatch namespace")
        rate = event.get("sample_rate")
        if event.get("metric_type") == "count" and _valid_value(value) and isinstance(rate, float) and 0 < rate < 1:
            value /= rate  # a sampled counter stands for 1/rate as many
        dimensions = _dimensions(event.get("tags") or {}, event.get("request_id"))
        return [(namespace, name, cloudwatch_unit(event.get("unit"), event.get("metric_type")), dimensions, value)]
    count_name = _EVENT_COUNTS.get(event_type)
    if count_name is None:
        return []
    function = event.get("function")
    dimensions = (("FunctionName", function),) if _is_name(function, 1024) else ()
    points = [(namespace, count_name, "Count", dimensions, 1)]
    if event_type == "invocation":
        points.extend(
            (namespace, name, unit, dimensions, event[key])
            for key, name, unit in _INVOCATION_VALUES
            if event.get(key) is not None
        )
    return points


def _valid_value(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    magnitude = abs(value)
    return magnitude == 0 or (math.isfinite(magnitude) and 1 / _VALUE_LIMIT <= magnitude <= _VALUE_LIMIT)


def collect_metrics(
    events: Sequence[Mapping[str, Any]], namespace: str, now: float, outcome: Outcome
) -> dict[Series, Samples]:
    """Group the data points of a batch by series. Events CloudWatch cannot take fail for good in `outcome`."""
    oldest, newest = (now - MAX_DATA_AGE_S) * 1000, (now + MAX_DATA_AHEAD_S) * 1000
    series: dict[Series, Samples] = {}
    for index, event in enumerate(events):
        try:
            points = _points(event, namespace)
            if not points:
                continue
            timestamp = event.get("timestamp")
            if not isinstance(timestamp, int) or not oldest <= timestamp <= newest:
                raise _Unrepresentable(f"timestamp {timestamp!r} outside what CloudWatch takes (two weeks back)")
            if not all(_valid_value(point[4]) for point in points):
                raise _Unrepresentable("a value CloudWatch cannot store (not a finite number within ±2^360)")
        except _Unrepresentable as exc:
            outcome.fail([index], str(exc), retryable=False)
            continue
        minute = timestamp - timestamp % 60_000
        for point_namespace, name, unit, dimensions, value in points:
            samples = series.setdefault(Series(point_namespace, name, unit, dimensions, minute), Samples())
            samples.values.append(float(value))
            samples.events.append(index)
    return series


# PutMetricData limits: 1,000 data items and 1 MB per call, 150 distinct values per item.
CLOUDWATCH_MAX_DATUMS = 1000
CLOUDWATCH_MAX_CALL_BYTES = 1_000_000
CLOUDWATCH_MAX_VALUES = 150


def _datums(series: Series, samples: Samples) -> Iterator[Packed]:
    """PutMetricData items for one series: each distinct value once, with how many times it occurred."""
    counted = list(Counter(samples.values).items())
    dimensions = [{"Name": name, "Value": value} for name, value in series.dimensions]
    timestamp = datetime.fromtimestamp(series.minute / 1000, UTC)
    for start in range(0, len(counted), CLOUDWATCH_MAX_VALUES):
        part = counted[start : start + CLOUDWATCH_MAX_VALUES]
        datum = {
            "MetricName": series.name,
            "Dimensions": dimensions,
            "Timestamp": timestamp,
            "Unit": series.unit,
            "Values": [value for value, _ in part],
            "Counts": [float(count) for _, count in part],
        }
        # The JSON size overstates the wire size a little (the client sends CBOR): a safe estimate.
        yield Packed(datum, samples.events, len(orjson.dumps(datum)), series.namespace)


class CloudWatchMetricsSink:
    """Invocation statistics, signal counts and custom metrics as CloudWatch metrics (PutMetricData).

    Data points with the same metric, dimensions and minute go out as one item (Values and Counts).
    A retried batch may count again what an earlier call of the same batch already stored.
    """

    name = "cloudwatch"
    max_batch_events = 10_000
    max_batch_bytes = 8 * MiB

    def __init__(
        self, client: Any, *, namespace: str = DEFAULT_NAMESPACE, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._clock = clock

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        by_namespace: dict[str, list[Packed]] = {}
        for series, samples in collect_metrics(events, self._namespace, self._clock(), outcome).items():
            by_namespace.setdefault(series.namespace, []).extend(_datums(series, samples))
        calls = [
            call
            for datums in by_namespace.values()
            for call in chunks(datums, CLOUDWATCH_MAX_DATUMS, CLOUDWATCH_MAX_CALL_BYTES)
        ]
        deliver(calls, self._put, outcome)
        outcome.raise_if_failed(self.name, len(events))

    def _put(self, call: list[Packed]) -> Sequence[Mapping[str, Any]]:
        self._client.put_metric_data(Namespace=call[0].key, MetricData=[unit.payload for unit in call])
        return ()

    def close(self) -> None:
        self._client.close()


# --- CloudWatch embedded metric format ------------------------------------------------------------

EMF_MAX_METRICS = 100  # per directive
EMF_MAX_VALUES = 100  # per metric


def emf_documents(series: Mapping[Series, Samples], outcome: Outcome) -> list[dict[str, Any]]:
    """EMF documents for the series: one per namespace, dimension set and minute, split to the EMF limits.

    Metric values and dimension values share the document's top level, so a metric named like one of
    its dimensions cannot be written; its events fail for good.
    """
    groups: dict[tuple[str, tuple[tuple[str, str], ...], int], list[dict[str, tuple[str, list[float]]]]] = {}
    for (namespace, name, unit, dimensions, minute), samples in series.items():
        if name == "_aws" or any(name == key for key, _ in dimensions):
            outcome.fail(samples.events, f"metric {name!r} has the name of a dimension or of _aws", retryable=False)
            continue
        documents = groups.setdefault((namespace, dimensions, minute), [])
        for start in range(0, len(samples.values), EMF_MAX_VALUES):
            values = samples.values[start : start + EMF_MAX_VALUES]
            document = next((d for d in documents if name not in d and len(d) < EMF_MAX_METRICS), None)
            if document is None:
                document = {}
                documents.append(document)
            document[name] = (unit, values)
    return [
        {
            "_aws": {
                "Timestamp": minute,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [[key for key, _ in dimensions]],
                        "Metrics": [{"Name": name, "Unit": unit} for name, (unit, _) in metrics.items()],
                    }
                ],
            },
            **dict(dimensions),
            **{name: values if len(values) > 1 else values[0] for name, (_, values) in metrics.items()},
        }
        for (namespace, dimensions, minute), documents in groups.items()
        for metrics in documents
    ]


class EmfSink:
    """The same metrics as `CloudWatchMetricsSink`, as EMF documents on standard output, one per line.

    In Lambda (or anywhere CloudWatch Logs collects standard output) CloudWatch extracts the metrics.
    """

    name = "cloudwatch:emf"
    max_batch_events = 10_000
    max_batch_bytes = 8 * MiB

    def __init__(
        self,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Callable[[], float] = time.time,
        stream: BinaryIO | None = None,
    ) -> None:
        self._namespace = namespace
        self._clock = clock
        self._stream = stream if stream is not None else sys.stdout.buffer

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        series = collect_metrics(events, self._namespace, self._clock(), outcome)
        documents = emf_documents(series, outcome)
        option = orjson.OPT_APPEND_NEWLINE
        data = b"".join(orjson.dumps(document, option=option) for document in documents)
        try:
            write_all(unbuffered_write(self._stream), data)
        except PartialWrite as exc:
            # Which documents hold which events is not kept: every event with a data point counts as not
            # delivered (sent again, its documents written before the failure may count twice).
            raise SinkError(
                f"{self.name}: cannot write to standard output: {exc.strerror}",
                retryable=False,
                blocked=True,
                failed=sorted(outcome.failed.union(*(samples.events for samples in series.values()))),
            ) from exc
        outcome.raise_if_failed(self.name, len(events))

    def close(self) -> None:
        return None


# --- Building from a spec ------------------------------------------------------------------------

_CONNECTION_OPTIONS = frozenset({"endpoint_url", "region", "timeout"})
_KIND_OPTIONS = {
    "s3": frozenset(),
    "kinesis": frozenset({"partition_key"}),
    "firehose": frozenset({"record_per_event"}),
    "cloudwatch": frozenset({"namespace"}),
    "cloudwatch:emf": frozenset({"namespace"}),
}
_SERVICES = {"s3": "s3", "kinesis": "kinesis", "firehose": "firehose", "cloudwatch": "cloudwatch"}
SPECS = "s3://BUCKET[/PREFIX], kinesis:STREAM, firehose:DELIVERY_STREAM, cloudwatch or cloudwatch:emf"


def _parse_spec(spec: str) -> tuple[str, str]:
    """(kind, target) of an AWS sink spec."""
    if spec.startswith("s3://"):
        kind, target = "s3", spec.removeprefix("s3://")
    elif spec in ("cloudwatch", "cloudwatch:emf"):
        kind, target = spec, ""
    else:
        kind, _, target = spec.partition(":")
        if kind not in ("kinesis", "firehose"):
            raise ConfigError(f"unknown AWS sink {spec!r}: expected {SPECS}")
    if kind in ("s3", "kinesis", "firehose") and not target.split("/", 1)[0]:
        raise ConfigError(f"AWS sink {spec!r} names no {'bucket' if kind == 's3' else 'stream'}")
    return kind, target


def _option(options: Mapping[str, Any], name: str, read: Converter, default: Any) -> Any:
    """Option `name` read by `read` (text, flag, positive(...): text from a line is read by its type)."""
    return read(name, options[name]) if name in options else default


def make_client(service: str, options: Mapping[str, Any]) -> Any:
    """A botocore client that tries each call once, with the sink's endpoint, region and timeout."""
    # One attempt per call: the delivery layer owns retrying, with its backoff, deadline and dead letter.
    # botocore retrying underneath would multiply attempts and hide throttling from that accounting.
    # (botocore's `max_attempts` counts retries, not attempts: `total_max_attempts` is the one meaning 1 call.)
    timeout = _option(options, "timeout", positive(float), 30.0)
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=min(timeout, 10), read_timeout=timeout
    )
    session = boto3.session.Session(region_name=_option(options, "region", text, None))
    return session.client(service, endpoint_url=_option(options, "endpoint_url", text, None), config=config)


def build_aws_sink(spec: str, options: Mapping[str, Any] | None = None) -> Sink:
    """Build an AWS sink from its spec and options.

    Specs: `s3://BUCKET[/PREFIX]`, `kinesis:STREAM` (name or ARN), `firehose:DELIVERY_STREAM`,
    `cloudwatch` (PutMetricData) and `cloudwatch:emf` (EMF on standard output).
    Options: `endpoint_url`, `region`, `timeout` (seconds) for all; `partition_key` ("function" or
    "random") for kinesis; `record_per_event` for firehose; `namespace` for cloudwatch and cloudwatch:emf.
    """
    options = options or {}
    kind, target = _parse_spec(spec)
    unknown = options.keys() - _CONNECTION_OPTIONS - _KIND_OPTIONS[kind]
    if unknown:
        allowed = ", ".join(sorted(_CONNECTION_OPTIONS | _KIND_OPTIONS[kind]))
        raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))} for sink {spec!r}; allowed: {allowed}")
    namespace = _option(options, "namespace", text, DEFAULT_NAMESPACE)
    if not _is_namespace(namespace):
        raise ConfigError(f"sink option 'namespace' is not a valid CloudWatch namespace: {namespace!r}")
    if kind == "cloudwatch:emf":
        return EmfSink(namespace=namespace)
    try:
        client = make_client(_SERVICES[kind], options)
    except NoRegionError:
        raise ConfigError("no AWS region: set the sink's 'region' option or AWS_REGION") from None
    if kind == "s3":
        bucket, _, prefix = target.partition("/")
        return S3Sink(client, bucket, prefix)
    if kind == "kinesis":
        return KinesisSink(client, target, partition_key=_option(options, "partition_key", text, "function"))
    if kind == "firehose":
        return FirehoseSink(client, target, record_per_event=_option(options, "record_per_event", flag, False))
    return CloudWatchMetricsSink(client, namespace=namespace)
