"""The run report as one self-contained HTML page: `shipper run --report FILE.html`.

    html_report(report, fleet, timeline) -> bytes

Every chart is an `svg.chart`; what it draws from the data (bars, lines) has the class `m`.

Charts are inline SVG written here: no script, font, style sheet or image is fetched, so the page opens
offline (an email attachment, a CI artifact), and a Content-Security-Policy forbids anything else.
Its size depends on the number of functions and metrics shown, not on the number of events: series
come from `Timeline.view` (at most COLUMNS buckets), distributions from the report's sketches.

Text from logs (function and log group names, error types, throttle codes, metric names) is made
printable (shipper.terminal), cut to a length and HTML-escaped; ids and links are numbers, never
names. Numbers from logs may be anything: what is not finite is left out with a note.
"""

from __future__ import annotations

import html
import math
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from shipper import __version__
from shipper.report import _LOG_GAMMA, FleetReport, Quantiles, format_usd
from shipper.terminal import printable
from shipper.timeline import Timeline

COLUMNS = 120
"""Time buckets per chart at most."""
MAX_SECTIONS = 100
"""Functions with a section of charts (the costliest); the others are in the overview tables."""
RANKED = 15
"""Functions in each overview table."""
MAX_METRIC_CHARTS = 10
HISTOGRAM_BINS = 40
DAY_MS = 86_400_000

