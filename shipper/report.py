"""The run report: per Lambda function, how it ran, what it cost and how it failed, from the events of a run.

    FleetReport.add(events) ... -> FleetReport.to_dict(prices, top_metrics) -> JSON (--report FILE) or render()

Memory does not grow with the number of events: counts and sums are kept as they come, durations in
a logarithmic-bucket sketch (each bucket 1% wide, so a percentile is within 0.5% of the exact
nearest-rank value; maxima are exact) and memory used, a whole number of MB, in exact counts.

Cost is an estimate: billed GB-seconds (Billed Duration, plus Billed Restore Duration for SnapStart,
times Memory Size, as the REPORT lines say) times the price per GB-second, plus the invocations times
the price per request. Logs do not say a function's architecture, so both x86_64 and arm64 are shown.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from shipper.terminal import literal

PRICES_AS_OF = "2025-06"
"""When the default prices were last checked against AWS's public Lambda pricing (US East, N. Virginia)."""
PRICE_GB_SECOND_X86_64 = 0.0000166667
PRICE_GB_SECOND_ARM64 = 0.0000133334
PRICE_REQUEST = 0.20 / 1_000_000

UNKNOWN_FUNCTION = "(unknown function)"
_MAX_KEYS = 200
"""Distinct error types, throttle codes and metric names kept per counter; the rest count as `(other)`."""
_MAX_METRICS = 10_000
_LOG_GAMMA = math.log(1.01)
_GAMMA = 1.01


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
        if not -math.inf < value < math.inf:
            return
        self.count += 1
        self.low = min(self.low, value)
        self.high = max(self.high, value)
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


def exact_quantile(counts: Counter[int], q: float) -> int | None:
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


def _bump(counter: Counter[str], key: Any) -> None:
    key = key if type(key) is str and key else "(no type)"
    if key not in counter and len(counter) >= _MAX_KEYS:
        key = "(other)"
    counter[key] += 1


