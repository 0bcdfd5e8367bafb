"""Datadog sink (`datadog`): logs to the logs intake v2 and metrics to the series API, as the Datadog
Forwarder does, so its users keep their log facets and dashboards.

    site=datadoghq.com     (default; datadoghq.eu, us3.datadoghq.com, us5.datadoghq.com, ap1.datadoghq.com, ...)
    api_key=REFERENCE      (required) env:NAME, ssm:/path or secretsmanager:name; sent as DD-API-KEY
    logs_url=, metrics_url=  other endpoints (a proxy, a test server); metrics_url=none sends no metrics
    tags=env:prod,team:x   added to every log's ddtags and every series' tags
    service=NAME           default: the function name
    region=REGION          for the function ARN in `host`; default AWS_REGION

Logs (every event but `metric`): one JSON object per event with the fields the Forwarder sends:
`ddsource` (lambda), `ddtags` (functionname, region, account_id and `tags`), `service`, `host` (the
function ARN), `message`, `status` (the level), `timestamp`, `aws.awslogs` {logGroup, logStream,
owner}, `lambda` {arn, request_id}, and the structured fields of a JSON log line (top level; the
reserved ones above win). The intake's limits are enforced before sending: at most 1,000 items and
5,000,000 bytes (uncompressed) per request, so a batch is split into as many requests as it needs;
an item over `max_item_bytes` (1,000,000: the intake's 1 MB per log) is dead-lettered with the
reason, never cut or dropped.

Metrics (series API v1, aggregated per batch, one point per series per send): the Forwarder's
enhanced metrics aws.lambda.enhanced.invocations, .errors, .timeouts, .out_of_memory (counts) and
.duration, .billed_duration, .init_duration (seconds), .max_memory_used (MB) as gauges of the batch's
mean; custom metrics (counts as counts, gauges last value, sets distinct values, timers, histograms
and distributions the mean), tagged functionname, region, account_id and their own tags.

Answers: 408, 429 and 5xx are retried (Retry-After honoured), 413 splits the batch, 400, 401 and 403
are not. Logs are sent before metrics; when a metrics request fails, only the events that made metrics
are sent again, so an invocation's or signal's log may arrive twice: at least once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from shipper.bounds import METRIC_VALUE, json_number
from shipper.errors import ConfigError
from shipper.sinks.backend import oversized, positive, text, transport
from shipper.sinks.http import HttpSink

__all__ = ["DatadogSink", "build"]

MAX_ITEMS = 1000
MAX_PAYLOAD_BYTES = 5_000_000
MAX_ITEM_BYTES = 1_000_000
SERIES_PER_REQUEST = 1000
_SITE = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*\.[a-z]{2,}")
_RESERVED = ("ddsource", "ddtags", "service", "host", "message", "status", "timestamp", "aws", "lambda")
_ENHANCED_COUNTS = {
    "invocation": "aws.lambda.enhanced.invocations",
    "error": "aws.lambda.enhanced.errors",
    "timeout": "aws.lambda.enhanced.timeouts",
    "out_of_memory": "aws.lambda.enhanced.out_of_memory",
}
_ENHANCED_GAUGES = (
    ("duration_ms", "aws.lambda.enhanced.duration", 1e-3),
    ("billed_duration_ms", "aws.lambda.enhanced.billed_duration", 1e-3),
    ("init_duration_ms", "aws.lambda.enhanced.init_duration", 1e-3),
    ("max_memory_used_mb", "aws.lambda.enhanced.max_memory_used", 1.0),
)


_Count = Callable[[str, list[str], float, int], None]
"""Adds (name, tags, amount, ms) to a count series of the batch."""


class _Gauge(Protocol):
    """Adds one value to a gauge series of the batch: its last value, its mean or its distinct values."""

    def __call__(
        self, name: str, tags: list[str], value: float, ms: int, *, mean: bool = ..., distinct: bool = ...
    ) -> None: ...


class DatadogSink:
    """Logs intake v2 and series API v1 (see the module docstring)."""

    name = "datadog"

    def __init__(
        self,
        logs: HttpSink,
        metrics: HttpSink | None,
        *,
        tags: Sequence[str] = (),
        service: str | None = None,
        region: str | None = None,
        max_item_bytes: int = MAX_ITEM_BYTES,
    ) -> None:
        self._logs = logs
        self._metrics = metrics
        self.tags = tuple(tags)
        self.service = service
        self.region = region
        self.max_item_bytes = min(max_item_bytes, MAX_PAYLOAD_BYTES)
        self.max_batch_events = min(logs.max_batch_events, MAX_ITEMS)
        self.max_batch_bytes = logs.max_batch_bytes

    def __repr__(self) -> str:
        return f"DatadogSink(logs={self._logs.url!r}, metrics={None if self._metrics is None else self._metrics.url!r})"

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        measured = [i for i, e in enumerate(events) if e.get("type") != "log"] if self._metrics is not None else []
        items: list[tuple[int, bytes]] = []
        too_big: list[int] = []
        for index, event in enumerate(events):
            if event.get("type") == "metric":
                continue
            item = orjson.dumps(self.log_item(event), default=str, option=orjson.OPT_NON_STR_KEYS)
            if len(item) > self.max_item_bytes:
                too_big.append(index)
            else:
                items.append((index, item))
        for start, end in _requests(items):
            chunk = items[start:end]
            reply = self._logs.post(b"[" + b",".join(item for _, item in chunk) + b"]", "application/json")
            if not reply.ok:
                error = self._logs.refusal(reply)
                error.failed = sorted({index for index, _ in items[start:]} | set(measured) | set(too_big))
                raise error
        if measured and self._metrics is not None:
            self._send_series([events[i] for i in measured], measured)
        if too_big:
            raise oversized("Datadog logs intake", too_big, self.max_item_bytes, "log items")

    def close(self) -> None:
        self._logs.close()
        if self._metrics is not None:
            self._metrics.close()

    def _send_series(self, events: Sequence[dict[str, Any]], indices: list[int]) -> None:
        assert self._metrics is not None
        series = self.series(events)
        for start in range(0, len(series), SERIES_PER_REQUEST):
            reply = self._metrics.post(
                orjson.dumps({"series": series[start : start + SERIES_PER_REQUEST]}), "application/json"
            )
            if not reply.ok:
                error = self._metrics.refusal(reply)
                error.failed = indices
                raise error

    def _arn(self, event: Mapping[str, Any]) -> str | None:
        function, account = event.get("function"), event.get("account")
        if not function or not account or not self.region:
            return None
        return f"arn:aws:lambda:{self.region}:{account}:function:{function}"

    def _tags(self, event: Mapping[str, Any]) -> list[str]:
        tags = [f"functionname:{event['function']}"] if event.get("function") else []
        if self.region:
            tags.append(f"region:{self.region}")
        if event.get("account"):
            tags.append(f"account_id:{event['account']}")
        return tags + list(self.tags)

    def log_item(self, event: dict[str, Any]) -> dict[str, Any]:
        """The intake v2 item of one event."""
        kind = event.get("type")
        fields = own if kind == "log" and isinstance(own := event.get("fields"), dict) else {}
        if kind != "log":  # the event's own fields, as the Forwarder's parsed REPORT lines carry
            fields = {
                "lambda_event": {
                    k: v for k, v in event.items() if k not in ("timestamp", "function", "log_group", "log_stream")
                }
            }
        arn = self._arn(event)
        item: dict[str, Any] = {str(k): v for k, v in fields.items() if k not in _RESERVED}
        item |= {
            "ddsource": "lambda",
            "ddtags": ",".join(self._tags(event)),
            "service": self.service or event.get("function") or "lambda",
            "host": arn or event.get("function") or "",
            "message": event.get("message") or (kind if kind != "log" else ""),
            "timestamp": event.get("timestamp"),
            "aws": {
                "awslogs": {
                    "logGroup": event.get("log_group"),
                    "logStream": event.get("log_stream"),
                    "owner": event.get("account"),
                }
            },
            "lambda": {"arn": arn, "request_id": event.get("request_id")},
        }
        level = event.get("level") if kind == "log" else ("warn" if kind == "throttle" else "error")
        if kind in ("invocation", "cold_start"):
            level = "info"
        if level:
            item["status"] = str(level)
        return item

    def series(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Series API v1 entries for a batch: one point per metric and tag set."""
        counts: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        gauges: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        """key -> [sum, n, last value, last ms, distinct values or None, whether the mean is sent]"""

        def count(name: str, tags: list[str], amount: float, ms: int) -> None:
            entry = counts.setdefault((name, tuple(tags)), [0.0, ms])
            entry[0] += amount
            entry[1] = max(entry[1], ms)

        def gauge(
            name: str, tags: list[str], value: float, ms: int, *, mean: bool = True, distinct: bool = False
        ) -> None:
            entry = gauges.setdefault((name, tuple(tags)), [0.0, 0, value, ms, set() if distinct else None, mean])
            entry[0] += value
            entry[1] += 1
            if ms >= entry[3]:
                entry[2], entry[3] = value, ms
            if entry[4] is not None:
                entry[4].add(value)

        for event in events:
            kind, ms, tags = event.get("type"), event.get("timestamp") or 0, self._tags(event)
            if kind in _ENHANCED_COUNTS:
                count(_ENHANCED_COUNTS[kind], tags, 1.0, ms)
            if kind == "invocation":
                for field, name, scale in _ENHANCED_GAUGES:
                    value = json_number(event.get(field), METRIC_VALUE)
                    if value is not None:
                        gauge(name, tags, value * scale, ms)
            elif kind == "metric":
                self._custom(event, tags, ms, count, gauge)
        series = []
        for (name, series_tags), (total, ms) in counts.items():
            series.append({"metric": name, "type": "count", "points": [[ms // 1000, total]], "tags": list(series_tags)})
        for (name, series_tags), (total, n, last, ms, distinct, mean) in gauges.items():
            value = len(distinct) if distinct is not None else (total / n if mean else last)
            series.append({"metric": name, "type": "gauge", "points": [[ms // 1000, value]], "tags": list(series_tags)})
        return series

    @staticmethod
    def _custom(event: dict[str, Any], tags: list[str], ms: int, count: _Count, gauge: _Gauge) -> None:
        name, value = event.get("name"), json_number(event.get("value"), METRIC_VALUE)
        if not isinstance(name, str) or value is None:
            return
        if event.get("namespace"):
            name = f"{event['namespace']}.{name}"
        own = given if isinstance(given := event.get("tags"), dict) else {}
        tags = tags + [f"{k}:{v}" if v != "" else str(k) for k, v in own.items()]
        kind = event.get("metric_type")
        if kind == "count":
            rate = event.get("sample_rate")
            count(name, tags, value / rate if isinstance(rate, int | float) and 0 < rate <= 1 else value, ms)
        elif kind == "gauge":
            gauge(name, tags, value, ms, mean=False)
        elif kind == "set":
            gauge(name, tags, value, ms, distinct=True)
        else:
            gauge(name, tags, value, ms)


def _requests(items: Sequence[tuple[int, bytes]]) -> list[tuple[int, int]]:
    """[start, end) ranges of `items` that each fit one intake request (items and bytes)."""
    ranges = []
    start, size = 0, 2  # the brackets
    for position, (_, item) in enumerate(items):
        extra = len(item) + (1 if position > start else 0)
        if position > start and (position - start >= MAX_ITEMS or size + extra > MAX_PAYLOAD_BYTES):
            ranges.append((start, position))
            start, size, extra = position, 2, len(item)
        size += extra
    if start < len(items):
        ranges.append((start, len(items)))
    return ranges


def _site(key: str, value: Any) -> str:
    site = text(key, value).strip().lower()
    if not _SITE.fullmatch(site):
        raise ConfigError(f"Datadog sink option {key} must be a Datadog site such as datadoghq.eu, got {value!r}")
    return site


def _tag_list(key: str, value: Any) -> tuple[str, ...]:
    return tuple(tag.strip() for tag in text(key, value).split(",") if tag.strip())


def build(spec: str, options: Mapping[str, Any]) -> DatadogSink:
    """A DatadogSink from `datadog` and options (see the module docstring; the HTTP sink's options apply)."""
    if spec != "datadog":
        raise ConfigError(f"the Datadog sink is `datadog` with site=SITE and api_key=REFERENCE, got {spec!r}")
    if "api_key" not in options:
        raise ConfigError("Datadog sink needs api_key=REFERENCE (env:DD_API_KEY, ssm:/path or secretsmanager:name)")
    own = {
        "site": _site,
        "logs_url": text,
        "metrics_url": text,
        "tags": _tag_list,
        "service": text,
        "region": text,
        "max_item_bytes": positive(int),
    }
    http = {"api_key_header": "DD-API-KEY", "api_key_scheme": "", "max_batch_events": MAX_ITEMS}
    logs_options = {k: v for k, v in options.items() if k != "metrics_url"}
    site = _site("site", options.get("site", "datadoghq.com"))
    logs_url = str(options.get("logs_url") or f"https://http-intake.logs.{site}/api/v2/logs")
    logs, values = transport("Datadog", logs_url, logs_options, own, http)
    metrics_url = str(options.get("metrics_url") or f"https://api.{site}/api/v1/series")
    metrics = None
    if metrics_url != "none":
        metrics, _ = transport("Datadog", metrics_url, {k: v for k, v in options.items() if k != "logs_url"}, own, http)
    for key in ("site", "logs_url", "metrics_url"):
        values.pop(key, None)
    values.setdefault("region", os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    return DatadogSink(logs, metrics, **values)
