"""Numbers read from log lines, bounded where they are parsed.

Anyone's code can print a REPORT line or a metric line, so a number taken from a log line is hostile
until bounded. These helpers answer None for a number that is not written as a decimal (no `inf`,
`nan`, `0x1p3`, `1_000`), is longer than MAX_NUMBER_CHARS, is not finite, or falls outside its
field's `Range`. The length is checked before float() or int(), so a 5,000-digit field costs one
comparison: never the interpreter's 4,300-digit limit, a quadratic conversion or an integer that
does not fit the 64 bits JSON encoders take. The contract (shipper/contract.py) checks the same
ranges on every event.
"""

from __future__ import annotations

import re
import sys
from typing import Any, NamedTuple


class Range(NamedTuple):
    """Inclusive bounds of a field."""

    low: float
    high: float


MAX_NUMBER_CHARS = 64
"""The longest text read as a number: 17 significant digits and an exponent fit many times over."""

DURATION_MS = Range(0, 86_400_000)
"""Durations in milliseconds (run, billed, init, restore): up to a day. Lambda stops an invocation at 15 minutes."""
MEMORY_MB = Range(0, 1_048_576)
"""Memory sizes in MB (configured, max used): up to 1 TiB. Lambda takes 128 to 10,240 MB."""
TIMEOUT_S = Range(0, 86_400)
"""`Task timed out after N seconds`: up to a day. Lambda's longest timeout is 900 s."""
EPOCH_MS = Range(-62_135_596_800_000, 253_402_300_799_999)
"""Timestamps in epoch milliseconds: the years 0001 to 9999, all an ISO-8601 time can write."""
EPOCH_S = Range(0, 99_999_999_999.999)
"""Epoch seconds on a metric line (whole or fractional, as the Datadog Node.js layer writes them): up to 11 digits."""
SAMPLE_RATE = Range(5e-324, 1.0)
"""A StatsD sample rate: more than 0, at most 1."""
METRIC_VALUE = Range(-sys.float_info.max, sys.float_info.max)
"""A metric value: any finite float64."""

NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A decimal number, plain or with an exponent, as metric libraries write them."""
_WHOLE = re.compile(r"[+-]?[0-9]+")


def text_number(text: str, bounds: Range) -> float | None:
    """The decimal number (plain or with an exponent) written as `text` when it is within `bounds`, else None."""
    if len(text) > MAX_NUMBER_CHARS or NUMBER.fullmatch(text) is None:
        return None
    value = float(text)
    return value if bounds.low <= value <= bounds.high else None


def text_whole(text: str, bounds: Range) -> int | None:
    """The integer written as plain digits in `text` when it is within `bounds`, else None."""
    if len(text) > MAX_NUMBER_CHARS or _WHOLE.fullmatch(text) is None:
        return None
    value = int(text)
    return value if bounds.low <= value <= bounds.high else None


def text_whole_or_number(text: str, bounds: Range) -> int | float | None:
    """`text_whole`, else `text_number`: an int when the text is written as one (billed milliseconds)."""
    value = text_whole(text, bounds)
    return value if value is not None else text_number(text, bounds)


def json_number(value: Any, bounds: Range) -> int | float | None:
    """`value` when it is a JSON number (not a bool) within `bounds` (NaN never is), else None."""
    if type(value) in (int, float) and bounds.low <= value <= bounds.high:
        return value
    return None


def json_whole(value: Any, bounds: Range) -> int | None:
    """`value` as an int when it is a whole JSON number (1024 or 1024.0) within `bounds`, else None."""
    if type(value) is int:
        return value if bounds.low <= value <= bounds.high else None
    if type(value) is float and bounds.low <= value <= bounds.high and value.is_integer():
        return int(value)
    return None
