"""Prometheus names for custom metrics: sanitised, snake_case, with the unit folded in as a base unit.

    metric_name("app_", "ProcessingTime", "Milliseconds", "histogram") -> ("app_processing_time_seconds", 0.001)
    metric_name("app_", "orders.processed", None, "counter")           -> ("app_orders_processed_total", 1.0)
    metric_name("app_", "payload.kb", None, "gauge")                   -> ("app_payload_bytes", 1024.0)

Prometheus names match [a-zA-Z_:][a-zA-Z0-9_:]* (colons belong to recording rules and are not used
here), are snake_case by convention, and say their unit as a suffix in a base unit: seconds, bytes,
ratio. A value written in another unit (ms, KB, %) is scaled to the base unit. Counters end in
`_total`. Pure functions, no prometheus_client.
"""

from __future__ import annotations

from shipper.metric_rules import PER_SECOND, snake_case, unit_of

MAX_NAME_CHARS = 128
"""Longest metric name part kept from a log line (before the prefix and suffixes)."""
MAX_LABEL_VALUE_CHARS = 256
"""Longer label values are cut: a label value is for grouping, not for carrying text."""

RESERVED_LABELS = frozenset({"function", "le", "quantile", "job", "instance"})


def _base_unit(key: str) -> tuple[str, float] | None:
    """(suffix, factor) for a unit word in lower case, singular or plural; None when unknown."""
    known = unit_of(key)
    return None if known is None else (known.base, known.factor)


def unit_suffix(unit: str | None) -> tuple[str, float]:
    """(name suffix, factor to the base unit) for a metric's unit: ("seconds", 0.001) for `Milliseconds`.

    Rates per second become `<base>_per_second`; an unknown unit is kept as a snake_case suffix,
    unscaled; no unit, `Count` and `None` add nothing.
    """
    key = (unit or "").strip().lower()
    known = _base_unit(key)
    if known is not None:
        return known
    base, per, rate = key.partition("/")
    if per and rate in PER_SECOND:
        known = _base_unit(base)
        if known is not None:
            suffix, factor = known
            return (f"{suffix}_per_second" if suffix and suffix != "ratio" else "per_second"), factor
    return snake_case(key), 1.0


def metric_name(prefix: str, name: str, unit: str | None, kind: str) -> tuple[str, float] | None:
    """(Prometheus name, factor to scale values by) for a custom metric of `kind` (counter, gauge, histogram).

    None when nothing of the name is usable. Beyond sanitising, the name is made one that promtool's
    lint accepts: a unit written at its end (`latency_ms`, `payload.kb`) is folded like a unit (the
    metric's own unit, when it has one, wins); the word of its own type (`jobs.gauge`) is dropped; a
    gauge or histogram that would end in `_total`, or a gauge ending in `_count`, `_sum` or `_bucket`
    (suffixes Prometheus gives counters and histograms), gets `_value` appended.
    """
    words = snake_case(name)[:MAX_NAME_CHARS].split("_")
    words = [word for word in words if word and word != kind] or [word for word in words if word]
    if kind == "counter" and len(words) > 1 and words[-1] == "total":
        words.pop()
    if not words:
        return None
    suffix, factor = unit_suffix(unit)
    named = _base_unit(words[-1]) if len(words) > 1 else None
    if named is not None and named[0]:
        words.pop()
        if not suffix:
            suffix, factor = named
    if suffix and words[-len(suffix.split("_")) :] != suffix.split("_"):
        words.append(suffix)
    if kind != "counter" and (words[-1] == "total" or (kind == "gauge" and words[-1] in ("count", "sum", "bucket"))):
        words.append("value")
    return f"{prefix}{'_'.join(words)}{'_total' if kind == 'counter' else ''}", factor


def label_name(tag: str) -> str:
    """The label a tag becomes: snake_case, never starting with a digit or `__` (reserved by Prometheus)."""
    name = snake_case(tag)
    return f"tag_{name}" if name[:1].isdigit() else name


def label_value(text: str | None) -> str:
    """A label value: the text cut to MAX_LABEL_VALUE_CHARS; "" for none (Prometheus: the label is absent)."""
    return "" if text is None else text[:MAX_LABEL_VALUE_CHARS]