_W, _H = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 46, 26, 34
_PW, _PH = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
_BLUE, _ORANGE, _RED, _PURPLE, _GREEN, _GREY = "#4e79a7", "#f28e2b", "#e15759", "#b07aa1", "#59a14f", "#9c9c9c"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1360px;margin:0 auto;padding:16px 24px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:0 0 4px;overflow-wrap:anywhere}h3{font-size:14px;margin:0 0 6px}
.facts,.note{color:#57606a}.note{font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:12px}
.panel,section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px;margin:0 0 12px}
section{padding:16px}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{padding:3px 6px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
td:nth-child(2),th:nth-child(2){text-align:left;white-space:normal;overflow-wrap:anywhere}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
svg.chart{width:100%;height:auto;display:block}
svg text{font:11px system-ui,sans-serif;fill:#57606a}
.hint{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:4px 8px;display:inline-block}
footer{color:#57606a;font-size:12px;padding:8px 0 24px}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def html_report(report: dict[str, Any], fleet: FleetReport, timeline: Timeline) -> bytes:
    """The page for a report (FleetReport.to_dict plus "run"), from the same run's sketches and timeline."""
    metric_names = [m["name"] for m in report["metrics"][:MAX_METRIC_CHARTS]]
    view = timeline.view(COLUMNS, metric_names)
    window_ms = view["columns"] * view["bucket_ms"] if view["columns"] else None
    functions = report["functions"]
    sections = functions[:MAX_SECTIONS]
    anchors = {f["function"]: f"fn-{number}" for number, f in enumerate(sections, 1)}
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>shipper report</title><style>{_CSS}</style></head><body><main>",
        "<h1>Lambda fleet report</h1>",
        _facts(report, view),
        _notes(report, view, len(functions) - len(sections)),
    ]
    if functions:
        out.append(_cards(report["totals"], window_ms))
        fleet_series = _sum_series(view["functions"].values())
        fleet_chart = _activity_chart(fleet_series, view) if fleet_series else None
        out.append(_overview(functions, anchors, fleet_chart))
        for f in sections:
            out.append(_section(f, anchors[f["function"]], fleet.functions.get(f["function"]), view, window_ms))
    else:
        out.append('<p class="panel">No Lambda invocations or signals found.</p>')
    out.append(_metrics(report, view))
    prices = report["prices"]
    out.append(
        f"<footer>Cost: billed GB-seconds &times; ${prices['gb_second_x86_64']:.10f} (x86_64) or "
        f"${prices['gb_second_arm64']:.10f} (arm64), plus ${prices['request'] * 1e6:.2f} per million requests; "
        f"no free tier (defaults: AWS public on-demand prices, US East, as of {_text(prices['defaults_as_of'])}). "
        f"Per day and per month are this run's cost spread over its time window. "
        f"Written by shipper {__version__}.</footer></main></body></html>\n"
    )
    return "".join(out).encode("utf-8", "replace")


# --- the page's parts ---------------------------------------------------------------------------------


def _facts(report: dict[str, Any], view: dict[str, Any]) -> str:
    run = report.get("run") or {}
    parts = []
    if view["columns"]:
        end = view["start_ms"] + view["columns"] * view["bucket_ms"]
        parts.append(
            f"{_utc(view['start_ms'])} to {_utc(end)} UTC ({_duration(end - view['start_ms'])}, "
            f"buckets of {_duration(view['bucket_ms'])})"
        )
    if run:
        parts.append(
            f"{_int(run.get('inputs'))} inputs, {_size(run.get('bytes_read'))} read, "
            f"{_int(run.get('log_events'))} log events"
        )
    return f'<p class="facts">{" &middot; ".join(parts)}</p>' if parts else ""


def _notes(report: dict[str, Any], view: dict[str, Any], unsectioned: int) -> str:
    notes = []
    if view["out_of_range"]:
        notes.append(f"{view['out_of_range']:,} events with a time outside 2014 to 2099 are not in the time charts.")
    if view["outside_window"]:
        notes.append(
            f"{view['outside_window']:,} events far from the others in time are left out of the time charts "
            "(they are in every other figure)."
        )
    if view["functions_not_kept"]:
        notes.append(f"{view['functions_not_kept']:,} events of functions past the first thousand have no time chart.")
    if unsectioned > 0:
        notes.append(f"{unsectioned:,} functions of lower cost are in the overview tables only.")
    if report.get("metric_values_not_kept"):
        notes.append(f"{report['metric_values_not_kept']:,} custom metric values past the metric name limit.")
    return "".join(f'<p class="note">{note}</p>' for note in notes)


def _cards(totals: dict[str, Any], window_ms: int | None) -> str:
    failures = sum(totals.get(key) or 0 for key in ("errors", "timeouts", "out_of_memory"))
    cards = [
        ("invocations", _int(totals.get("invocations"))),
        ("cold starts", _count_pct(totals.get("cold_starts"), totals.get("cold_start_pct"))),
        ("errors, timeouts, OOM kills", _int(failures)),
        ("throttles", _int(totals.get("throttles"))),
        ("cost x86_64", _usd(totals["cost_usd"]["x86_64"])),
        ("cost arm64", _usd(totals["cost_usd"]["arm64"])),
    ]
    if window_ms:
        cards.append(
            ("per month x86_64 / arm64", " / ".join(_usd(_month(totals["cost_usd"][a], window_ms)) for a in _ARCHS))
        )
    return (
        '<div class="cards">'
        + "".join(f'<div class="card">{label}<b>{value}</b></div>' for label, value in cards)
        + "</div>"
    )


_ARCHS = ("x86_64", "arm64")


def _overview(functions: list[dict[str, Any]], anchors: dict[str, str], fleet_chart: str | None) -> str:
    """The fleet over time, and the functions ranked by cost, error rate and cold-start share."""

    def name(f: dict[str, Any]) -> str:
        anchor = anchors.get(f["function"])
        label = _text(f["function"], 90)
        return f'<a href="#{anchor}">{label}</a>' if anchor else label

    def rate(f: dict[str, Any]) -> float:
        return _failures(f) / f["invocations"] if f["invocations"] else 0.0

    by_cost = functions[:RANKED]
    by_errors = sorted((f for f in functions if _failures(f)), key=lambda f: (-rate(f), -_failures(f)))[:RANKED]
    by_cold = sorted(
        (f for f in functions if f["cold_starts"]), key=lambda f: (-(f["cold_start_pct"] or 0), -f["cold_starts"])
    )
    tables = [
        _table(
            "By cost",
            ("#", "function", "invocations", "x86_64", "arm64"),
            [
                (n, name(f), _int(f["invocations"]), *(_usd(f["cost_usd"][a]) for a in _ARCHS))
                for n, f in enumerate(by_cost, 1)
            ],
        ),
        _table(
            "By error rate (errors, timeouts, OOM kills)",
            ("#", "function", "invocations", "failed", "rate"),
            [
                (n, name(f), _int(f["invocations"]), _int(_failures(f)), _pct(100 * rate(f)))
                for n, f in enumerate(by_errors, 1)
            ],
        ),
        _table(
            "By cold-start share",
            ("#", "function", "invocations", "cold starts", "share"),
            [
                (n, name(f), _int(f["invocations"]), _int(f["cold_starts"]), _pct(f["cold_start_pct"]))
                for n, f in enumerate(by_cold[:RANKED], 1)
            ],
        ),
    ]
    if fleet_chart:
        tables.insert(0, f"<h3>All functions over time</h3>{fleet_chart}")
    return '<div class="grid">' + "".join(f'<div class="panel">{table}</div>' for table in tables) + "</div>"


def _table(title: str, headings: Sequence[str], rows: list[Sequence[Any]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headings)}" style="text-align:left">none</td></tr>'
    return f"<h3>{title}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(f: dict[str, Any], anchor: str, state: Any, view: dict[str, Any], window_ms: int | None) -> str:
    duration, init, memory = f["duration_ms"], f["init_duration_ms"], f["memory"]
    out = [f'<section id="{anchor}"><h2>{_text(f["function"], 300)}</h2>']
    facts = [
        f"{_int(f['invocations'])} invocations",
        f"{_count_pct(f['cold_starts'], f['cold_start_pct'])} cold starts",
        ", ".join(f"{key} {_ms(duration[key])}" for key in ("p50", "p95", "p99", "max")),
    ]
    if f.get("log_group"):
        facts.append(f"log group {_text(f['log_group'], 200)}")
    out.append(f'<p class="facts">{" &middot; ".join(facts)}</p>')
    if memory.get("hint"):
        out.append(f'<p class="hint">Memory: {_text(memory["hint"], 300)}</p>')
    panels = []
    series = view["functions"].get(f["function"])
    if series and any(map(any, series.values())):
        panels.append(("Invocations, cold starts and errors over time", _activity_chart(series, view)))
    if state is not None:
        durations = [("p50", duration["p50"]), ("p95", duration["p95"]), ("p99", duration["p99"])]
        panels.append(("Duration (ms, log scale)", _log_histogram(state.duration, durations, _BLUE)))
        inits = [("p50", init["p50"]), ("p95", init["p95"])]
        panels.append(("Init duration of cold starts (ms, log scale)", _log_histogram(state.init, inits, _ORANGE)))
        panels.append(("Max memory used per invocation (MB)", _memory_chart(state.memory_used, memory)))
    panels.append(("Cost per day and per month (30 days)", _cost_chart(f["cost_usd"], window_ms)))
    panels.append(("Timeouts, out-of-memory kills, errors and throttles", _failure_chart(f)))
    out.append('<div class="grid">')
    for title, chart in panels:
        out.append(f'<div class="panel"><h3>{title}</h3>{chart}</div>')
    out.append("</div></section>")
    return "".join(out)


def _metrics(report: dict[str, Any], view: dict[str, Any]) -> str:
    metrics = report["metrics"][:MAX_METRIC_CHARTS]
    if not metrics:
        return ""
    out = ['<section id="metrics"><h2>Busiest custom metrics</h2>']
    out.append('<p class="note">Bars: values per bucket; line: their mean.</p><div class="grid">')
    for m in metrics:
        unit = f" ({_text(m['unit'], 40)})" if m.get("unit") else ""
        title = f"{_text(m['name'], 120)}{unit}: {_int(m['values'])} values"
        series = view["metrics"].get(m["name"])
        chart = _metric_chart(series) if series and any(series["values"]) else _empty("no values in the time window")
        out.append(f'<div class="panel"><h3>{title}</h3>{chart}</div>')
    out.append("</div></section>")
    return "".join(out)


# --- charts -------------------------------------------------------------------------------------------


def _svg(label: str, body: list[str], height: int = _H) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {_W} {height}" role="img" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{label}</title>{''.join(body)}</svg>"
    )


def _empty(reason: str) -> str:
    return f'<p class="note">{reason}</p>'


def _activity_chart(series: dict[str, list[int]], view: dict[str, Any]) -> str:
    """Invocations with their cold starts above; errors, and timeouts with OOM kills, in a band below."""
    failed = [sum(values) for values in zip(series["errors"], series["timeouts"], series["out_of_memory"], strict=True)]
    upper, gap = _PH * 2 // 3, 14
    lower = _PH - upper - gap
    top, failed_top = _nice(max(series["invocations"])), _nice(max(failed))
    body = _frame(0, top, _count_label, span=upper)
    body.append(_bars(series["invocations"], top, _BLUE, span=upper, base=_TOP + upper))
    body.append(_bars(series["cold_starts"], top, _ORANGE, span=upper, base=_TOP + upper))
    body += _frame(0, failed_top, _count_label, y0=_TOP + upper + gap, span=lower, lines=2)
    body.append(_bars(failed, failed_top, _PURPLE, span=lower))
    body.append(_bars(series["errors"], failed_top, _RED, span=lower))
    body += _time_axis(view["start_ms"], view["bucket_ms"], view["columns"])
    items = [("invocations", _BLUE), ("cold starts", _ORANGE), ("errors", _RED), ("timeouts, OOM kills", _PURPLE)]
    body.append(_legend(items))
    return _svg("invocations, cold starts and errors per time bucket", body)


def _metric_chart(series: dict[str, Any]) -> str:
    values, means = series["values"], series["mean"]
    top = _nice(max(values))
    finite = [m for m in means if m is not None]
    low, high = min([0.0, *finite]), max([0.0, *finite])
    high = _nice(high) if high > 0 else high
    low = -_nice(-low) if low < 0 else low
    if high == low:
        high = low + 1
    body = _frame(low, high, _value_label)
    body.append(_bars(values, top, "#c6d4e6"))
    body.append(_step_line(means, low, high, _BLUE))
    body.append(f'<text x="{_W - _RIGHT + 4}" y="{_TOP + 4}">{_count_label(top)}</text>')
    body.append(f'<text x="{_W - _RIGHT + 4}" y="{_TOP + _PH}">0</text>')
    body += _time_axis(series["start_ms"], series["bucket_ms"], len(values))
    body.append(_legend([("mean value", _BLUE), ("values (right axis)", "#c6d4e6")]))
    return _svg("custom metric values and their mean per time bucket", body)


def _log_histogram(sketch: Quantiles, markers: list[tuple[str, float | None]], color: str) -> str:
    """The sketch's logarithmic buckets merged into HISTOGRAM_BINS bins, x in log10 of milliseconds."""
    if not sketch.buckets:
        return _empty("none" if not sketch.count else f"{sketch.count:,} at 0 ms or less")
    keys = sketch.buckets
    first, last = min(keys) - 1, max(keys)
    per_bin = max(1, math.ceil((last - first) / HISTOGRAM_BINS))
    bins = [0] * math.ceil((last - first) / per_bin)
    for key, count in keys.items():
        bins[min(len(bins) - 1, (key - first - 1) // per_bin)] += count
    to_log10 = _LOG_GAMMA / math.log(10)
    low, high = first * to_log10, (first + per_bin * len(bins)) * to_log10

    def x(log_value: float) -> float:
        return _LEFT + (log_value - low) / (high - low) * _PW

    top = _nice(max(bins))
    body = _frame(0, top, _count_label)
    width = _PW / len(bins)
    body.append(_bars(bins, top, color, width))
    for tick in _log_ticks(low, high):
        body.append(f'<text x="{_c(x(tick))}" y="{_H - _BOTTOM + 16}" text-anchor="middle">{_ms_tick(tick)}</text>')
        body.append(f'<path d="M{_c(x(tick))} {_TOP + _PH}v4" stroke="#57606a"/>')
    for n, (label, value) in enumerate(markers):
        value = _finite(value)
        if value is None or value <= 0:
            continue
        at = _c(min(max(x(math.log10(value)), _LEFT), _LEFT + _PW))
        body.append(f'<path d="M{at} {_TOP}V{_TOP + _PH}" stroke="{_RED}" stroke-dasharray="4 3"/>')
        body.append(f'<text x="{at}" y="{_TOP - 4 - 10 * (n % 2)}" text-anchor="middle" fill="{_RED}">{label}</text>')
    if sketch.non_positive:
        body.append(
            f'<text x="{_W - _RIGHT}" y="{_H - 2}" text-anchor="end">{sketch.non_positive:,} at 0 ms or less</text>'
        )
    return _svg("distribution with percentiles marked", body)


def _memory_chart(used: dict[int, int], memory: dict[str, Any]) -> str:
    values = {v: n for v, n in ((_finite(value), n) for value, n in used.items()) if v is not None and v >= 0}
    if not values:
        return _empty("no memory figures")
    configured = _finite(memory.get("configured_mb"))
    high = max(max(values), configured or 0) * 1.05 or 1.0
    bins = [0] * HISTOGRAM_BINS
    for value, count in values.items():
        bins[min(HISTOGRAM_BINS - 1, int(value / high * HISTOGRAM_BINS))] += count
    top = _nice(max(bins))
    body = _frame(0, top, _count_label)
    body.append(_bars(bins, top, _GREEN, _PW / HISTOGRAM_BINS))
    for n in range(5):
        mb = high * n / 4
        body.append(_label(_LEFT + _PW * n / 4, _H - _BOTTOM + 16, _value_label(mb)))
    if configured is not None:
        at = _c(_LEFT + configured / high * _PW)
        body.append(f'<path d="M{at} {_TOP}V{_TOP + _PH}" stroke="{_RED}" stroke-width="2"/>')
        body.append(_label(float(at), _TOP - 6, f"memory size {_value_label(configured)} MB", "end", _RED))
    return _svg("max memory used against memory size", body)


def _cost_chart(cost: dict[str, float], window_ms: int | None) -> str:
    """Two panels, each on its own scale: per day and per month, x86_64 and arm64 side by side."""
    if not window_ms:
        return _empty(f"{_usd(cost['x86_64'])} (x86_64), {_usd(cost['arm64'])} (arm64) in all; no time window known")
    body = []
    half = _W / 2
    for n, (label, days) in enumerate((("per day", 1), ("per month (30 days)", 30))):
        amounts = [(arch, _finite(cost[arch] * DAY_MS * days / window_ms)) for arch in _ARCHS]
        top = max([a for _, a in amounts if a is not None] or [0]) or 1.0
        left = n * half
        body.append(f'<text x="{_c(left + half / 2)}" y="{_H - 6}" text-anchor="middle">{label}</text>')
        body.append(f'<path d="M{_c(left + 30)} {_TOP + _PH}H{_c(left + half - 30)}" stroke="#8c959f"/>')
        for i, (arch, amount) in enumerate(amounts):
            x = left + 50 + i * (half - 100) / 2
            bar_width = (half - 100) / 2 - 20
            color = (_BLUE, _GREEN)[i]
            body.append(f'<text x="{_c(x + bar_width / 2)}" y="{_H - _BOTTOM + 16}" text-anchor="middle">{arch}</text>')
            if amount is None:
                body.append(
                    f'<text x="{_c(x + bar_width / 2)}" y="{_TOP + _PH - 6}" text-anchor="middle">not finite</text>'
                )
                continue
            height = max(amount / top * (_PH - 16), 1)
            y = _TOP + _PH - height
            size = f'width="{_c(bar_width)}" height="{_c(height)}"'
            body.append(f'<rect class="m" x="{_c(x)}" y="{_c(y)}" {size} fill="{color}"/>')
            body.append(_label(x + bar_width / 2, y - 4, _usd(amount)))
    return _svg("estimated cost per day and per month on x86_64 and arm64", body)


def _failure_chart(f: dict[str, Any]) -> str:
    items = [("timeouts", f["timeouts"], _PURPLE), ("out-of-memory kills", f["out_of_memory"], _PURPLE)]
    items += [(f"error: {name}", n, _RED) for name, n in list(f["errors"].items())[:8]]
    items += [(f"throttle: {code}", n, _ORANGE) for code, n in list(f["throttles"].items())[:5]]
    items += [(f"init error: {name}", n, _GREY) for name, n in list(f["init_errors"].items())[:5]]
    items = [item for item in items if item[1]]
    if not items:
        return _empty("No timeouts, out-of-memory kills, errors or throttles.")
    label_width, row = 200, 22
    height = _TOP + row * len(items) + 10
    top = max(n for _, n, _ in items)
    body = []
    for i, (label, count, color) in enumerate(items):
        y = _TOP + i * row
        width = max(count / top * (_W - label_width - 90), 1)
        body.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end"><title>{_text(label, 300)}</title>'
            f"{_text(label, 30)}</text>"
        )
        body.append(
            f'<rect class="m" x="{label_width}" y="{y + 3}" width="{_c(width)}" height="{row - 6}" fill="{color}"/>'
        )
        body.append(f'<text x="{_c(label_width + width + 4)}" y="{y + 15}">{count:,}</text>')
    return _svg("timeouts, out-of-memory kills, errors by type and throttles by code", body, height)


# --- drawing helpers ----------------------------------------------------------------------------------


def _frame(low: float, high: float, label: Any, y0: float = _TOP, span: float = _PH, lines: int = 3) -> list[str]:
    """Axes and horizontal grid lines for values from `low` to `high`, in the band from `y0` down `span`."""
    out = []
    for n in range(lines):
        value = low + (high - low) * n / (lines - 1)
        y = _c(y0 + span - (value - low) / (high - low) * span)
        out.append(f'<path d="M{_LEFT} {y}H{_W - _RIGHT}" stroke="#eaeef2"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y}" dy="4" text-anchor="end">{label(value)}</text>')
    out.append(f'<path d="M{_LEFT} {_c(y0)}V{_c(y0 + span)}H{_W - _RIGHT}" fill="none" stroke="#8c959f"/>')
    return out


def _y(value: float, low: float, high: float) -> float:
    return _TOP + _PH - (value - low) / (high - low) * _PH


def _bars(
    values: Sequence[float],
    top: float,
    color: str,
    width: float | None = None,
    base: float = _TOP + _PH,
    span: float = _PH,
) -> str:
    """One bar per value from the `base` line up, `span` high for `top`; none for 0."""
    width = width or _PW / max(len(values), 1)
    parts = [
        f"M{_c(_LEFT + i * width)} {_c(base)}v-{_c(h)}h{_c(max(width - 1, 0.5))}v{_c(h)}z"
        for i, value in enumerate(values)
        if value and (h := max(value / top * span, 1))
    ]
    return f'<path class="m" d="{"".join(parts)}" fill="{color}"/>' if parts else ""


def _step_line(values: Sequence[float | None], low: float, high: float, color: str) -> str:
    """One horizontal segment per bucket, joined; a gap where a value is missing."""
    width = _PW / max(len(values), 1)
    parts, joined = [], False
    for i, value in enumerate(values):
        if value is None:
            joined = False
            continue
        y = _c(_y(value, low, high))
        parts.append(f"{'V' if joined else f'M{_c(_LEFT + i * width)} '}{y}H{_c(_LEFT + (i + 1) * width)}")
        joined = True
    return f'<path class="m" d="{"".join(parts)}" fill="none" stroke="{color}" stroke-width="2"/>' if parts else ""


def _time_axis(start_ms: int, bucket_ms: int, count: int) -> list[str]:
    width = _PW / max(count, 1)
    span = count * bucket_ms
    fmt = "%H:%M:%S" if span <= 600_000 else "%H:%M" if span <= 2 * DAY_MS else "%m-%d %H:%M"
    ticks = sorted({round(n * count / 5) for n in range(6)})
    out = []
    for i in ticks:
        x = _c(_LEFT + i * width)
        when = time.strftime(fmt, time.gmtime((start_ms + i * bucket_ms) / 1000))
        out.append(f'<path d="M{x} {_TOP + _PH}v4" stroke="#57606a"/>')
        out.append(f'<text x="{x}" y="{_H - _BOTTOM + 16}" text-anchor="middle">{when}</text>')
    return out


def _label(x: float, y: float, text: str, anchor: str = "middle", fill: str | None = None) -> str:
    """SVG text at (x, y); `text` is already escaped."""
    colour = f' fill="{fill}"' if fill else ""
    return f'<text x="{_c(x)}" y="{_c(y)}" text-anchor="{anchor}"{colour}>{text}</text>'


def _legend(items: Iterable[tuple[str, str]]) -> str:
    out, x = [], _LEFT
    for label, color in items:
        out.append(
            f'<rect x="{x}" y="6" width="10" height="10" fill="{color}"/><text x="{x + 14}" y="15">{label}</text>'
        )
        x += 24 + 6 * len(label)
    return "".join(out)


def _log_ticks(low: float, high: float) -> list[float]:
    """log10 of the tick values between `low` and `high`: powers of ten, and 2 and 5 times them on a short axis."""
    first, last = math.floor(low), math.ceil(high)
    step = max(1, math.ceil((last - first + 1) / 8))
    multiples = (1, 2, 5) if last - first <= 3 else (1,)
    ticks = [d + math.log10(m) for d in range(first, last + 1, step) for m in multiples]
    inside = [t for t in ticks if low <= t <= high]
    return inside if len(inside) >= 2 else [low, high]


def _sum_series(all_series: Iterable[dict[str, list[int]]]) -> dict[str, list[int]] | None:
    total: dict[str, list[int]] | None = None
    for series in all_series:
        if total is None:
            total = {key: list(values) for key, values in series.items()}
        else:
            for key, values in series.items():
                total[key] = [a + b for a, b in zip(total[key], values, strict=True)]
    return total


def _nice(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (1 for nothing)."""
    value = _finite(value) or 0
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        nice = step * power
        if value <= nice:
            # Near the largest float (1.8e308) the next round number is no float: the value is the top.
            return float(nice) if nice <= sys.float_info.max else float(value)
    return float(value)


def _c(value: float) -> str:
    """An SVG coordinate: finite, bounded, one decimal."""
    if not math.isfinite(value):
        value = 0.0
    return f"{min(max(value, -1e5), 1e5):.1f}".removesuffix(".0")


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


# --- text ---------------------------------------------------------------------------------------------


def _text(value: Any, limit: int = 200) -> str:
    """Text from logs for the page: control characters shown as escapes, cut to `limit`, HTML-escaped."""
    text = value if isinstance(value, str) else str(value)
    text = printable(text[: limit + 1])
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def _int(value: Any) -> str:
    number = _finite(value)
    return "-" if number is None else f"{number:,.0f}" if abs(number) < 1e15 else f"{number:.3g}"


def _count_pct(count: Any, pct: Any) -> str:
    return _int(count) if _finite(pct) is None else f"{_int(count)} ({_pct(pct)})"


def _pct(value: Any) -> str:
    number = _finite(value)
    return "-" if number is None else f"{number:.1f}%"


def _usd(value: Any) -> str:
    number = _finite(value)
    return "not finite" if number is None else format_usd(number)


def _ms(value: Any) -> str:
    number = _finite(value)
    if number is None:
        return "-"
    return (
        f"{number:,.1f} ms" if abs(number) < 100 else f"{number:,.0f} ms" if abs(number) < 1e15 else f"{number:.3g} ms"
    )


def _ms_tick(log10_ms: float) -> str:
    if -3 <= log10_ms < 3:
        return f"{10.0**log10_ms:.3g} ms"
    if 3 <= log10_ms < 6:
        return f"{10.0 ** (log10_ms - 3):.3g} s"
    return f"{10.0**log10_ms:.0e} ms" if log10_ms < 300 else f"1e{log10_ms:.0f} ms"


def _count_label(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) and value < 1e6 else f"{value:.2g}"


def _value_label(value: float) -> str:
    return f"{value:,.0f}" if 1 <= abs(value) < 1e6 else f"{value:.3g}"


def _size(value: Any) -> str:
    number = _finite(value)
    return "-" if number is None else f"{number / 1e6:,.1f} MB"


def _duration(ms: int) -> str:
    for unit, size in (("d", DAY_MS), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size:
            amount = ms / size
            return f"{amount:g} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{ms} ms"


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def _month(cost: Any, window_ms: int) -> float | None:
    number = _finite(cost)
    return None if number is None else _finite(number * 30 * DAY_MS / window_ms)


def _failures(f: dict[str, Any]) -> int:
    return sum(f["errors"].values()) + f["timeouts"] + f["out_of_memory"]
