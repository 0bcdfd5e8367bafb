"""The run report: per Lambda function, how it ran, what it cost and how it failed, from the events of a run.

    FleetReport.add(events) ... -> FleetReport.to_dict(prices, top_metrics) -> JSON (--report FILE) or render()

Memory does not grow with the number of events: counts and sums are kept as they come, durations in
a logarithmic-bucket sketch (each bucket 1% wide, so a percentile is within 0.5% of the exact
nearest-rank value; maxima are exact) and memory used, a whole number of MB, in exact counts.
Nor does it grow with the number of functions and names: the first MAX_FUNCTIONS functions seen get a
row each; the others are added up, exactly, in one "other functions" row that says how many they
are. Names kept (functions, metrics, error types, throttle codes) are cut to MAX_NAME_CHARS, and
error types and throttle codes are kept up to MAX_BREAKDOWN_KEYS names for the whole report.

Cost is an estimate: billed GB-seconds (Billed Duration, plus Billed Restore Duration for SnapStart,
times Memory Size, as the REPORT lines say) times the price per GB-second, plus the invocations times
the price per request. Logs do not say a function's architecture, so both x86_64 and arm64 are shown,
and projected to 30 days from the time window of the events (first to last).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from shipper.bounds import METRIC_VALUE, json_number
from shipper.terminal import literal, plural

PRICES_AS_OF = "2025-06"
"""When the default prices were last checked against AWS's public Lambda pricing (US East, N. Virginia)."""
PRICE_GB_SECOND_X86_64 = 0.0000166667
PRICE_GB_SECOND_ARM64 = 0.0000133334
PRICE_REQUEST = 0.20 / 1_000_000

UNKNOWN_FUNCTION = "(unknown function)"
OTHER_FUNCTIONS = "(other functions)"
MAX_FUNCTIONS = 1_000
"""Functions with a row of their own; those seen after them share the `OTHER_FUNCTIONS` row."""
MAX_NAME_CHARS = 256
"""The longest name kept; a longer one is cut there and ends in `…`."""
MAX_BREAKDOWN_KEYS = 10_000
"""Distinct error types, throttle codes and init error types kept in the whole report."""
_MAX_FOLDED_NAMES = 50_000
"""Folded functions counted one by one; past that the report says `at least`."""
_MAX_KEYS = 200
"""Distinct error types, throttle codes and metric names kept per counter; the rest count as `(other)`."""
_MAX_METRICS = 10_000
_MAX_VERSIONS = 20
"""Versions kept per function; the rest count as `(other)`."""
_MAX_TIMESTAMP_MS: Final = 10**14
"""Timestamps at or past this (the year 5138) are not taken into the time window."""
_VERSION = re.compile(r"\[([^\]]{1,64})\]")
"""The version in a Lambda log stream name: `2024/05/20/[$LATEST]abc`, `2024/05/20/[12]abc`."""
_MONTH_S = 30 * 86_400
_INFINITY: Final = math.inf
_LOG_GAMMA: Final = math.log(1.01)
_GAMMA: Final = 1.01


@dataclass(frozen=True, slots=True)
class Prices:
    """USD prices of on-demand Lambda invocations."""

    gb_second_x86_64: float = PRICE_GB_SECOND_X86_64
    gb_second_arm64: float = PRICE_GB_SECOND_ARM64
    request: float = PRICE_REQUEST


class Quantiles:
    """Nearest-rank percentiles of positive numbers in constant memory (within 0.5%; min and max exact)."""

    __slots__ = ("buckets", "count", "high", "low", "non_positive")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.non_positive = 0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: float) -> None:
        """Add one value; one that is not finite (never in a valid event) is not counted."""
        if not -_INFINITY < value < _INFINITY:
            return
        self.count += 1
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        if value > 0:
            key = math.ceil(math.log(value) / _LOG_GAMMA)
            self.buckets[key] = self.buckets.get(key, 0) + 1
        else:
            self.non_positive += 1

    def quantile(self, q: float) -> float | None:
        """The value at rank ceil(q * count); None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank >= self.count:
            return self.high
        seen = self.non_positive
        if rank <= seen:
            return self.low
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                # Bucket `key` holds (gamma^(key-1), gamma^key]; this point is within 0.5% of all of it.
                return min(max(2 * _GAMMA**key / (_GAMMA + 1), self.low), self.high)
        return self.high  # not reached: the counts add up to `count`


def exact_quantile(counts: dict[int, int], q: float) -> int | None:
    """Nearest-rank percentile of whole numbers kept as value -> count."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return None  # not reached


