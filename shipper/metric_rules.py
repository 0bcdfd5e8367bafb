"""What every metrics destination agrees on: which tags identify a request, and what a unit word means.

CloudWatch dimensions (shipper.sinks.cloudwatch_metrics) and Prometheus labels (shipper.telemetry)
both read these, so a tag refused as one is refused as the other, and `ms` is milliseconds to both.
Pure functions and tables: no I/O, nothing heavier than `re`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["PER_SECOND", "UNITS", "Unit", "identifies_request", "snake_case", "unit_of"]

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")
# Where a word starts inside camelCase or an acronym: processingTime, HTTPErrors.
_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_ID_WORDS = ("request", "trace", "span", "correlation", "invocation", "execution")
# In snake_case: `request_id`, `requestid`, `x_trace_id_hash`, `awsrequest_id`: `id` a whole word or the end.
_ID_TAG = re.compile(rf"(?:{'|'.join(_ID_WORDS)})_?id(?:_|$)")


def snake_case(text: str) -> str:
    """`ProcessingTime`, `orders.processed`, `HTTP-5xx` -> `processing_time`, `orders_processed`, `http_5xx`."""
    return _NOT_ALNUM.sub("_", _WORD_START.sub("_", text)).strip("_").lower()


def identifies_request(tag: str) -> bool:
    """Whether a tag names a per-request identifier (`request_id`, `traceId`, `x-correlation-id`, ...).

    Such a tag is never a CloudWatch dimension nor a Prometheus label: each value would start a new series.
    """
    return _ID_TAG.search(snake_case(tag)) is not None


class Unit(NamedTuple):
    """What one unit word means."""

    cloudwatch: str | None
    """The CloudWatch unit it is (None: CloudWatch has no such unit; it is sent as `None`)."""
    base: str
    """The Prometheus base unit its values are scaled to (`seconds`, `bytes`, `ratio`; "" for a count)."""
    factor: float
    """What one of it is in the base unit."""


def _unit(cloudwatch: str | None, base: str, factor: float, *words: str) -> dict[str, Unit]:
    return dict.fromkeys(words, Unit(cloudwatch, base, factor))


UNITS: dict[str, Unit] = {
    **_unit(None, "seconds", 1e-9, "ns", "nanosecond"),
    **_unit("Microseconds", "seconds", 1e-6, "us", "µs", "μs", "microsecond"),
    **_unit("Milliseconds", "seconds", 1e-3, "ms", "msec", "millisecond"),
    **_unit("Seconds", "seconds", 1.0, "s", "sec", "second"),
    **_unit(None, "seconds", 60.0, "min", "minute"),
    **_unit(None, "seconds", 3600.0, "h", "hour"),
    **_unit(None, "seconds", 86400.0, "d", "day"),
    **_unit("Bytes", "bytes", 1.0, "b", "byte"),
    **_unit("Kilobytes", "bytes", 1024.0, "kb", "kib", "kilobyte"),
    **_unit("Megabytes", "bytes", 1024.0**2, "mb", "mib", "megabyte"),
    **_unit("Gigabytes", "bytes", 1024.0**3, "gb", "gib", "gigabyte"),
    **_unit("Terabytes", "bytes", 1024.0**4, "tb", "tib", "terabyte"),
    **_unit(None, "bytes", 1024.0**5, "pb", "pib", "petabyte"),
    **_unit("Bits", "bytes", 1 / 8, "bit"),
    **_unit("Kilobits", "bytes", 1024 / 8, "kbit", "kilobit"),
    **_unit("Megabits", "bytes", 1024**2 / 8, "mbit", "megabit"),
    **_unit("Gigabits", "bytes", 1024**3 / 8, "gbit", "gigabit"),
    **_unit("Terabits", "bytes", 1024**4 / 8, "tbit", "terabit"),
    **_unit("Percent", "ratio", 0.01, "%", "percent", "pct", "percentage"),
    **_unit(None, "ratio", 1.0, "ratio"),
    **_unit("Count", "", 1.0, "", "count"),
    **_unit("None", "", 1.0, "none", "1"),
}
"""Unit words in lower case and singular (a plural `s` is dropped when looking one up)."""

PER_SECOND = frozenset({"s", "sec", "second"})
"""What may follow `/` in a rate (`KB/s`)."""


def unit_of(word: str) -> Unit | None:
    """The Unit a word in lower case names, singular or plural (`ms`, `bytes`, `%`); None when unknown."""
    return UNITS.get(word) or (UNITS.get(word[:-1]) if word.endswith("s") else None)
