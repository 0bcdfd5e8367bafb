"""CloudWatch dimensions and Prometheus labels refuse the same tags, and read a unit the same way."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.errors import ConfigError
from shipper.metric_rules import UNITS
from shipper.sinks.cloudwatch_metrics import _dimensions, _is_name, cloudwatch_unit, collect_metrics
from shipper.sinks.packing import Outcome
from shipper.telemetry.config import telemetry_config
from shipper.telemetry.naming import RESERVED_LABELS, label_name, unit_suffix

WHERE = {"prefix": "p", "labels": "labels", "max_series": "s", "max_metrics": "m"}

_words = st.sampled_from(["request", "trace", "span", "correlation", "invocation", "execution", "user", "order"])
_tags = st.builds(
    lambda before, word, sep, after, upper: (
        "".join([before, word, sep, after]).upper() if upper else "".join([before, word, sep, after])
    ),
    st.sampled_from(["", "x-", "my", "aws_", "http."]),
    _words,
    st.sampled_from(["", "_", "-", ".", "I"]),
    st.sampled_from(["id", "Id", "ID", "ids", "id_hash", "name", "identity", ""]),
    st.booleans(),
) | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)


def _cloudwatch_refuses(tag: str) -> bool:
    return _dimensions({tag: "value"}, None) == ()


def _prometheus_refuses(tag: str) -> bool:
    try:
        telemetry_config(labels=[tag], where=WHERE)
    except ConfigError as exc:
        assert "identifies a request" in str(exc) or "cannot be a label" in str(exc)
        return "identifies a request" in str(exc)
    return False


@settings(max_examples=300)
@given(_tags)
def test_a_tag_is_refused_as_a_dimension_exactly_when_it_is_refused_as_a_label(tag: str) -> None:
    label = label_name(tag)
    if not label or label in RESERVED_LABELS or label.startswith("_") or tag.startswith((":", "_aws")):
        return  # refused by one of them for reasons of its own
    assert _is_name(tag, 255)
    assert _cloudwatch_refuses(tag) == _prometheus_refuses(tag), tag


@pytest.mark.parametrize("tag", ["request_id", "traceId", "x-correlation-id", "InvocationID", "execution.id"])
def test_request_identifiers_are_neither_dimensions_nor_labels(tag: str) -> None:
    assert _cloudwatch_refuses(tag) and _prometheus_refuses(tag)


# What each CloudWatch unit is in Prometheus base units.
_BASE = {
    "Microseconds": ("seconds", 1e-6),
    "Milliseconds": ("seconds", 1e-3),
    "Seconds": ("seconds", 1.0),
    "Bytes": ("bytes", 1.0),
    "Kilobytes": ("bytes", 1024.0),
    "Megabytes": ("bytes", 1024.0**2),
    "Gigabytes": ("bytes", 1024.0**3),
    "Terabytes": ("bytes", 1024.0**4),
    "Bits": ("bytes", 1 / 8),
    "Kilobits": ("bytes", 1024 / 8),
    "Megabits": ("bytes", 1024**2 / 8),
    "Gigabits": ("bytes", 1024**3 / 8),
    "Terabits": ("bytes", 1024**4 / 8),
    "Percent": ("ratio", 0.01),
    "Count": ("", 1.0),
}

_unit_words = st.sampled_from(sorted(UNITS)) | st.text(st.sampled_from("abcdegiklmnoprstuµ%"), max_size=6)


@settings(max_examples=300)
@given(_unit_words, st.sampled_from(["", "s", "/s", "/sec", "/Second", "/min"]), st.booleans())
def test_cloudwatch_and_prometheus_read_a_unit_the_same_way(word: str, tail: str, title: bool) -> None:
    unit = (word.title() if title else word) + tail
    if not unit.strip():
        return
    cloudwatch = cloudwatch_unit(unit)
    if cloudwatch == "None":
        return
    base, _, per = cloudwatch.partition("/")
    suffix, factor = _BASE[base]
    if per:
        suffix = f"{suffix}_per_second" if suffix else "per_second"
    assert unit_suffix(unit) == (suffix, pytest.approx(factor)), unit


@given(value=st.one_of(st.integers(min_value=-(10**400), max_value=10**400), st.floats()))
def test_a_value_cloudwatch_cannot_store_fails_that_event_never_the_batch(value) -> None:
    """Any int (400 digits too), inf or NaN: the event is refused for good or taken, never an OverflowError."""
    now = 1_716_222_600.0
    event = {"type": "metric", "timestamp": int(now * 1000), "name": "orders", "value": value, "metric_type": "gauge",
             "unit": None, "namespace": None, "tags": {}, "function": "f", "request_id": None}  # fmt: skip
    outcome = Outcome()
    collect_metrics([event], "Shipper", now, outcome)
    storable = value == 0 or (type(value) in (int, float) and 2**-360 <= abs(value) <= 2**360)
    assert (0 not in outcome.failed) is storable