def bounded_name(name: Any) -> Any:
    """A string cut to MAX_NAME_CHARS (ending in `…`) when longer; anything else as it is."""
    if type(name) is str and len(name) > MAX_NAME_CHARS:
        return name[: MAX_NAME_CHARS - 1] + "…"
    return name


class _Function:
    """What the events of one function add up to."""

    __slots__ = (
        "billed_gb_seconds",
        "cold_starts",
        "duration",
        "duration_total",
        "errors",
        "init",
        "init_errors",
        "invocations",
        "log_group",
        "memory_sizes",
        "memory_used",
        "out_of_memory",
        "runtimes",
        "stream",
        "stream_version",
        "throttles",
        "timeouts",
        "unbilled",
        "versions",
    )

    def __init__(self, log_group: str | None) -> None:
        self.log_group = log_group
        self.invocations = self.cold_starts = self.timeouts = self.out_of_memory = self.unbilled = 0
        self.billed_gb_seconds = self.duration_total = 0.0
        self.duration = Quantiles()
        self.init = Quantiles()
        self.memory_sizes: dict[int, int] = {}
        """Memory Size (MB) -> invocations; a plain dict, cheaper to count into than a Counter."""
        self.memory_used: dict[int, int] = {}
        self.throttles: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.init_errors: Counter[str] = Counter()
        self.runtimes: Counter[str] = Counter()
        self.versions: dict[str, _Version] = {}
        self.stream: Any = None
        """The log stream last looked up, and its version's counters: events come in runs of one stream."""
        self.stream_version: _Version | None = None

    def version(self, event: dict[str, Any]) -> _Version | None:
        """The counters of the version named by the event's log stream, if it names one."""
        stream = event.get("log_stream")
        if type(stream) is str and stream == self.stream:
            return self.stream_version
        version = self._version(stream)
        self.stream, self.stream_version = stream, version
        return version

    def _version(self, stream: Any) -> _Version | None:
        match = _VERSION.search(stream) if type(stream) is str else None
        if match is None:
            return None
        name = match.group(1)
        version = self.versions.get(name)
        if version is None:
            if len(self.versions) >= _MAX_VERSIONS:
                name = "(other)"
            version = self.versions.setdefault(name, _Version())
        return version

    def failure(self, event: dict[str, Any]) -> None:
        version = self.version(event)
        if version is not None:
            version.failures += 1

    @property
    def failures(self) -> int:
        """Invocations that failed: errors, timeouts and out-of-memory kills (each counted once per invocation)."""
        return min(sum(self.errors.values()) + self.timeouts + self.out_of_memory, self.invocations)

    def invocation(self, event: dict[str, Any]) -> None:
        self.invocations += 1
        version = self.version(event)
        if version is not None:
            version.invocations += 1
        duration = event.get("duration_ms")
        if duration is not None:
            self.duration.add(duration)
            self.duration_total += duration
            if version is not None:
                version.duration_total += duration
                version.durations += 1
        if event.get("cold_start"):
            self.cold_starts += 1
            init = event.get("init_duration_ms")
            if init is None:
                init = event.get("restore_duration_ms")
            if init is not None:
                self.init.add(init)
        memory = event.get("memory_size_mb")
        billed = event.get("billed_duration_ms")
        if memory is not None:
            self.memory_sizes[memory] = self.memory_sizes.get(memory, 0) + 1
        used = event.get("max_memory_used_mb")
        if used is not None:
            self.memory_used[used] = self.memory_used.get(used, 0) + 1
        if memory is None or billed is None:
            self.unbilled += 1
            return
        billed += event.get("billed_restore_duration_ms") or 0
        self.billed_gb_seconds += billed / 1000 * memory / 1024

    def to_dict(self, name: str, prices: Prices, window_s: float | None) -> dict[str, Any]:
        configured = max(self.memory_sizes) if self.memory_sizes else None
        max_used = max(self.memory_used) if self.memory_used else None
        p95_used = exact_quantile(self.memory_used, 0.95)
        requests = self.invocations * prices.request
        cost = {
            "x86_64": self.billed_gb_seconds * prices.gb_second_x86_64 + requests,
            "arm64": self.billed_gb_seconds * prices.gb_second_arm64 + requests,
        }
        return {
            "function": name,
            "log_group": self.log_group,
            "invocations": self.invocations,
            "cold_starts": self.cold_starts,
            "cold_start_pct": _pct(self.cold_starts, self.invocations),
            "failed_invocations": self.failures,
            "error_rate_pct": _pct(self.failures, self.invocations),
            "runtimes": dict(self.runtimes.most_common()),
            "versions": [version.to_dict(name) for name, version in self.versions.items()],
            "init_duration_ms": {
                "p50": self.init.quantile(0.50),
                "p95": self.init.quantile(0.95),
                "max": self.init.high if self.init.count else None,
            },
            "duration_ms": {
                "mean": self.duration_total / self.duration.count if self.duration.count else None,
                "p50": self.duration.quantile(0.50),
                "p95": self.duration.quantile(0.95),
                "p99": self.duration.quantile(0.99),
                "max": self.duration.high if self.duration.count else None,
            },
            "billed_gb_seconds": self.billed_gb_seconds,
            "invocations_without_billing": self.unbilled,
            "cost_usd": cost,
            "cost_usd_30_days": _per_month(cost, window_s),
            "memory": {
                "configured_mb": configured,
                "sizes_seen_mb": sorted(self.memory_sizes),
                "max_used_mb": max_used,
                "p95_used_mb": p95_used,
                "hint": memory_hint(configured, max_used, self.out_of_memory),
            },
            "timeouts": self.timeouts,
            "out_of_memory": self.out_of_memory,
            "throttles": dict(self.throttles.most_common()),
            "errors": dict(self.errors.most_common()),
            "init_errors": dict(self.init_errors.most_common()),
        }


