"""The CloudWatch metric model both metric sinks send (`cloudwatch`, PutMetricData; `cloudwatch:emf`).

Which events yield data points (invocation statistics, signal counts, custom metrics), their units
and dimensions, and what CloudWatch cannot take (those events fail for good). Which tags identify a
request and what a unit word means are shared with Prometheus (shipper.metric_rules). No boto3 here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard

from shipper.metric_rules import PER_SECOND, identifies_request, unit_of
from shipper.sinks.packing import Outcome

__all__ = ["DEFAULT_NAMESPACE", "Samples", "Series", "cloudwatch_unit", "collect_metrics", "is_namespace"]

DEFAULT_NAMESPACE = "Shipper"
MAX_DIMENSIONS = 30
MAX_DATA_AGE_S = 14 * 24 * 3600  # CloudWatch takes data points up to two weeks old ...
MAX_DATA_AHEAD_S = 2 * 3600  # ... and up to two hours ahead.
_VALUE_LIMIT = 2.0**360  # CloudWatch rejects values outside ±2^360 (and non-zero ones closer to 0 than 2^-360).

_RATE_UNITS = frozenset(
    {"Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits"}
    | {"Terabits", "Count"}
)
_DEFAULT_UNITS = {"count": "Count", "timer": "Milliseconds"}

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
    known = unit_of(base) if key else None
    if per:
        if rate in PER_SECOND and known is not None and known.cloudwatch in _RATE_UNITS:
            return f"{known.cloudwatch}/Second"
        return "None"
    return (known and known.cloudwatch) or "None"


def _is_name(text: Any, limit: int) -> TypeGuard[str]:
    """Whether CloudWatch takes `text` as a name or dimension value: printable ASCII, not blank, not too long."""
    if not isinstance(text, str):
        return False
    return 0 < len(text) <= limit and text.isascii() and text.isprintable() and not text.isspace()


def is_namespace(text: Any) -> TypeGuard[str]:
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
        and not identifies_request(name)
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


_Point = tuple[str, str, str, tuple[tuple[str, str], ...], Any]
"""(namespace, name, unit, dimensions, value): the value is checked by `collect_metrics`."""


def _points(event: Mapping[str, Any], namespace: str) -> list[_Point]:
    """(namespace, name, unit, dimensions, value) for each data point an event yields; none for most events."""
    event_type = event.get("type")
    if event_type == "metric":
        if event.get("metric_type") == "set":  # a set counts distinct members: CloudWatch has no such statistic
            return []
        name, value = event.get("name"), event.get("value")
        namespace = event.get("namespace") or namespace
        if not _is_name(name, 255):
            raise _Unrepresentable(f"metric name {name!r} is not a valid CloudWatch metric name")
        if not is_namespace(namespace):
            raise _Unrepresentable(f"namespace {namespace!r} is not a valid CloudWatch namespace")
        rate = event.get("sample_rate")
        if event.get("metric_type") == "count" and _valid_value(value) and isinstance(rate, float) and 0 < rate < 1:
            value /= rate  # a sampled counter stands for 1/rate as many
        dimensions = _dimensions(event.get("tags") or {}, event.get("request_id"))
        return [(namespace, name, cloudwatch_unit(event.get("unit"), event.get("metric_type")), dimensions, value)]
    count_name = _EVENT_COUNTS.get(event_type) if isinstance(event_type, str) else None
    if count_name is None:
        return []
    function = event.get("function")
    dimensions = (("FunctionName", function),) if _is_name(function, 1024) else ()
    points: list[_Point] = [(namespace, count_name, "Count", dimensions, 1)]
    if event_type == "invocation":
        points.extend(
            (namespace, name, unit, dimensions, event[key])
            for key, name, unit in _INVOCATION_VALUES
            if event.get(key) is not None
        )
    return points


def _valid_value(value: Any) -> TypeGuard[int | float]:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    magnitude = abs(value)
    # Comparisons, not math.isfinite: they are exact for an int of any size, and NaN and inf fail them.
    return magnitude == 0 or 1 / _VALUE_LIMIT <= magnitude <= _VALUE_LIMIT


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
