"""Custom metrics (contract `metric` events) as Prometheus series, kept by a collector with hard limits.

    count                          -> counter   value / sample_rate, scaled to the base unit
    gauge                          -> gauge     set, or adjusted when the event is a StatsD delta (+N / -N)
    timer, histogram, distribution -> histogram
    set                            -> gauge     distinct values seen since the previous scrape (each scrape
                                                starts a new window)

Every series is labelled `function` plus the allow-listed tags (a tag absent on an event is an empty
label, which Prometheus treats as no label). Label values cannot explode: each metric takes at most
`max_series` label sets, there are at most `max_metrics` names and MAX_TOTAL_SERIES series in all,
and a set keeps at most MAX_SET_MEMBERS values a window. A sample over a limit, or one that cannot be
a Prometheus sample (a name clash, a negative count, a value that is not finite, or one that would
take its series past the float range: `overflow`), is dropped and counted in
`shipper_metric_samples_dropped_total{metric,reason}`; `metric` is the name only once it is a series
of this collector, else empty, so that counter cannot explode either.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from shipper.bounds import METRIC_VALUE, json_number
from shipper.telemetry.config import TelemetryConfig
from shipper.telemetry.naming import label_name, label_value, metric_name

MAX_TOTAL_SERIES = 100_000
MAX_SET_MEMBERS = 10_000

SECONDS_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SECONDS_BUCKETS += (30.0, 60.0, 120.0, 300.0, 600.0, 900.0)
"""Lambda-sized durations: 1 ms to the 15-minute timeout."""
VALUE_BUCKETS = tuple(m * 10.0**e for e in range(-3, 7) for m in (1.0, 2.5, 5.0))
"""Any other histogram: 1-2.5-5 steps from 0.001 to 5,000,000."""

_KINDS = {
    "count": "counter",
    "gauge": "gauge",
    "timer": "histogram",
    "histogram": "histogram",
    "distribution": "histogram",
    "set": "set",
}

_PROMETHEUS_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "set": "gauge"}

_MAX_CACHED_NAMES = 10_000
_UNKNOWN = object()

Drop = Callable[[str, str], None]
"""Counts one dropped sample: (metric name or "", reason)."""


class _Family:
    __slots__ = ("buckets", "help", "kind", "series")

    def __init__(self, kind: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.kind = kind
        self.help = help_text
        self.buckets = buckets
        self.series: dict[tuple[str, ...], Any] = {}
        """label values -> float (counter, gauge), set of members (set), [bucket counts..., sum, count] (histogram)."""


class CustomMetrics:
    """A prometheus_client collector of the custom metrics observed so far (register it in a registry)."""

    def __init__(self, config: TelemetryConfig, drop: Drop) -> None:
        self._prefix = config.prefix
        self._max_series = config.max_series
        self._max_metrics = config.max_metrics
        self._drop = drop
        names: dict[str, str] = {}
        for tag in config.labels:
            names.setdefault(label_name(tag), tag)  # two tags with one label name: the first listed wins
        self._tags = tuple(names.values())
        self.label_names = ("function", *names)
        self._families: dict[str, _Family] = {}
        self._sample_names: set[str] = set()
        self._total_series = 0
        self._names: dict[tuple[Any, Any, str | None], Any] = {}
        self._lock = threading.Lock()

    def observe(self, event: dict[str, Any]) -> None:
        """Add one metric event to its series."""
        kind = _KINDS.get(event.get("metric_type", ""))
        value = json_number(event.get("value"), METRIC_VALUE)
        named = self._name(event.get("name"), event.get("unit"), kind)
        with self._lock:
            if kind is None or named is None:
                self._drop("", "invalid_name" if kind else "unknown_type")
                return
            name, factor = named
            if value is None:
                self._drop(name if name in self._families else "", "not_finite")
                return
            family = self._family(name, kind, event)
            if family is None:
                return
            labels = self._label_values(event)
            series = family.series
            if labels not in series:
                if len(series) >= self._max_series or self._total_series >= MAX_TOTAL_SERIES:
                    self._drop(name, "series_limit")
                    return
                series[labels] = _new_series(family)
                self._total_series += 1
            if kind == "counter":
                amount = value * factor / (event.get("sample_rate") or 1.0)
                if amount < 0:
                    self._drop(name, "negative_count")
                    return
                total = series[labels] + amount
                if _overflows(total, name, self._drop):
                    return
                series[labels] = total
            elif kind == "gauge":
                level = series[labels] + value * factor if event.get("delta") else value * factor
                if _overflows(level, name, self._drop):
                    return
                series[labels] = level
            elif kind == "histogram":
                state = series[labels]
                scaled = value * factor
                if _overflows(state[-2] + scaled, name, self._drop):
                    return
                state[bisect_left(family.buckets, scaled)] += 1
                state[-2] += scaled
                state[-1] += 1
            elif len(series[labels]) < MAX_SET_MEMBERS or value in series[labels]:
                series[labels].add(value)
            else:
                self._drop(name, "set_member_limit")

    def _name(self, name: Any, unit: Any, kind: str | None) -> tuple[str, float] | None:
        """`metric_name` of an event's name, unit and kind, remembered (the cache is emptied when full)."""
        key = (name, unit, kind)
        named = self._names.get(key, _UNKNOWN)
        if named is _UNKNOWN:
            if len(self._names) >= _MAX_CACHED_NAMES:
                self._names.clear()
            prometheus_type = _PROMETHEUS_TYPES.get(kind or "", "")
            named = self._names[key] = metric_name(self._prefix, str(name or ""), unit, prometheus_type)
        return named

    def _family(self, name: str, kind: str, event: dict[str, Any]) -> _Family | None:
        family = self._families.get(name)
        if family is not None:
            if family.kind != kind:
                self._drop(name, "type_conflict")
                return None
            return family
        if len(self._families) >= self._max_metrics:
            self._drop("", "metric_limit")
            return None
        samples = _sample_names(name, kind)
        if not samples.isdisjoint(self._sample_names):
            self._drop("", "type_conflict")
            return None
        buckets = SECONDS_BUCKETS if name.endswith("_seconds") else VALUE_BUCKETS
        help_text = f"{event.get('metric_type')} metric {str(event.get('name'))[:200]!r} from application log lines"
        if kind == "set":
            help_text = f"Distinct values since the previous scrape of set metric {str(event.get('name'))[:200]!r}"
        family = self._families[name] = _Family(kind, help_text, buckets if kind == "histogram" else ())
        self._sample_names |= samples
        return family

    def _label_values(self, event: dict[str, Any]) -> tuple[str, ...]:
        tags = event.get("tags") or {}
        request_id = event.get("request_id")
        values = [label_value(event.get("function"))]
        for tag in self._tags:
            value = tags.get(tag)
            values.append("" if value is None or value == request_id else label_value(value))
        return tuple(values)

    def collect(self) -> list[Metric]:
        """The series as metric families; a set's window closes here (its distinct values start again)."""
        metrics: list[Metric] = []
        with self._lock:
            for name, family in self._families.items():
                if family.kind == "histogram":
                    histogram = HistogramMetricFamily(name, family.help, labels=self.label_names)
                    for labels, state in family.series.items():
                        histogram.add_metric(labels, _cumulative(family.buckets, state), state[-2])
                    metrics.append(histogram)
                    continue
                metric_class = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
                metric = metric_class(name, family.help, labels=self.label_names)
                for labels, value in family.series.items():
                    if family.kind == "set":
                        metric.add_metric(labels, float(len(value)))
                        value.clear()
                    else:
                        metric.add_metric(labels, value)
                metrics.append(metric)
        return metrics


def _overflows(result: float, name: str, drop: Drop) -> bool:
    """True, and the sample dropped as `overflow`, when adding it took a series past the float range."""
    if math.isfinite(result):
        return False
    drop(name, "overflow")
    return True


def _new_series(family: _Family) -> Any:
    if family.kind == "histogram":
        return [0] * (len(family.buckets) + 1) + [0.0, 0]
    return set() if family.kind == "set" else 0.0


def _cumulative(buckets: tuple[float, ...], state: list[Any]) -> list[tuple[str, float]]:
    """Prometheus buckets (upper bound, observations at or below it) from per-bucket counts."""
    out = []
    running = 0
    for bound, count in zip((*buckets, math.inf), state, strict=False):
        running += count
        out.append((floatToGoString(bound), running))
    return out


def _sample_names(name: str, kind: str) -> set[str]:
    """Every sample name a family exposes (two families may not share one)."""
    if kind == "counter":
        base = name.removesuffix("_total")
        return {base, name, f"{base}_created"}
    if kind == "histogram":
        return {name, f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
    return {name}