class _Version:
    """Invocations, failures and durations of one version of a function (`$LATEST`, `12`)."""

    __slots__ = ("duration_total", "durations", "failures", "invocations")

    def __init__(self) -> None:
        self.invocations = self.failures = self.durations = 0
        self.duration_total = 0.0

    def to_dict(self, name: str) -> dict[str, Any]:
        failed = min(self.failures, self.invocations)
        return {
            "version": name,
            "invocations": self.invocations,
            "failed_invocations": failed,
            "error_rate_pct": _pct(failed, self.invocations),
            "mean_duration_ms": self.duration_total / self.durations if self.durations else None,
        }


def _per_month(cost: dict[str, float], window_s: float | None) -> dict[str, float] | None:
    """Cost scaled from the time window to 30 days; None without a window."""
    if not window_s:
        return None
    return {arch: value * _MONTH_S / window_s for arch, value in cost.items()}


def memory_hint(configured: int | None, max_used: int | None, out_of_memory: int) -> str | None:
    """Right-sizing advice: at its limit (an out-of-memory kill, or max used reaching the size), or never half used."""
    if configured is None or max_used is None:
        return None
    if out_of_memory or max_used >= configured:
        kills = f", {plural(out_of_memory, 'out-of-memory kill')}" if out_of_memory else ""
        return f"at its limit ({max_used:,} of {configured:,} MB used{kills}): raise memory"
    if max_used * 2 < configured:
        suggested = max(128, math.ceil(max_used * 1.25 / 64) * 64)
        return f"never used half ({max_used:,} of {configured:,} MB at most): try {suggested:,} MB"
    return None


class _Metric:
    __slots__ = ("count", "functions", "high", "low", "metric_type", "namespace", "total", "unit")

    def __init__(self, event: dict[str, Any]) -> None:
        self.metric_type = bounded_name(event.get("metric_type"))
        self.unit = bounded_name(event.get("unit"))
        self.namespace = bounded_name(event.get("namespace"))
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.functions: set[str] = set()

    def add(self, value: float, function: Any) -> None:
        self.count += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        if function and function not in self.functions and len(self.functions) < 20:
            self.functions.add(bounded_name(function))