class _Function:
    """What the events of one function add up to."""

    __slots__ = (
        "billed_gb_seconds",
        "cold_starts",
        "duration",
        "errors",
        "init",
        "init_errors",
        "invocations",
        "log_group",
        "memory_sizes",
        "memory_used",
        "out_of_memory",
        "throttles",
        "timeouts",
        "unbilled",
    )

    def __init__(self, log_group: str | None) -> None:
        self.log_group = log_group
        self.invocations = self.cold_starts = self.timeouts = self.out_of_memory = self.unbilled = 0
        self.billed_gb_seconds = 0.0
        self.duration = Quantiles()
        self.init = Quantiles()
        self.memory_sizes: Counter[int] = Counter()
        self.memory_used: Counter[int] = Counter()
        self.throttles: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.init_errors: Counter[str] = Counter()

    def invocation(self, event: dict[str, Any]) -> None:
        self.invocations += 1
        duration = event.get("duration_ms")
        if duration is not None:
            self.duration.add(duration)
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
            self.memory_sizes[memory] += 1
        used = event.get("max_memory_used_mb")
        if used is not None:
            self.memory_used[used] += 1
        if memory is None or billed is None:
            self.unbilled += 1
            return
        billed += event.get("billed_restore_duration_ms") or 0
        self.billed_gb_seconds += billed / 1000 * memory / 1024

    def to_dict(self, name: str, prices: Prices) -> dict[str, Any]:
        configured = max(self.memory_sizes) if self.memory_sizes else None
        max_used = max(self.memory_used) if self.memory_used else None
        p95_used = exact_quantile(self.memory_used, 0.95)
        requests = self.invocations * prices.request
        return {
            "function": name,
            "log_group": self.log_group,
            "invocations": self.invocations,
            "cold_starts": self.cold_starts,
            "cold_start_pct": _pct(self.cold_starts, self.invocations),
            "init_duration_ms": {"p50": self.init.quantile(0.50), "p95": self.init.quantile(0.95)},
            "duration_ms": {
                "p50": self.duration.quantile(0.50),
                "p95": self.duration.quantile(0.95),
                "p99": self.duration.quantile(0.99),
                "max": self.duration.high if self.duration.count else None,
            },
            "billed_gb_seconds": self.billed_gb_seconds,
            "invocations_without_billing": self.unbilled,
            "cost_usd": {
                "x86_64": self.billed_gb_seconds * prices.gb_second_x86_64 + requests,
                "arm64": self.billed_gb_seconds * prices.gb_second_arm64 + requests,
            },
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


def memory_hint(configured: int | None, max_used: int | None, out_of_memory: int) -> str | None:
    """Right-sizing advice: at its limit (an out-of-memory kill, or max used reaching the size), or never half used."""
    if configured is None or max_used is None:
        return None
    if out_of_memory or max_used >= configured:
        kills = f", {out_of_memory:,} out-of-memory kill{'s' * (out_of_memory != 1)}" if out_of_memory else ""
        return f"at its limit ({max_used:,} of {configured:,} MB used{kills}): raise memory"
    if max_used * 2 < configured:
        suggested = max(128, math.ceil(max_used * 1.25 / 64) * 64)
        return f"never used half ({max_used:,} of {configured:,} MB at most): try {suggested:,} MB"
    return None


class _Metric:
    __slots__ = ("count", "functions", "high", "low", "metric_type", "namespace", "total", "unit")

    def __init__(self, event: dict[str, Any]) -> None:
        self.metric_type = event.get("metric_type")
        self.unit = event.get("unit")
        self.namespace = event.get("namespace")
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.functions: set[str] = set()

    def add(self, value: float, function: str | None) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if function and len(self.functions) < 20:
            self.functions.add(function)


class FleetReport:
    """Adds up the events of a run per function, and the custom metrics."""

    def __init__(self) -> None:
        self.functions: dict[str, _Function] = {}
        self.metrics: dict[str, _Metric] = {}
        self.other_metric_values = 0

    def add(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            kind = event["type"]
            if kind == "log":
                continue
            if kind == "metric":
                self._metric(event)
                continue
            name = event.get("function") or event.get("log_group") or UNKNOWN_FUNCTION
            function = self.functions.get(name)
            if function is None:
                function = self.functions[name] = _Function(event.get("log_group"))
            if kind == "invocation":
                function.invocation(event)
            elif kind == "timeout":
                function.timeouts += 1
            elif kind == "out_of_memory":
                function.out_of_memory += 1
            elif kind == "throttle":
                _bump(function.throttles, event.get("error_code"))
            elif kind == "error":
                _bump(function.errors, event.get("error_type"))
            elif kind == "init_error":
                _bump(function.init_errors, event.get("error_type") or f"({event.get('status')})")

    def _metric(self, event: dict[str, Any]) -> None:
        name = event.get("name")
        value = event.get("value")
        metric = self.metrics.get(name)  # type: ignore[arg-type]
        if metric is None:
            if len(self.metrics) >= _MAX_METRICS or type(name) is not str:
                self.other_metric_values += 1
                return
            metric = self.metrics[name] = _Metric(event)
        if type(value) not in (int, float):
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
        functions = [function.to_dict(name, prices) for name, function in self.functions.items()]
        functions.sort(key=lambda f: (-f["cost_usd"]["x86_64"], -f["invocations"], f["function"]))
        totals: dict[str, Any] = {
            key: sum(f[key] for f in functions)
            for key in ("invocations", "cold_starts", "billed_gb_seconds", "timeouts", "out_of_memory")
        }
        totals["cold_start_pct"] = _pct(totals["cold_starts"], totals["invocations"])
        totals["cost_usd"] = {arch: sum(f["cost_usd"][arch] for f in functions) for arch in ("x86_64", "arm64")}
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
            "functions": functions,
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


# --- the terminal table ----------------------------------------------------------------------------


def render(report: dict[str, Any], console: Any) -> None:
    """Print the report as tables on a rich Console; names from the logs are shown literally (shipper.terminal)."""
    from rich.table import Table

    functions = report["functions"]
    if not functions:
        console.print("No Lambda invocations or signals found.")
    else:
        invocations = Table(title="Invocations (durations in ms)", title_justify="left")
        for heading in ("function", "invocations", "cold starts", "init p50", "init p95", "p50", "p95", "p99", "max"):
            invocations.add_column(heading, justify="left" if heading == "function" else "right")
        for f in functions:
            init, duration = f["init_duration_ms"], f["duration_ms"]
            invocations.add_row(
                literal(f["function"]),
                f"{f['invocations']:,}",
                _count_pct(f["cold_starts"], f["cold_start_pct"]),
                *(_ms(init[key]) for key in ("p50", "p95")),
                *(_ms(duration[key]) for key in ("p50", "p95", "p99", "max")),
            )
        console.print(invocations)

        cost = Table(title="Memory and cost", title_justify="left")
        for heading in ("function", "memory MB", "max used", "p95 used", "GB-s", "cost x86_64", "cost arm64", "hint"):
            cost.add_column(heading, justify="left" if heading in ("function", "hint") else "right")
        for f in functions:
            memory = f["memory"]
            cost.add_row(
                literal(f["function"]),
                _number(memory["configured_mb"]),
                _number(memory["max_used_mb"]),
                _number(memory["p95_used_mb"]),
                f"{f['billed_gb_seconds']:,.2f}",
                _usd(f["cost_usd"]["x86_64"]),
                _usd(f["cost_usd"]["arm64"]),
                memory["hint"] or "",
            )
        totals = report["totals"]
        cost.add_row(
            "all functions",
            "",
            "",
            "",
            f"{totals['billed_gb_seconds']:,.2f}",
            _usd(totals["cost_usd"]["x86_64"]),
            _usd(totals["cost_usd"]["arm64"]),
            "",
            style="bold",
        )
        console.print(cost)

        failures = Table(title="Failures", title_justify="left")
        for heading in ("function", "timeouts", "out of memory"):
            failures.add_column(heading, justify="left" if heading == "function" else "right")
        for heading in ("errors by type", "throttles by code", "init errors by type"):
            failures.add_column(heading, no_wrap=True, overflow="ellipsis")
        for f in functions:
            failures.add_row(
                literal(f["function"]),
                _number(f["timeouts"]),
                _number(f["out_of_memory"]),
                _breakdown(f["errors"]),
                _breakdown(f["throttles"]),
                _breakdown(f["init_errors"]),
            )
        console.print(failures)
    if report["metrics"]:
        metrics = Table(title="Top custom metrics (by number of values)", title_justify="left")
        for heading in ("metric", "type", "unit", "values", "sum", "min", "mean", "max", "functions"):
            numeric = heading in ("values", "sum", "min", "mean", "max")
            metrics.add_column(heading, justify="right" if numeric else "left")
        for m in report["metrics"]:
            metrics.add_row(
                literal(m["name"]),
                literal(m["metric_type"] or ""),
                literal(m["unit"] or ""),
                f"{m['values']:,}",
                *(_value(m[key]) for key in ("sum", "min", "mean", "max")),
                literal(", ".join(m["functions"])),
            )
        console.print(metrics)
    prices = report["prices"]
    console.print(
        f"Cost: billed GB-seconds x ${prices['gb_second_x86_64']:.10f} (x86_64) or "
        f"${prices['gb_second_arm64']:.10f} (arm64), plus ${prices['request'] * 1e6:.2f} per million requests; "
        f"no free tier (defaults: AWS public on-demand prices, US East, as of {prices['defaults_as_of']}).",
        style="dim",
    )


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _count_pct(count: int, pct: float | None) -> str:
    return f"{count:,}" if pct is None else f"{count:,} ({pct:.1f}%)"


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 10 else f"${value:.4f}"


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
