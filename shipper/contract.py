"""The structured-event contract: every event type, its fields and their JSON types.

This module is the single written form of the contract in design.md. The classifier builds events
with exactly these fields; tests check every event written against `contract_violations`.
Extend it (new fields, new types); never rename or drop a field.
"""

from __future__ import annotations

from typing import Any

from shipper.bounds import DURATION_MS, EPOCH_MS, MEMORY_MB, METRIC_VALUE, SAMPLE_RATE, TIMEOUT_S, Range

_STR = (str,)
_OPT_STR = (str, type(None))
_OPT_INT = (int, type(None))
_OPT_NUM = (int, float, type(None))
_NUM = (int, float)
_BOOL = (bool,)

#: Fields present on every event (null where unknown).
COMMON_FIELDS: dict[str, tuple[type, ...]] = {
    "type": _STR,
    "timestamp": (int,),
    "function": _OPT_STR,
    "log_group": _OPT_STR,
    "log_stream": _OPT_STR,
    "account": _OPT_STR,
    "request_id": _OPT_STR,
    "event_id": _OPT_STR,
}

#: Fields each event type adds to the common ones.
TYPE_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "invocation": {
        "duration_ms": _OPT_NUM,
        "billed_duration_ms": _OPT_NUM,
        "memory_size_mb": _OPT_INT,
        "max_memory_used_mb": _OPT_INT,
        "init_duration_ms": _OPT_NUM,
        "restore_duration_ms": _OPT_NUM,
        "billed_restore_duration_ms": _OPT_NUM,
        "cold_start": _BOOL,
        "status": _STR,
        "error_type": _OPT_STR,
        "xray_trace_id": _OPT_STR,
        "log_format": _STR,
        "runtime": _OPT_STR,
    },
    "cold_start": {
        "init_duration_ms": _OPT_NUM,
        "restore_duration_ms": _OPT_NUM,
    },
    "timeout": {
        "timeout_s": _OPT_NUM,
        "duration_ms": _OPT_NUM,
    },
    "out_of_memory": {
        "memory_size_mb": _OPT_INT,
        "max_memory_used_mb": _OPT_INT,
        "error_type": _OPT_STR,
        "message": _OPT_STR,
    },
    "throttle": {
        "error_code": _STR,
        "message": _STR,
    },
    "error": {
        "error_type": _OPT_STR,
        "message": _OPT_STR,
    },
    "init_error": {
        "error_type": _OPT_STR,
        "phase": _OPT_STR,
        "status": _STR,
        "init_duration_ms": _OPT_NUM,
    },
    "metric": {
        "name": _STR,
        "value": _NUM,
        "metric_type": _STR,
        "unit": _OPT_STR,
        "namespace": _OPT_STR,
        "tags": (dict,),
        "sample_rate": _OPT_NUM,
        "format": _STR,
        "delta": _BOOL,
    },
    "log": {
        "level": _OPT_STR,
        "message": _STR,
        "fields": (dict, type(None)),
    },
}

EVENT_TYPES = tuple(TYPE_FIELDS)

#: The range of each numeric field, whatever the event type (shipper.bounds): a number outside it,
#: NaN or an infinity breaks the contract.
FIELD_RANGES: dict[str, Range] = {
    "timestamp": EPOCH_MS,
    "duration_ms": DURATION_MS,
    "billed_duration_ms": DURATION_MS,
    "init_duration_ms": DURATION_MS,
    "restore_duration_ms": DURATION_MS,
    "billed_restore_duration_ms": DURATION_MS,
    "memory_size_mb": MEMORY_MB,
    "max_memory_used_mb": MEMORY_MB,
    "timeout_s": TIMEOUT_S,
    "value": METRIC_VALUE,
    "sample_rate": SAMPLE_RATE,
}

INVOCATION_STATUSES = ("success", "timeout", "error")
METRIC_TYPES = ("count", "gauge", "timer", "histogram", "distribution", "set")
METRIC_FORMATS = ("statsd", "datadog", "lumigo", "emf")
LOG_FORMATS = ("text", "json")

_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("invocation", "status"): INVOCATION_STATUSES,
    ("invocation", "log_format"): LOG_FORMATS,
    ("metric", "metric_type"): METRIC_TYPES,
    ("metric", "format"): METRIC_FORMATS,
}


def contract_violations(event: Any) -> list[str]:
    """Return what is wrong with `event` against the contract (empty list when it conforms)."""
    if not isinstance(event, dict):
        return [f"event is a {type(event).__name__}, not an object"]
    event_type = event.get("type")
    if event_type not in TYPE_FIELDS:
        return [f"unknown event type {event_type!r}"]
    expected = {**COMMON_FIELDS, **TYPE_FIELDS[event_type]}
    problems = []
    for name, allowed in expected.items():
        if name not in event:
            problems.append(f"{event_type}: missing field {name!r}")
            continue
        value = event[name]
        # bool is an int subclass: an int field must not hold a bool, and a number must not be one.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            problems.append(f"{event_type}: field {name!r} has {type(value).__name__} {_shown(value)}")
            continue
        bounds = FIELD_RANGES.get(name)
        if bounds is not None and isinstance(value, int | float) and not bounds.low <= value <= bounds.high:
            where = f"outside {bounds.low:g} to {bounds.high:g}"
            problems.append(f"{event_type}: field {name!r} is {_shown(value)}, {where}")
    for name in event.keys() - expected.keys():
        problems.append(f"{event_type}: unexpected field {name!r}")
    for (enum_type, name), allowed_values in _ENUMS.items():
        if enum_type == event_type and event.get(name) not in allowed_values:
            problems.append(f"{event_type}: field {name!r} is {event.get(name)!r}, not one of {allowed_values}")
    if event_type == "metric":
        tags = event.get("tags")
        if isinstance(tags, dict) and not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            problems.append("metric: tags must map strings to strings")
    return problems


def _shown(value: Any) -> str:
    """`value` for a problem's text, short: an integer too long to print is described by its size."""
    if type(value) is int and value.bit_length() > 200:
        return f"an integer of {value.bit_length():,} bits"
    return repr(value)[:60]