class FleetReport:
    """Adds up the events of a run per function, and the custom metrics."""

    def __init__(self, max_functions: int = MAX_FUNCTIONS) -> None:
        self.max_functions = max_functions
        self.functions: dict[str, _Function] = {}
        self.other = _Function(None)
        """The functions past `max_functions`, added up."""
        self.folded: set[int] = set()
        """Hashes of the folded functions' names, up to _MAX_FOLDED_NAMES."""
        self.folded_past_limit = False
        self.metrics: dict[str, _Metric] = {}
        self.other_metric_values = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.events_by_type: dict[Any, int] = {}
        """Events added, by type (from the classifier's closed set)."""
        self._breakdown_keys = 0

    def _function(self, name: str, log_group: Any) -> _Function:
        """The row of a function not seen before: its own, or the other functions' once there are enough."""
        if len(self.functions) < self.max_functions:
            function = self.functions[name] = _Function(bounded_name(log_group) if type(log_group) is str else None)
            return function
        if len(self.folded) < _MAX_FOLDED_NAMES:
            self.folded.add(hash(name))
        elif hash(name) not in self.folded:
            self.folded_past_limit = True
        return self.other

    def _bump(self, counter: Counter[str], key: Any) -> None:
        if type(key) is str and key in counter:  # a name seen before: kept as it is ("" and long ones never are)
            counter[key] += 1
            return
        key = bounded_name(key) if type(key) is str and key else "(no type)"
        if key not in counter and (len(counter) >= _MAX_KEYS or self._breakdown_keys >= MAX_BREAKDOWN_KEYS):
            key = "(other)"
        if key not in counter:
            self._breakdown_keys += 1
        counter[key] += 1

    def add(self, events: list[dict[str, Any]]) -> int:
        """Add the events up; returns how many of them name no function (no function and no log group)."""
        low, high = _MAX_TIMESTAMP_MS, -1
        types = self.events_by_type
        logs = unnamed = 0
        for event in events:
            stamp = event.get("timestamp")
            if type(stamp) is int:  # whole ms in range widen the window (a bool is no timestamp)
                ms: int = stamp
                if 0 <= ms < low:
                    low = ms
                if high < ms < _MAX_TIMESTAMP_MS:
                    high = ms
            named = event.get("function")
            if named is None and not event.get("log_group"):
                unnamed += 1
            kind = event["type"]
            if kind == "log":
                logs += 1
                continue
            types[kind] = types.get(kind, 0) + 1
            if kind == "metric":
                self._metric(event)
                continue
            name = named or event.get("log_group") or UNKNOWN_FUNCTION
            function = self.functions.get(name)
            if function is None:
                name = bounded_name(name)
                function = self.functions.get(name) or self._function(name, event.get("log_group"))
            if kind == "invocation":
                function.invocation(event)
                runtime = event.get("runtime")
                if runtime is not None:
                    self._bump(function.runtimes, runtime)
            elif kind == "timeout":
                function.timeouts += 1
                function.failure(event)
            elif kind == "out_of_memory":
                function.out_of_memory += 1
                function.failure(event)
            elif kind == "throttle":
                self._bump(function.throttles, event.get("error_code"))
            elif kind == "error":
                self._bump(function.errors, event.get("error_type"))
                function.failure(event)
            elif kind == "init_error":
                self._bump(function.init_errors, event.get("error_type") or f"({event.get('status')})")
        if logs:
            types["log"] = types.get("log", 0) + logs
        if low <= high:
            if self.first_ms is None or low < self.first_ms:
                self.first_ms = low
            if self.last_ms is None or high > self.last_ms:
                self.last_ms = high
        return unnamed

    def _metric(self, event: dict[str, Any]) -> None:
        name = event.get("name")
        value = json_number(event.get("value"), METRIC_VALUE)
        metric = self.metrics.get(name) if type(name) is str else None
        if metric is None:
            if len(self.metrics) >= _MAX_METRICS or type(name) is not str:
                self.other_metric_values += 1
                return
            name = bounded_name(name)
            metric = self.metrics.get(name)
            if metric is None:
                metric = self.metrics[name] = _Metric(event)
        if value is None:
            return
        if event.get("metric_type") == "count":
            # A sampled counter stands for value / sample_rate, as the Prometheus output counts it.
            rate = event.get("sample_rate")
            if type(rate) is float and 0.0 < rate < 1.0:
                value /= rate
        if math.isfinite(value):
            metric.add(value, event.get("function"))

    def to_dict(self, prices: Prices, top_metrics: int = 10) -> dict[str, Any]:
        """The report as plain JSON-ready data: functions by estimated cost, totals, top metrics by values."""
        first, last = self.first_ms, self.last_ms
        window_s = None if first is None or last is None else (last - first) / 1000
        functions = [function.to_dict(name, prices, window_s) for name, function in self.functions.items()]
        functions.sort(key=lambda f: (-f["cost_usd"]["x86_64"], -f["invocations"], f["function"]))
        folded = len(self.folded)
        if folded:
            other = self.other.to_dict(OTHER_FUNCTIONS, prices, window_s)
            other["memory"]["hint"] = None  # sizes and use of different functions: no advice holds for all
            other["folded_functions"] = folded
            other["folded_functions_at_least"] = self.folded_past_limit
            functions.append(other)
        totals: dict[str, Any] = {
            key: sum(f[key] for f in functions)
            for key in ("invocations", "cold_starts", "billed_gb_seconds", "timeouts", "out_of_memory")
        }
        totals["cold_start_pct"] = _pct(totals["cold_starts"], totals["invocations"])
        totals["cost_usd"] = {arch: sum(f["cost_usd"][arch] for f in functions) for arch in ("x86_64", "arm64")}
        totals["cost_usd_30_days"] = _per_month(totals["cost_usd"], window_s)
        for key in ("throttles", "errors", "init_errors"):
            totals[key] = sum(sum(f[key].values()) for f in functions)
        ranked = sorted(self.metrics.items(), key=lambda item: (-item[1].count, item[0]))[:top_metrics]
        return {
            "prices": {
                "gb_second_x86_64": prices.gb_second_x86_64,
                "gb_second_arm64": prices.gb_second_arm64,
                "request": prices.request,
                "defaults_as_of": PRICES_AS_OF,
            },
            "window": {
                "first": _iso(self.first_ms),
                "last": _iso(self.last_ms),
                "seconds": window_s,
            },
            "functions": functions,
            "functions_folded": folded,
            "totals": totals,
            "metrics": [
                {
                    "name": name,
                    "metric_type": metric.metric_type,
                    "unit": metric.unit,
                    "namespace": metric.namespace,
                    "values": metric.count,
                    # A sum past the float range (1e308 twice) is not a number: null, and so is the mean.
                    "sum": metric.total if math.isfinite(metric.total) else None,
                    "min": metric.low if metric.count else None,
                    "mean": metric.total / metric.count if metric.count and math.isfinite(metric.total) else None,
                    "max": metric.high if metric.count else None,
                    "functions": sorted(metric.functions),
                }
                for name, metric in ranked
            ],
            "metric_names": len(self.metrics),
            "metric_values_not_kept": self.other_metric_values,
        }


