"""The events of a run in time buckets, per function and per custom metric: the charts of the HTML report.

    Timeline.add(events) ... -> Timeline.view(columns, metric_names) -> series over the run's time window

Buckets are aligned on the epoch and `width_ms` wide. The width starts at one second and doubles,
merging neighbours, whenever more than a fixed number of buckets are held, so memory stays bounded
(a few MB) however long the run and however many events it has. Per invocation event it costs a few
dict operations; log lines cost one comparison.

Timestamps from logs are hostile: one outside 2014..2099 is counted and left out, and a few far from
the rest do not stretch the window shown (see `view`).
"""

from __future__ import annotations

import math
from typing import Any

from shipper.bounds import METRIC_VALUE, json_number
from shipper.report import UNKNOWN_FUNCTION

EARLIEST_MS = 1_388_534_400_000
"""2014-01-01T00:00Z: before CloudWatch Logs and Lambda, no Lambda log event has a time."""
LATEST_MS = 4_102_444_800_000
"""2100-01-01T00:00Z."""
FIRST_WIDTH_MS = 1000
MAX_FUNCTION_BUCKETS = 1 << 15
MAX_METRIC_BUCKETS = 1 << 14
MAX_FUNCTIONS = 1000
"""Functions with buckets of their own; events of the ones after that are counted in `not_kept`."""
MAX_METRICS = 1000
TRIM = 0.001
"""The share of events at each end a window may leave out when the rest spans far less time (see `view`)."""

FUNCTION_SERIES = ("invocations", "cold_starts", "errors", "timeouts", "out_of_memory", "throttles")
_COLUMN = {"invocation": 0, "error": 2, "timeout": 3, "out_of_memory": 4, "throttle": 5}


