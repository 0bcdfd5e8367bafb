"""OTLP/HTTP sink (`otlp:URL`): events as OpenTelemetry logs and metrics, protobuf-encoded, gzip by default.

URL is the collector's base (`http://collector:4318`); logs go to URL/v1/logs and metrics to
URL/v1/metrics, as OTEL_EXPORTER_OTLP_ENDPOINT works.

- Log records: `log` events, and the signal events that carry a message (`error`, `timeout`,
  `out_of_memory`, `throttle`, `init_error`, with `event_name` aws.lambda.<type>).
- Metrics, aggregated per batch with delta temporality (one data point per series per send, not one
  per event): from `invocation` (faas.invocations, faas.invoke_duration, faas.init_duration,
  faas.mem_usage), the signals (faas.coldstarts, faas.timeouts, faas.errors, aws.lambda.throttles,
  aws.lambda.out_of_memory, aws.lambda.init_errors) and custom `metric` events (count: a monotonic sum;
  gauge: a gauge, or a non-monotonic sum for StatsD +N/-N; timer, histogram, distribution: a histogram;
  set: a gauge of the distinct values in the batch).

Resources follow the OpenTelemetry semantic conventions for FaaS and cloud: one per function and log
stream (cloud.provider=aws, cloud.platform=aws_lambda, cloud.region, cloud.account.id, faas.name,
faas.version and faas.instance from the log stream, aws.log.group.names, aws.log.stream.names,
service.name = the function); the request id is the record attribute faas.invocation_id.

Answers, as the OTLP/HTTP specification says: 429, 502, 503 and 504 are retried (Retry-After
honoured), any other error is not. A partial success that rejected items dead-letters the events of
that request with the collector's message (it does not say which items it refused). Logs are sent
before metrics; when the metrics request fails after the logs request succeeded, only the events
that made metrics are sent again, so a signal event's log record may arrive twice: at least once.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from shipper import __version__
from shipper.bounds import METRIC_VALUE, json_number
from shipper.errors import ConfigError
from shipper.sinks.backend import text, transport
from shipper.sinks.base import SinkError
from shipper.sinks.http import HttpSink

__all__ = ["OtlpSink", "build"]

RETRYABLE = frozenset({429, 502, 503, 504})
"""The statuses the OTLP/HTTP specification says to retry; every other error is final."""
SECONDS_BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
"""Histogram bounds for durations: 1 ms to the 15-minute Lambda timeout."""
BYTES_BOUNDS = tuple(float(mb * 1024 * 1024) for mb in (64, 128, 256, 512, 1024, 2048, 4096, 10240))
VALUE_BOUNDS = tuple(m * 10.0**e for e in range(-3, 7) for m in (1.0, 2.5, 5.0))
"""Histogram bounds for custom metrics: 1-2.5-5 steps from 0.001 to 5,000,000."""
MAX_ATTRIBUTE_DEPTH = 8
"""Nested structured fields deeper than this become their JSON text."""

_LOG_TYPES = frozenset({"log", "error", "timeout", "out_of_memory", "throttle", "init_error"})
_METRIC_TYPES = frozenset({"invocation", "cold_start", "metric", "error", "timeout", "out_of_memory", "throttle"})
_METRIC_TYPES |= {"init_error"}
_SEVERITY = {
    "trace": SeverityNumber.SEVERITY_NUMBER_TRACE,
    "debug": SeverityNumber.SEVERITY_NUMBER_DEBUG,
    "info": SeverityNumber.SEVERITY_NUMBER_INFO,
    "notice": SeverityNumber.SEVERITY_NUMBER_INFO2,
    "warn": SeverityNumber.SEVERITY_NUMBER_WARN,
    "warning": SeverityNumber.SEVERITY_NUMBER_WARN,
    "error": SeverityNumber.SEVERITY_NUMBER_ERROR,
    "critical": SeverityNumber.SEVERITY_NUMBER_FATAL,
    "fatal": SeverityNumber.SEVERITY_NUMBER_FATAL,
}
_SIGNAL_SEVERITY = {
    "error": SeverityNumber.SEVERITY_NUMBER_ERROR,
    "timeout": SeverityNumber.SEVERITY_NUMBER_ERROR,
    "out_of_memory": SeverityNumber.SEVERITY_NUMBER_FATAL,
    "throttle": SeverityNumber.SEVERITY_NUMBER_WARN,
    "init_error": SeverityNumber.SEVERITY_NUMBER_FATAL,
}
_VERSION = re.compile(r"\[([^\]]{1,128})\]")
_DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
_SCOPE = InstrumentationScope(name="shipper", version=__version__)
_SIGNAL_COUNTERS = {
    "cold_start": ("faas.coldstarts", "Cold starts.", None),
    "timeout": ("faas.timeouts", "Invocations that timed out.", None),
    "error": ("faas.errors", "Failed invocations.", "error_type"),
    "throttle": ("aws.lambda.throttles", "Throttling errors the function logged.", "error_code"),
    "out_of_memory": ("aws.lambda.out_of_memory", "Invocations killed for running out of memory.", None),
    "init_error": ("aws.lambda.init_errors", "Failed init phases.", "error_type"),
}
_Series = tuple[str, tuple[tuple[str, str], ...]]
"""(metric name, sorted attributes)"""


class OtlpSink:
    """Sends each batch as one OTLP logs request and one OTLP metrics request (see the module docstring)."""

    name = "otlp"

    def __init__(self, logs: HttpSink | None, metrics: HttpSink | None, region: str | None = None) -> None:
        self._logs = logs
        self._metrics = metrics
        self.region = region
        first = logs or metrics
        assert first is not None
        self.max_batch_events = first.max_batch_events
        self.max_batch_bytes = first.max_batch_bytes
        self._resources: dict[tuple[Any, ...], Resource] = {}

    def __repr__(self) -> str:
        return f"OtlpSink(logs={self._logs!r}, metrics={self._metrics!r})"

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        logged = [i for i, event in enumerate(events) if event.get("type") in _LOG_TYPES] if self._logs else []
        measured = [i for i, event in enumerate(events) if event.get("type") in _METRIC_TYPES] if self._metrics else []
        if logged and self._logs is not None:
            request = self.encode_logs([events[i] for i in logged])
            error = self._export(self._logs, request, ExportLogsServiceResponse, "rejected_log_records")
            if error is not None:
                error.failed = sorted(set(logged) | set(measured))
                raise error
        if measured and self._metrics is not None:
            request = self.encode_metrics([events[i] for i in measured])
            error = self._export(self._metrics, request, ExportMetricsServiceResponse, "rejected_data_points")
            if error is not None:
                error.failed = measured
                raise error

    def close(self) -> None:
        for transport_ in (self._logs, self._metrics):
            if transport_ is not None:
                transport_.close()

    def _export(self, target: HttpSink, request: Any, answer: type, rejected_field: str) -> SinkError | None:
        """POST one export request; the SinkError for its failure, or None."""
        reply = target.post(request.SerializeToString(), "application/x-protobuf")
        if not reply.ok:
            return target.refusal(reply, retryable=reply.status in RETRYABLE)
        response = answer()
        try:
            response.ParseFromString(reply.body)
        except Exception:  # protobuf raises DecodeError or others for a body that is not the answer
            # The request was accepted (2xx); an unreadable answer cannot say anything was refused.
            return None
        rejected = getattr(response.partial_success, rejected_field)
        if rejected > 0:
            message = response.partial_success.error_message or "no reason given"
            return SinkError(
                f"OTLP {target.url}: partial success, {rejected} {rejected_field.removeprefix('rejected_')} "
                f"rejected: {message[:300]}",
                retryable=False,
            )
        return None

    # --- encoding --------------------------------------------------------------------------------

    def encode_logs(self, events: Iterable[dict[str, Any]]) -> ExportLogsServiceRequest:
        observed = time.time_ns()
        per_resource: dict[tuple[Any, ...], list[LogRecord]] = {}
        for event in events:
            per_resource.setdefault(_resource_key(event), []).append(_log_record(event, observed))
        return ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(resource=self._resource(key), scope_logs=[ScopeLogs(scope=_SCOPE, log_records=records)])
                for key, records in per_resource.items()
            ]
        )

    def encode_metrics(self, events: Iterable[dict[str, Any]]) -> ExportMetricsServiceRequest:
        per_resource: dict[tuple[Any, ...], _Aggregate] = {}
        for event in events:
            key = _resource_key(event)
            aggregate = per_resource.get(key)
            if aggregate is None:
                aggregate = per_resource[key] = _Aggregate()
            aggregate.add(event)
        return ExportMetricsServiceRequest(
            resource_metrics=[
                ResourceMetrics(
                    resource=self._resource(key),
                    scope_metrics=[ScopeMetrics(scope=_SCOPE, metrics=aggregate.metrics())],
                )
                for key, aggregate in per_resource.items()
                if not aggregate.empty
            ]
        )

    def _resource(self, key: tuple[Any, ...]) -> Resource:
        resource = self._resources.get(key)
        if resource is None:
            if len(self._resources) >= 10_000:
                self._resources.clear()
            function, log_group, log_stream, account = key
            attributes: dict[str, Any] = {"cloud.provider": "aws", "cloud.platform": "aws_lambda"}
            if self.region:
                attributes["cloud.region"] = self.region
            if account:
                attributes["cloud.account.id"] = account
            if function:
                attributes["faas.name"] = function
                attributes["service.name"] = function
            if log_stream:
                version = _VERSION.search(log_stream)
                if version is not None:
                    attributes["faas.version"] = version.group(1)
                attributes["faas.instance"] = log_stream
                attributes["aws.log.stream.names"] = [log_stream]
            if log_group:
                attributes["aws.log.group.names"] = [log_group]
            resource = self._resources[key] = Resource(attributes=_attributes(attributes))
        return resource


class _Aggregate:
    """The metrics of one resource in one batch: sums, gauges and histograms keyed by name and attributes."""

    def __init__(self) -> None:
        self.sums: dict[_Series, list[Any]] = {}
        """series -> [value, monotonic, unit, description, first ms, last ms]"""
        self.gauges: dict[_Series, list[Any]] = {}
        """series -> [value, unit, last ms]"""
        self.histograms: dict[_Series, list[Any]] = {}
        """series -> [values, bounds, unit, description, first ms, last ms]"""
        self.sets: dict[_Series, list[Any]] = {}
        """series -> [distinct values, unit, last ms]"""

    @property
    def empty(self) -> bool:
        return not (self.sums or self.gauges or self.histograms or self.sets)

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        ms = event.get("timestamp") or 0
        if kind == "invocation":
            self.count(
                "faas.invocations", "Invocations (REPORT lines).", ms, {"faas.invocation.status": event.get("status")}
            )
            for field, name, scale, bounds, unit, doc in (
                ("duration_ms", "faas.invoke_duration", 1e-3, SECONDS_BOUNDS, "s", "Invocation duration."),
                ("init_duration_ms", "faas.init_duration", 1e-3, SECONDS_BOUNDS, "s", "Init duration of cold starts."),
                ("max_memory_used_mb", "faas.mem_usage", 1024.0 * 1024.0, BYTES_BOUNDS, "By", "Max memory used."),
            ):
                value = json_number(event.get(field), METRIC_VALUE)
                if value is not None:
                    self.observe(name, value * scale, bounds, unit, doc, ms, {})
        elif kind in _SIGNAL_COUNTERS:
            name, doc, attribute = _SIGNAL_COUNTERS[kind]
            attributes = {"error.type": event.get(attribute)} if attribute else {}
            self.count(name, doc, ms, attributes)
        elif kind == "metric":
            self.custom(event, ms)

    def custom(self, event: dict[str, Any], ms: int) -> None:
        name, value, unit = event.get("name"), json_number(event.get("value"), METRIC_VALUE), event.get("unit") or ""
        if not isinstance(name, str) or value is None:
            return
        if event.get("namespace"):
            name = f"{event['namespace']}.{name}"
        tags = given if isinstance(given := event.get("tags"), dict) else {}
        kind = event.get("metric_type")
        if kind == "count":
            rate = event.get("sample_rate")
            scaled = value / rate if isinstance(rate, int | float) and 0 < rate <= 1 else value
            self.count(name, "", ms, tags, scaled, unit=unit, monotonic=scaled >= 0)
        elif kind == "gauge" and event.get("delta"):
            self.count(name, "", ms, tags, value, unit=unit, monotonic=False)
        elif kind == "gauge":
            self.gauges[_series(name, tags)] = [value, unit, ms]
        elif kind == "set":
            entry = self.sets.setdefault(_series(name, tags), [set(), unit, ms])
            entry[0].add(value)
            entry[2] = max(entry[2], ms)
        else:
            self.observe(name, value, VALUE_BOUNDS, unit, "", ms, tags)

    def count(
        self,
        name: str,
        doc: str,
        ms: int,
        attributes: Mapping[str, Any],
        amount: float = 1.0,
        *,
        unit: str = "",
        monotonic: bool = True,
    ) -> None:
        entry = self.sums.get(key := _series(name, attributes))
        if entry is None:
            self.sums[key] = [amount, monotonic, unit, doc, ms, ms]
        else:
            entry[0] += amount
            entry[1] = entry[1] and monotonic and amount >= 0
            entry[4], entry[5] = min(entry[4], ms), max(entry[5], ms)

    def observe(
        self,
        name: str,
        value: float,
        bounds: tuple[float, ...],
        unit: str,
        doc: str,
        ms: int,
        attributes: Mapping[str, Any],
    ) -> None:
        entry = self.histograms.get(key := _series(name, attributes))
        if entry is None:
            self.histograms[key] = [[value], bounds, unit, doc, ms, ms]
        else:
            entry[0].append(value)
            entry[4], entry[5] = min(entry[4], ms), max(entry[5], ms)

    def metrics(self) -> list[Metric]:
        grouped: dict[str, Metric] = {}

        def metric(name: str, unit: str, doc: str) -> Metric:
            found = grouped.get(name)
            if found is None:
                found = grouped[name] = Metric(name=name, unit=unit, description=doc)
            return found

        for (name, attributes), (value, monotonic, unit, doc, first, last) in self.sums.items():
            point = NumberDataPoint(
                attributes=_attributes(dict(attributes)), start_time_unix_nano=_ns(first), time_unix_nano=_ns(last)
            )
            point.as_double = float(value)
            target = metric(name, unit, doc)
            target.sum.aggregation_temporality = _DELTA
            target.sum.is_monotonic = monotonic
            target.sum.data_points.append(point)
        for (name, attributes), (value, unit, last) in self.gauges.items():
            metric(name, unit, "").gauge.data_points.append(
                NumberDataPoint(attributes=_attributes(dict(attributes)), time_unix_nano=_ns(last), as_double=value)
            )
        for (name, attributes), (values, unit, last) in self.sets.items():
            metric(name, unit, "").gauge.data_points.append(
                NumberDataPoint(
                    attributes=_attributes(dict(attributes)), time_unix_nano=_ns(last), as_double=float(len(values))
                )
            )
        for (name, attributes), (values, bounds, unit, doc, first, last) in self.histograms.items():
            counts = [0] * (len(bounds) + 1)
            for value in values:
                counts[_bucket(bounds, value)] += 1
            target = metric(name, unit, doc)
            target.histogram.aggregation_temporality = _DELTA
            target.histogram.data_points.append(
                HistogramDataPoint(
                    attributes=_attributes(dict(attributes)),
                    start_time_unix_nano=_ns(first),
                    time_unix_nano=_ns(last),
                    count=len(values),
                    sum=math.fsum(values),
                    min=min(values),
                    max=max(values),
                    bucket_counts=counts,
                    explicit_bounds=bounds,
                )
            )
        return [m for m in grouped.values() if m.WhichOneof("data") is not None]


def _bucket(bounds: tuple[float, ...], value: float) -> int:
    """The index of the bucket `value` falls in: bucket i holds (bounds[i-1], bounds[i]]."""
    for index, bound in enumerate(bounds):
        if value <= bound:
            return index
    return len(bounds)


def _series(name: str, attributes: Mapping[str, Any]) -> _Series:
    return name, tuple(sorted((str(k), "" if v is None else str(v)) for k, v in attributes.items()))


def _ns(ms: int) -> int:
    return max(0, int(ms)) * 1_000_000


def _resource_key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    return event.get("function"), event.get("log_group"), event.get("log_stream"), event.get("account")


def _log_record(event: dict[str, Any], observed_ns: int) -> LogRecord:
    kind = event.get("type")
    attributes: dict[str, Any] = {}
    if event.get("request_id"):
        attributes["faas.invocation_id"] = event["request_id"]
    if event.get("event_id"):
        attributes["log.record.uid"] = event["event_id"]
    record = LogRecord(time_unix_nano=_ns(event.get("timestamp") or 0), observed_time_unix_nano=observed_ns)
    if kind == "log":
        level = event.get("level")
        if isinstance(level, str):
            record.severity_text = level
            record.severity_number = _SEVERITY.get(level.lower(), SeverityNumber.SEVERITY_NUMBER_UNSPECIFIED)
        fields = event.get("fields")
        if isinstance(fields, dict):
            attributes.update(fields)
        record.body.string_value = str(event.get("message", ""))
    else:
        record.event_name = f"aws.lambda.{kind}"
        record.severity_number = _SIGNAL_SEVERITY.get(str(kind), SeverityNumber.SEVERITY_NUMBER_ERROR)
        record.severity_text = "ERROR" if record.severity_number >= SeverityNumber.SEVERITY_NUMBER_ERROR else "WARN"
        for field, value in event.items():
            if field == "error_type":
                attributes["error.type"] = value
            elif field not in ("type", "timestamp", "request_id", "event_id", "message") and value is not None:
                attributes[f"aws.lambda.{field}"] = value
        record.body.string_value = str(event.get("message") or kind)
    record.attributes.extend(_attributes(attributes))
    return record


def _attributes(values: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=str(key), value=_any_value(value, 0)) for key, value in values.items() if value is not None]


def _any_value(value: Any, depth: int) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if depth < MAX_ATTRIBUTE_DEPTH and isinstance(value, list | tuple):
        any_value = AnyValue()
        any_value.array_value.values.extend(_any_value(item, depth + 1) for item in value)
        return any_value
    if depth < MAX_ATTRIBUTE_DEPTH and isinstance(value, dict):
        any_value = AnyValue()
        any_value.kvlist_value.values.extend(
            KeyValue(key=str(key), value=_any_value(item, depth + 1)) for key, item in value.items()
        )
        return any_value
    if value is None:
        return AnyValue()
    if isinstance(value, int):  # past 64 bits
        return AnyValue(string_value=str(value))
    try:
        return AnyValue(string_value=orjson.dumps(value, default=str).decode())
    except TypeError:  # nested deeper than JSON encoding goes
        return AnyValue(string_value=f"[{type(value).__name__} nested too deep to encode]")


_SIGNALS = ("logs", "metrics")


def _signals(key: str, value: Any) -> tuple[str, ...]:
    wanted = tuple(item.strip() for item in text(key, value).split(",") if item.strip())
    if not wanted or any(item not in _SIGNALS for item in wanted):
        raise ConfigError(f"OTLP sink option {key} must be logs, metrics or logs,metrics; got {value!r}")
    return wanted


def build(spec: str, options: Mapping[str, Any]) -> OtlpSink:
    """An OtlpSink from `otlp:URL` and options: signals, region, and those of the HTTP sink (gzip defaults on)."""
    base = spec.removeprefix("otlp:").rstrip("/")
    for suffix in ("/v1/logs", "/v1/metrics"):
        base = base.removesuffix(suffix)
    if not base:
        raise ConfigError("OTLP sink needs the collector's URL: otlp:http://HOST:4318")
    own = {"signals": _signals, "region": text}
    defaults = {"gzip": True}
    logs = metrics = None
    values: dict[str, Any] = {}
    wanted = _signals("signals", options["signals"]) if "signals" in options else _SIGNALS
    if "logs" in wanted:
        logs, values = transport("OTLP", f"{base}/v1/logs", options, own, defaults)
    if "metrics" in wanted:
        metrics, values = transport("OTLP", f"{base}/v1/metrics", options, own, defaults)
    region = values.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return OtlpSink(logs, metrics, region)