def _pct(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


# --- the terminal tables ---------------------------------------------------------------------------

_Cell = Any
"""A str (numbers, our own words) or a rich Text (anything from the logs, via `literal`)."""


@dataclass
class _Column:
    heading: str
    cells: list[_Cell]
    numeric: bool = True
    """Numbers are never wrapped or cut; text columns wrap (fold) when the terminal is narrow."""


def render(report: dict[str, Any], console: Any) -> None:
    """Print the report as tables on a rich Console, laid out for its width; names from the logs are literal.

    Columns that do not fit the width go to a continuation table that repeats the first column, so
    nothing is ever cut: numbers keep their width, names and text wrap only when a single column is
    wider than the terminal.
    """
    functions = report["functions"]
    window = report.get("window") or {}
    if not functions:
        console.print("No Lambda invocations or signals found.")
    else:
        names = [_row_name(f) for f in functions]
        _print_tables(console, "Invocations (durations in ms)", "function", names, _invocation_columns(functions))
        rows = [(literal(f["function"]), v) for f in functions for v in f.get("versions", [])]
        if rows:
            versions = [
                _Column("version", [literal(v["version"]) for _, v in rows], numeric=False),
                _Column("invocations", [f"{v['invocations']:,}" for _, v in rows]),
                _Column("failed", [_count_pct(v["failed_invocations"], v["error_rate_pct"]) for _, v in rows]),
                _Column("mean ms", [_ms(v["mean_duration_ms"]) for _, v in rows]),
            ]
            _print_tables(console, "By version (from the log stream name)", "function", [n for n, _ in rows], versions)
        totals = report["totals"]
        _print_tables(
            console,
            "Memory and cost (USD)",
            "function",
            [*names, "all functions"],
            _cost_columns(functions, totals),
            total_row=True,
        )
        failures = [
            _Column("timeouts", [_number(f["timeouts"]) for f in functions]),
            _Column("out of memory", [_number(f["out_of_memory"]) for f in functions]),
            _Column("errors by type", [_breakdown(f["errors"]) for f in functions], numeric=False),
            _Column(
                "downstream throttling errors by code", [_breakdown(f["throttles"]) for f in functions], numeric=False
            ),
            _Column("init errors by type", [_breakdown(f["init_errors"]) for f in functions], numeric=False),
        ]
        _print_tables(console, "Failures", "function", names, failures)
    if report["metrics"]:
        metrics = report["metrics"]
        columns = [
            _Column("type", [literal(m["metric_type"] or "") for m in metrics], numeric=False),
            _Column("unit", [literal(m["unit"] or "") for m in metrics], numeric=False),
            _Column("values", [f"{m['values']:,}" for m in metrics]),
            *(_Column(key, [_value(m[key]) for m in metrics]) for key in ("sum", "min", "mean", "max")),
            _Column("functions", [literal(", ".join(m["functions"])) for m in metrics], numeric=False),
        ]
        _print_tables(
            console,
            "Top custom metrics (by number of values)",
            "metric",
            [literal(m["name"]) for m in metrics],
            columns,
        )
    if window.get("first"):
        console.print(
            f"Events from {window['first']} to {window['last']} ({_duration(window['seconds'])}); the 30-day "
            "columns scale the cost of this window to 30 days.",
            style="dim",
        )
    console.print(
        "Downstream throttling errors: AWS throttling errors the functions logged from their own calls to other "
        "services, not Lambda invoke throttles (those are in the Throttles CloudWatch metric).",
        style="dim",
    )
    prices = report["prices"]
    console.print(
        f"Cost: billed GB-seconds x ${prices['gb_second_x86_64']:.10f} (x86_64) or "
        f"${prices['gb_second_arm64']:.10f} (arm64), plus ${prices['request'] * 1e6:.2f} per million requests; "
        f"no free tier (defaults: AWS public on-demand prices, US East, as of {prices['defaults_as_of']}). "
        "Logs do not say the architecture: both are shown.",
        style="dim",
    )


def _invocation_columns(functions: list[dict[str, Any]]) -> list[_Column]:
    def runtime(f: dict[str, Any]) -> _Cell:
        runtimes = list(f.get("runtimes", {}))
        return literal(runtimes[0] + (f" +{len(runtimes) - 1}" if len(runtimes) > 1 else "")) if runtimes else "-"

    return [
        _Column("invocations", [f"{f['invocations']:,}" for f in functions]),
        _Column("failed", [_count_pct(f["failed_invocations"], f["error_rate_pct"]) for f in functions]),
        _Column("cold starts", [_count_pct(f["cold_starts"], f["cold_start_pct"]) for f in functions]),
        _Column("runtime", [runtime(f) for f in functions], numeric=False),
        *(
            _Column(f"init {key}", [_ms(f["init_duration_ms"][key]) for f in functions])
            for key in ("p50", "p95", "max")
        ),
        *(
            _Column(key, [_ms(f["duration_ms"][key]) for f in functions])
            for key in ("mean", "p50", "p95", "p99", "max")
        ),
    ]


def _cost_columns(functions: list[dict[str, Any]], totals: dict[str, Any]) -> list[_Column]:
    rows = [*functions, None]

    def usd(f: dict[str, Any] | None, key: str, arch: str) -> str:
        costs = (totals if f is None else f).get(key)
        return "-" if costs is None else format_usd(costs[arch])

    return [
        _Column("memory MB", [_number(f["memory"]["configured_mb"]) if f else "" for f in rows]),
        _Column("max used", [_number(f["memory"]["max_used_mb"]) if f else "" for f in rows]),
        _Column("p95 used", [_number(f["memory"]["p95_used_mb"]) if f else "" for f in rows]),
        _Column("GB-s", [f"{(f or totals)['billed_gb_seconds']:,.2f}" for f in rows]),
        *(_Column(f"cost {arch}", [usd(f, "cost_usd", arch) for f in rows]) for arch in ("x86_64", "arm64")),
        *(_Column(f"30 days {arch}", [usd(f, "cost_usd_30_days", arch) for f in rows]) for arch in ("x86_64", "arm64")),
        _Column("hint", [(f["memory"]["hint"] or "") if f else "" for f in rows], numeric=False),
    ]


def _cell_width(cell: _Cell) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in str(cell).split("\n")), default=0)