class _Buckets:
    """name -> bucket number -> a row of numbers, at one width for every name, held to `limit` rows in all."""

    __slots__ = ("limit", "max_names", "names", "not_kept", "rows", "size", "width")

    def __init__(self, limit: int, max_names: int, size: int) -> None:
        self.names: dict[str, dict[int, list[Any]]] = {}
        self.width = FIRST_WIDTH_MS
        self.limit = limit
        self.max_names = max_names
        self.rows = 0
        self.size = size
        self.not_kept = 0

    def row(self, name: str, timestamp: int) -> list[Any] | None:
        buckets = self.names.get(name)
        if buckets is None:
            if len(self.names) >= self.max_names:
                self.not_kept += 1
                return None
            buckets = self.names[name] = {}
        key = timestamp // self.width
        row = buckets.get(key)
        if row is None:
            row = buckets[key] = [0] * self.size
            self.rows += 1
            if self.rows > self.limit:
                self._coarsen()
                row = self.names[name][timestamp // self.width]
        return row

    def _coarsen(self) -> None:
        while self.rows > self.limit and self.width < LATEST_MS - EARLIEST_MS:
            self.width *= 2
            self.rows = 0
            for name, buckets in self.names.items():
                merged: dict[int, list[Any]] = {}
                for key, row in buckets.items():
                    into = merged.get(key // 2)
                    if into is None:
                        merged[key // 2] = row
                    else:
                        for i, value in enumerate(row):
                            into[i] += value
                self.names[name] = merged
                self.rows += len(merged)


class Timeline:
    """Counts per function (invocations, cold starts, errors, timeouts, OOM kills, throttles) and
    custom metric values (count and sum) per time bucket."""

    def __init__(self) -> None:
        self.functions = _Buckets(MAX_FUNCTION_BUCKETS, MAX_FUNCTIONS, len(FUNCTION_SERIES))
        self.metrics = _Buckets(MAX_METRIC_BUCKETS, MAX_METRICS, 2)
        self.out_of_range = 0

    def add(self, events: list[dict[str, Any]]) -> None:
        functions, metrics = self.functions, self.metrics
        for event in events:
            kind = event["type"]
            if kind == "log":
                continue
            timestamp = event.get("timestamp")
            if type(timestamp) is not int or not EARLIEST_MS <= timestamp < LATEST_MS:
                if kind in _COLUMN or kind == "metric":
                    self.out_of_range += 1
                continue
            column = _COLUMN.get(kind)
            if column is not None:
                name = event.get("function") or event.get("log_group") or UNKNOWN_FUNCTION
                # the common case inline: a bucket that exists already
                buckets = functions.names.get(name)
                row = None if buckets is None else buckets.get(timestamp // functions.width)
                if row is None:
                    row = functions.row(name, timestamp)
                    if row is None:
                        continue
                row[column] += 1
                if column == 0 and event.get("cold_start"):
                    row[1] += 1
            elif kind == "metric":
                name, value = event.get("name"), json_number(event.get("value"), METRIC_VALUE)
                if type(name) is not str or value is None:
                    continue
                buckets = metrics.names.get(name)
                row = None if buckets is None else buckets.get(timestamp // metrics.width)
                if row is None:
                    row = metrics.row(name, timestamp)
                    if row is None:
                        continue
                row[0] += 1
                row[1] += value

    def view(self, columns: int = 120, metric_names: list[str] | None = None) -> dict[str, Any]:
        """The series of every function (and of `metric_names`) in at most `columns` buckets over one window.

        The window spans every event, unless the middle 99.8% of them (TRIM at each end) spans less than a
        quarter of that: then those outliers are left out of the series and counted in `outside_window`.
        """
        source = self.functions if self.functions.names else self.metrics
        totals: dict[int, int] = {}
        for buckets in source.names.values():
            for key, row in buckets.items():
                totals[key] = totals.get(key, 0) + (row[0] if source is self.metrics else sum(row))
        view: dict[str, Any] = {
            "out_of_range": self.out_of_range,
            "functions_not_kept": self.functions.not_kept,
            "functions": {},
            "metrics": {},
            "outside_window": 0,
        }
        if not totals:
            view.update(start_ms=None, bucket_ms=None, columns=0)
            return view
        first, last = _window(totals, source.width)
        # Display buckets are the stored ones merged 2^shift at a time: exact, as both are aligned on the epoch.
        shift = 0
        while (last // source.width >> shift) - (first // source.width >> shift) + 1 > columns:
            shift += 1
        bucket_ms = source.width << shift
        start = first // bucket_ms
        count = last // bucket_ms - start + 1
        view.update(start_ms=start * bucket_ms, bucket_ms=bucket_ms, columns=count)
        outside = 0
        for name, buckets in self.functions.names.items():
            series, left_out = _rebin(buckets, self.functions.width, bucket_ms, start, count)
            outside += sum(sum(row) for row in left_out)
            view["functions"][name] = dict(zip(FUNCTION_SERIES, series, strict=True))
        # Metrics held at a coarser width than the functions' are shown in buckets of their own width.
        metric_ms = max(bucket_ms, self.metrics.width)
        metric_start = start * bucket_ms // metric_ms
        metric_count = last // metric_ms - metric_start + 1
        for name in metric_names or ():
            stored = self.metrics.names.get(name)
            if stored is not None:
                (values, sums), left_out = _rebin(stored, self.metrics.width, metric_ms, metric_start, metric_count)
                view["metrics"][name] = {
                    "start_ms": metric_start * metric_ms,
                    "bucket_ms": metric_ms,
                    "values": values,
                    "mean": [s / n if n and math.isfinite(s / n) else None for n, s in zip(values, sums, strict=True)],
                    "outside_window": sum(row[0] for row in left_out),
                }
        view["outside_window"] = outside
        return view


def _window(totals: dict[int, int], width: int) -> tuple[int, int]:
    """(first, last) millisecond of the window shown, from the event count per stored bucket."""
    keys = sorted(totals)
    whole = sum(totals.values())
    low_rank, high_rank = math.floor(TRIM * whole), math.ceil((1 - TRIM) * whole)
    seen, low, high = 0, keys[0], keys[-1]
    for key in keys:
        if seen <= low_rank:
            low = key
        seen += totals[key]
        if seen >= high_rank:
            high = key
            break
    if (keys[-1] - keys[0] + 1) <= 4 * (high - low + 1):
        low, high = keys[0], keys[-1]
    return low * width, (high + 1) * width - 1


def _rebin(
    buckets: dict[int, list[Any]], width: int, bucket_ms: int, start: int, count: int
) -> tuple[list[list[Any]], list[list[Any]]]:
    """Stored rows summed into `count` display buckets from bucket `start`; and the rows outside them."""
    factor = bucket_ms // width
    size = len(next(iter(buckets.values()))) if buckets else 0
    series = [[0] * count for _ in range(size)]
    outside = []
    for key, row in buckets.items():
        index = key // factor - start
        if 0 <= index < count:
            for i, value in enumerate(row):
                series[i][index] += value
        else:
            outside.append(row)
    return series, outside