def _heading_width(heading: str) -> int:
    """Headings of text columns wrap between words: their longest word is as narrow as they get."""
    return max(len(word) for word in heading.split())


def _print_tables(
    console: Any, title: str, key: str, keys: list[_Cell], columns: list[_Column], *, total_row: bool = False
) -> None:
    """One table, or as many as the width needs, each repeating the `key` column; a `total_row` is bold."""
    from rich.table import Table

    width = console.width
    # Each column costs its content, one space either side and one border; the table one more border.
    widths = [
        max(len(c.heading) if c.numeric else _heading_width(c.heading), *(_cell_width(cell) for cell in c.cells))
        for c in columns
    ]
    widest_number = max((w for w, c in zip(widths, columns, strict=True) if c.numeric), default=0)
    key_natural = max(_heading_width(key), *(_cell_width(cell) for cell in keys))
    # The key column may wrap only when it leaves no room for the widest number next to it.
    key_width = max(min(key_natural, width - 1 - 3 - (widest_number + 3)), 8)
    room = width - 1 - (key_width + 3)
    chunks: list[list[int]] = [[]]
    used = 0
    for index, column_width in enumerate(widths):
        if chunks[-1] and used + column_width + 3 > room:
            chunks.append([])
            used = 0
        chunks[-1].append(index)
        used += min(column_width, room - 3) + 3
    for number, chunk in enumerate(chunks):
        table = Table(title=title if number == 0 else f"{title}, continued", title_justify="left")
        table.add_column(
            key, justify="left", overflow="fold", max_width=key_width, min_width=min(key_natural, key_width)
        )
        for index in chunk:
            column = columns[index]
            if column.numeric:
                table.add_column(column.heading, justify="right", no_wrap=True, min_width=widths[index])
            else:
                table.add_column(column.heading, justify="left", overflow="fold", max_width=max(room - 3, 8))
        for row, name in enumerate(keys):
            last = total_row and row == len(keys) - 1
            table.add_row(name, *(columns[index].cells[row] for index in chunk), style="bold" if last else None)
        console.print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:,.1f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:,.0f} min"
    hours = minutes / 60
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} days"


def _row_name(function: dict[str, Any]) -> Any:
    """A function's name as shown; the folded functions' row says how many it adds up."""
    folded = function.get("folded_functions")
    if folded is None:
        return literal(function["function"])
    at_least = "at least " if function["folded_functions_at_least"] else ""
    return f"other functions ({at_least}{folded:,} more)"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _count_pct(count: int, pct: float | None) -> str:
    return f"{count:,}" if pct is None else f"{count:,} ({pct:.1f}%)"


def format_usd(value: float) -> str:
    """Dollars to the cent from $10, else to three significant digits ($0.0000123), never `$0.0000`."""
    if value >= 1e15:
        return f"${value:.3g}"
    if value >= 10:
        return f"${value:,.2f}"
    if value <= 0:
        return "$0"
    decimals = max(2, 2 - math.floor(math.log10(value)))
    return f"${value:.{decimals}f}"


def _value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _breakdown(counts: dict[str, int]) -> Any:
    from rich.text import Text

    if not counts:
        return "-"
    total = sum(counts.values())
    lines = [f"{total:,} in all", *(f"{count:,} {name}" for name, count in counts.items())]
    return Text("\n").join(literal(line) for line in lines)
