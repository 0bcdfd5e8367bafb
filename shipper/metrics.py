"""Custom metrics written as log lines: StatsD/DogStatsD, Datadog, Lumigo and CloudWatch EMF.

`parse_metric_text` reads the text of a line (after any Lambda runtime prefix); `parse_metric_object`
reads a line already parsed as a JSON object. Both answer with one of:

- None: the line is not a metric line (the common case, settled by a substring or key check);
- a list of metric dicts, one per value, each with exactly the keys timestamp, name, value,
  metric_type, unit, namespace, tags, sample_rate, format, delta and request_id;
- MalformedMetric(reason): the line claims to be a metric line but is invalid. The caller keeps it
  as an ordinary log line and counts it.

Neither function raises, whatever the line holds. Formats and their samples: reference/formats.md §6.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from shipper.bounds import EPOCH_S, METRIC_VALUE, NUMBER, SAMPLE_RATE, json_number, text_number

#: At most this many values in one metric (packed StatsD values, an EMF value array).
MAX_VALUES_PER_METRIC = 1000
#: At most this many values in all on one line (a StatsD packet, an EMF document): an EMF document
#: naming one 1,000-value member in 2,000 metric definitions is 28 KB that would be 2,000,000 events.
#: CloudWatch takes at most 100 metrics of 100 values each in one EMF document.
MAX_VALUES_PER_LINE = 10_000
#: At most this many tags (or dimensions) on one line.
MAX_TAGS_PER_LINE = 1000

# Epoch seconds longer than this are not seconds (10**11 s is past the year 5000); the cap also keeps
# int() away from the interpreter's digit limit on hostile input.
_MAX_EPOCH_SECONDS_DIGITS = 11
_MAX_EPOCH_SECONDS = 10**_MAX_EPOCH_SECONDS_DIGITS

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
# The head of a StatsD line, `name:value|type` followed by `|` or the end of the line. The value
# part admits letters and `_` so that `x:nan|g` or `x:user_1|s` are reported as malformed, but no
# `/`, space or `=`, so that URLs and prose do not claim to be metrics.
_STATSD_HEAD = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*:[-+.:0-9A-Za-z_]+\|(?:c|ms|g|s|h|d)(?:\||$)", re.MULTILINE)
_MONITORING = re.compile(r"MONITORING\|(\S*)")

# Fast paths: the shapes libraries actually write, read by one regex each. Anything else (sets, exponents,
# sections out of the usual order, malformed lines) goes to the general parsers below, which give the
# same answer for these shapes and a reason for the rest.
_DECIMAL = r"[+-]?[0-9]{1,20}(?:\.[0-9]{1,20})?"
_STATSD_COMMON = re.compile(
    r"([A-Za-z][A-Za-z0-9_.\-]*)"
    rf":({_DECIMAL}(?::{_DECIMAL})*)"
    r"\|(c|ms|g|h|d)"
    r"(?:\|@([0-9]{0,10}\.?[0-9]{1,10}))?"
    r"(?:\|#([^|\n]*))?"
    r"(?:\|c:[^|\n]*)?(?:\|e:[^|\n]*)?(?:\|card:[^|\n]*)?"
    r"(?:\|T([0-9]{1,11}))?"
)
_DATADOG_COMMON = re.compile(
    rf"([0-9]{{1,11}}(?:\.[0-9]{{1,9}})?)\|({_DECIMAL})\|(count|gauge|histogram|distribution)\|([A-Za-z][A-Za-z0-9_.\-]*)(?:\|#([^|\s]*))?"
)
_LUMIGO_COMMON = re.compile(rf"({_DECIMAL})\|([A-Za-z][^|\s]*)\|([^|\s]+)\|([^|\s]+)\|([^|\s]*)")

_STATSD_TYPES = {"c": "count", "ms": "timer", "g": "gauge", "s": "set", "h": "histogram", "d": "distribution"}
_STATSD_IGNORED_SECTIONS = ("c", "e", "card")
_DATADOG_TYPES = ("count", "gauge", "histogram", "distribution")
_DATADOG_OBJECT_KEYS = ("m", "v", "e", "t")
_UNIT_TYPES = {"count": "count", "seconds": "timer", "milliseconds": "timer", "microseconds": "timer"}
_EMF_STORAGE_RESOLUTIONS = (1, 60)


class MalformedMetric(NamedTuple):
    """A line that claims to be a metric line but is not a valid one."""

    reason: str
    """One sentence a user understands: what was expected and what the line held."""


def parse_metric_text(body: str, timestamp_ms: int) -> list[dict[str, Any]] | MalformedMetric | None:
    """Metrics in the text of a log line; `timestamp_ms` is the log event's time.

    Reads StatsD/DogStatsD packets (format "statsd"), the Datadog `MONITORING|<epoch>|...` form
    ("datadog") and the Lumigo `MONITORING|<value>|<unit>|...` form ("lumigo"), which is found
    anywhere in the line. A DogStatsD line may carry `|c:<container>`, `|e:<external data>` and
    `|card:<cardinality>` sections: they are accepted and not kept.
    """
    if "|" not in body:
        return None
    if "MONITORING|" in body:
        return _parse_monitoring_common(body, timestamp_ms) or _parse_monitoring(body, timestamp_ms)
    body = body.rstrip("\n")
    if "\n" in body:
        return _parse_statsd_packet(body, timestamp_ms)
    common = _STATSD_COMMON.fullmatch(body)
    if common is not None:
        metrics = _statsd_common(common, timestamp_ms)
        if metrics is not None:
            return metrics
    if _STATSD_HEAD.match(body) is None:
        return None
    return _parse_statsd_line(body, timestamp_ms)


def parse_metric_object(obj: object, timestamp_ms: int) -> list[dict[str, Any]] | MalformedMetric | None:
    """Metrics in a log line parsed as a JSON object: CloudWatch EMF (`_aws`) or Datadog `{"m", "v", "e", "t"}`.

    `timestamp_ms` is unused by both forms, which carry their own time; it is taken for symmetry with
    `parse_metric_text`.
    """
    if not isinstance(obj, dict):
        return None
    if "_aws" in obj:
        return _parse_emf(obj)
    if "m" in obj and "v" in obj:
        return _parse_datadog_object(obj)
    return None


def _metric(
    timestamp: int,
    name: str,
    value: float,
    metric_type: str,
    unit: str | None,
    namespace: str | None,
    tags: dict[str, str],
    sample_rate: float | None,
    fmt: str,
    delta: bool,
    request_id: str | None,
) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "name": name,
        "value": value,
        "metric_type": metric_type,
        "unit": unit,
        "namespace": namespace,
        "tags": tags,
        "sample_rate": sample_rate,
        "format": fmt,
        "delta": delta,
        "request_id": request_id,
    }


def _show(text: str) -> str:
    """`text` quoted for a reason, cut short so that a hostile line cannot bloat the reason."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def _number(text: str) -> float | None:
    """The metric value written as `text` (a finite decimal, plain or with an exponent), else None."""
    return text_number(text, METRIC_VALUE)


def _json_number(value: Any) -> float | None:
    """`value` as a finite float when it is a JSON number (not a bool), else None."""
    number = json_number(value, METRIC_VALUE)
    return None if number is None else float(number)


def _epoch_seconds_ms(text: str) -> int | None:
    """Epoch milliseconds from epoch seconds, whole or fractional (`1609983680.41`), else None."""
    seconds = text_number(text, EPOCH_S)
    return None if seconds is None else round(seconds * 1000)


def _too_many_values(count: int) -> MalformedMetric | None:
    if count > MAX_VALUES_PER_LINE:
        return MalformedMetric(f"The line has more than {MAX_VALUES_PER_LINE:,} metric values; that is the limit.")
    return None


def _too_many_tags(count: int) -> MalformedMetric | None:
    if count > MAX_TAGS_PER_LINE:
        return MalformedMetric(f"The line has {count} tags; the limit is {MAX_TAGS_PER_LINE}.")
    return None


def _tags(items: list[str], separator: str, bare_allowed: bool) -> dict[str, str] | MalformedMetric:
    """Tags from `key<separator>value` items, split on the first separator; empty items are skipped.

    A bare item (no separator) is a tag with an empty value when `bare_allowed`, else malformed.
    A repeated key keeps its last value. The caller has checked the count.
    """
    tags: dict[str, str] = {}
    for item in items:
        if not item:
            continue
        key, found, value = item.partition(separator)
        if not key:
            return MalformedMetric(f"Tag {_show(item)} has an empty name.")
        if not found and not bare_allowed:
            return MalformedMetric(f"Dimension {_show(item)} is not written as key{separator}value.")
        tags[key] = value
    return tags


def _tags_from_text(text: str, separator: str, bare_allowed: bool) -> dict[str, str] | MalformedMetric:
    """Tags from a comma-separated list, counted before it is split."""
    return _too_many_tags(text.count(",") + 1) or _tags(text.split(","), separator, bare_allowed)


def _metric_type_for_unit(unit: str | None) -> str:
    """The metric type a CloudWatch unit implies: Count is a count, a time unit a timer, the rest gauges."""
    return _UNIT_TYPES.get(unit.lower(), "gauge") if unit else "gauge"


# StatsD / DogStatsD


def _parse_statsd_packet(body: str, timestamp_ms: int) -> list[dict[str, Any]] | MalformedMetric | None:
    """Lines separated by newlines: metrics only if every non-empty line is a valid metric line."""
    if _STATSD_HEAD.search(body) is None:
        return None
    metrics: list[dict[str, Any]] = []
    for number, line in enumerate(body.split("\n"), 1):
        if not line:
            continue
        if _STATSD_HEAD.match(line) is None:
            return MalformedMetric(f"Line {number} of the StatsD packet is not a metric line.")
        parsed = _parse_statsd_line(line, timestamp_ms)
        if isinstance(parsed, MalformedMetric):
            return MalformedMetric(f"Line {number} of the StatsD packet: {parsed.reason}")
        metrics.extend(parsed)
        too_many = _too_many_values(len(metrics))
        if too_many:
            return too_many
    return metrics


def _parse_statsd_line(line: str, timestamp_ms: int) -> list[dict[str, Any]] | MalformedMetric:
    """One line whose head `_STATSD_HEAD` has matched."""
    # Each optional section may appear once, so more than six of them is malformed: split no further.
    sections = line.split("|", 8)
    name, _, packed = sections[0].partition(":")
    metric_type = _STATSD_TYPES[sections[1]]
    count = packed.count(":") + 1
    if count > MAX_VALUES_PER_METRIC:
        return MalformedMetric(f"Metric {_show(name)} packs {count} values; the limit is {MAX_VALUES_PER_METRIC}.")
    if count > 1 and metric_type == "set":
        return MalformedMetric(f"Set {_show(name)} packs {count} values; a set takes one member per line.")
    raw_values = packed.split(":")
    values = []
    for raw in raw_values:
        value = _number(raw)
        if value is None:
            if metric_type == "set":
                return MalformedMetric(f"Set member {_show(raw)} is not a number; StatsD set members must be numbers.")
            return MalformedMetric(f"StatsD value {_show(raw)} is not a finite number.")
        values.append(value)

    sample_rate = 1.0
    tags: dict[str, str] = {}
    timestamp = timestamp_ms
    seen: set[str] = set()
    for section in sections[2:]:
        key = section[:1]
        if key not in ("@", "#", "T"):
            key, colon, _ = section.partition(":")
            if not colon or key not in _STATSD_IGNORED_SECTIONS:
                return MalformedMetric(f"StatsD section |{_show(section)} is not one of |@, |#, |c:, |e:, |card:, |T.")
        if key in seen:
            return MalformedMetric(f"StatsD line repeats its |{key} section.")
        seen.add(key)
        if key == "@":
            rate = text_number(section[1:], SAMPLE_RATE)
            if rate is None:
                return MalformedMetric(f"Sample rate {_show(section[1:])} is not a number in (0, 1].")
            sample_rate = rate
        elif key == "#":
            parsed_tags = _tags_from_text(section[1:], ":", bare_allowed=True)
            if isinstance(parsed_tags, MalformedMetric):
                return parsed_tags
            tags = parsed_tags
        elif key == "T":
            # DogStatsD's timestamp is whole seconds.
            when = _epoch_seconds_ms(section[1:]) if section[1:].isdigit() else None
            if when is None:
                return MalformedMetric(f"StatsD timestamp |T{_show(section[1:])} is not epoch seconds.")
            timestamp = when

    return _statsd_metrics(timestamp, name, raw_values, values, metric_type, tags, sample_rate)


def _statsd_metrics(
    timestamp: int,
    name: str,
    raw_values: list[str],
    values: list[float],
    metric_type: str,
    tags: dict[str, str],
    sample_rate: float,
) -> list[dict[str, Any]]:
    """One metric dict per value of a StatsD line; a gauge written with a sign is a delta."""
    unit = "Milliseconds" if metric_type == "timer" else None
    is_gauge = metric_type == "gauge"
    return [
        _metric(
            timestamp,
            name,
            value,
            metric_type,
            unit,
            None,
            tags if index == 0 else dict(tags),
            sample_rate,
            "statsd",
            is_gauge and raw[0] in "+-",
            None,
        )
        for index, (raw, value) in enumerate(zip(raw_values, values, strict=True))
    ]


def _statsd_common(match: re.Match[str], timestamp_ms: int) -> list[dict[str, Any]] | None:
    """Metrics of a line `_STATSD_COMMON` matched; None sends it to the general parser for a reason."""
    name, packed, type_code, rate_text, tag_text, epoch = match.groups()
    raw_values = packed.split(":")
    if len(raw_values) > MAX_VALUES_PER_METRIC:
        return None
    sample_rate = 1.0
    if rate_text is not None:
        sample_rate = float(rate_text)
        if not 0.0 < sample_rate <= 1.0:
            return None
    tags: dict[str, str] = {}
    if tag_text is not None:
        parsed_tags = _tags_from_text(tag_text, ":", bare_allowed=True)
        if isinstance(parsed_tags, MalformedMetric):
            return None
        tags = parsed_tags
    timestamp = timestamp_ms if epoch is None else int(epoch) * 1000
    values = [float(raw) for raw in raw_values]
    return _statsd_metrics(timestamp, name, raw_values, values, _STATSD_TYPES[type_code], tags, sample_rate)


# MONITORING| lines: Datadog and Lumigo


def _parse_monitoring_common(body: str, timestamp_ms: int) -> list[dict[str, Any]] | None:
    """The first MONITORING| token when it has the usual Datadog or Lumigo shape; else None."""
    found = _MONITORING.search(body)
    if found is None:
        return None
    token = found.group(1)
    datadog = _DATADOG_COMMON.fullmatch(token)
    if datadog is not None:
        epoch, value, metric_type, name, tag_text = datadog.groups()
        tags = {} if tag_text is None else _tags_from_text(tag_text, ":", bare_allowed=True)
        if isinstance(tags, MalformedMetric):
            return None
        when = round(float(epoch) * 1000)
        return [_metric(when, name, float(value), metric_type, None, None, tags, None, "datadog", False, None)]
    lumigo = _LUMIGO_COMMON.fullmatch(token)
    if lumigo is not None:
        value, unit, name, namespace, dimensions = lumigo.groups()
        tags = _tags_from_text(dimensions, "=", bare_allowed=False)
        if isinstance(tags, MalformedMetric):
            return None
        metric_type = _metric_type_for_unit(unit)
        return [
            _metric(timestamp_ms, name, float(value), metric_type, unit, namespace, tags, None, "lumigo", False, None)
        ]
    return None


def _parse_monitoring(body: str, timestamp_ms: int) -> list[dict[str, Any]] | MalformedMetric | None:
    """The first valid MONITORING| token anywhere in `body`.

    Failing that, a token at the start of the body, of a line or of a tab-separated field (as after a
    runtime prefix) claims to be a metric and makes the line malformed; one inside prose does not.
    """
    claimed = None
    for found in _MONITORING.finditer(body):
        token = found.group(1)
        # Neither form has more than six fields: split no further, but count them all for the reason.
        parsed = _parse_monitoring_fields(token.split("|", 6), token.count("|") + 2, timestamp_ms)
        if not isinstance(parsed, MalformedMetric):
            return parsed
        start = found.start()
        if claimed is None and (start == 0 or body[start - 1] in "\t\n"):
            claimed = parsed
    return claimed


def _parse_monitoring_fields(
    fields: list[str], count: int, timestamp_ms: int
) -> list[dict[str, Any]] | MalformedMetric:
    """`fields` after `MONITORING|`; `count` is how many fields the line has, MONITORING included."""
    first = fields[0]
    second = fields[1] if count > 2 else ""
    third = fields[2] if count > 3 else ""
    if third in _DATADOG_TYPES and NUMBER.fullmatch(first) and NUMBER.fullmatch(second):
        return _parse_datadog_fields(fields, count)
    if NUMBER.fullmatch(first) and count > 2 and not NUMBER.fullmatch(second):
        return _parse_lumigo_fields(fields, count, timestamp_ms)
    if count < 5:
        return MalformedMetric(f"MONITORING| line has {count} fields; Datadog needs 5 or 6, Lumigo 6.")
    return MalformedMetric(
        "MONITORING| line fits neither form: Datadog is MONITORING|<epoch seconds>|<value>|"
        "<count, gauge, histogram or distribution>|<name>[|#tags], "
        "Lumigo is MONITORING|<value>|<unit>|<name>|<namespace>|<key=value,...>."
    )


def _parse_datadog_fields(fields: list[str], count: int) -> list[dict[str, Any]] | MalformedMetric:
    if count not in (5, 6):
        return MalformedMetric(f"MONITORING| line has {count} fields; Datadog needs 5 or 6.")
    epoch, raw_value, metric_type, name = fields[:4]
    timestamp = _epoch_seconds_ms(epoch)
    if timestamp is None:
        return MalformedMetric(f"Datadog timestamp {_show(epoch)} is not epoch seconds.")
    value = _number(raw_value)
    if value is None:
        return MalformedMetric(f"Datadog value {_show(raw_value)} is not a finite number.")
    if _NAME.fullmatch(name) is None:
        return MalformedMetric(
            f"Datadog metric name {_show(name)} must start with a letter and hold only A-Z, 0-9, _ . -."
        )
    tags: dict[str, str] = {}
    if count == 6:
        if not fields[4].startswith("#"):
            return MalformedMetric(f"Datadog tags {_show(fields[4])} must start with #.")
        parsed_tags = _tags_from_text(fields[4][1:], ":", bare_allowed=True)
        if isinstance(parsed_tags, MalformedMetric):
            return parsed_tags
        tags = parsed_tags
    return [_metric(timestamp, name, value, metric_type, None, None, tags, None, "datadog", False, None)]


def _parse_lumigo_fields(fields: list[str], count: int, timestamp_ms: int) -> list[dict[str, Any]] | MalformedMetric:
    if count != 6:
        return MalformedMetric(f"MONITORING| line has {count} fields; Lumigo needs 6.")
    raw_value, unit, name, namespace, dimensions = fields
    value = _number(raw_value)
    if value is None:
        return MalformedMetric(f"Lumigo value {_show(raw_value)} is not a finite number.")
    for label, text in (("unit", unit), ("metric name", name), ("namespace", namespace)):
        if not text:
            return MalformedMetric(f"Lumigo MONITORING| line has an empty {label}.")
    tags = _tags_from_text(dimensions, "=", bare_allowed=False)
    if isinstance(tags, MalformedMetric):
        return tags
    metric_type = _metric_type_for_unit(unit)
    return [_metric(timestamp_ms, name, value, metric_type, unit, namespace, tags, None, "lumigo", False, None)]


# JSON objects: Datadog and CloudWatch EMF


def _parse_datadog_object(obj: dict[Any, Any]) -> list[dict[str, Any]] | MalformedMetric:
    for key in _DATADOG_OBJECT_KEYS:
        if key not in obj:
            return MalformedMetric(f"Datadog metric object has no {key!r} key; it needs m, v, e and t.")
    if len(obj) != len(_DATADOG_OBJECT_KEYS):
        return MalformedMetric("Datadog metric object has keys other than m, v, e and t.")
    name, raw_value, epoch, raw_tags = obj["m"], obj["v"], obj["e"], obj["t"]
    if not isinstance(name, str) or not name:
        return MalformedMetric("Datadog metric object's m (the metric name) is not a non-empty string.")
    value = _json_number(raw_value)
    if value is None:
        return MalformedMetric(f"Datadog metric {_show(name)} has v {raw_value!r:.40}, not a finite number.")
    seconds = json_number(epoch, EPOCH_S)
    if seconds is None:
        return MalformedMetric(f"Datadog metric {_show(name)} has e {epoch!r:.40}, not epoch seconds.")
    if not isinstance(raw_tags, list):
        return MalformedMetric(f"Datadog metric {_show(name)} has t {raw_tags!r:.40}, not a list of tags.")
    too_many = _too_many_tags(len(raw_tags))
    if too_many:
        return too_many
    for tag in raw_tags:
        if not isinstance(tag, str):
            return MalformedMetric(f"Datadog metric {_show(name)} has tag {tag!r:.40}, not a string.")
    tags = _tags(raw_tags, ":", bare_allowed=True)
    if isinstance(tags, MalformedMetric):
        return tags
    return [_metric(round(seconds * 1000), name, value, "distribution", None, None, tags, None, "datadog", False, None)]


def _parse_emf(obj: dict[Any, Any]) -> list[dict[str, Any]] | MalformedMetric:
    aws = obj["_aws"]
    if not isinstance(aws, dict):
        return MalformedMetric("EMF _aws is not an object.")
    timestamp = aws.get("Timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp < _MAX_EPOCH_SECONDS * 1000:
        return MalformedMetric(f"EMF _aws.Timestamp is {timestamp!r:.40}, not epoch milliseconds.")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return MalformedMetric("EMF _aws.CloudWatchMetrics is not a non-empty list of metric directives.")
    request_id = obj.get("requestId")
    if not isinstance(request_id, str):
        request_id = obj.get("function_request_id")
        if not isinstance(request_id, str):
            request_id = None
    metrics: list[dict[str, Any]] = []
    for directive in directives:
        failure = _parse_emf_directive(obj, directive, timestamp, request_id, metrics)
        if failure:
            return failure
    if not metrics:
        return MalformedMetric("EMF document declares no metric values.")
    return metrics


def _parse_emf_directive(
    obj: dict[Any, Any], directive: Any, timestamp: int, request_id: str | None, metrics: list[dict[str, Any]]
) -> MalformedMetric | None:
    """Append the metrics of one directive to `metrics`; return why it is invalid, if it is."""
    if not isinstance(directive, dict):
        return MalformedMetric("EMF metric directive is not an object.")
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not namespace:
        return MalformedMetric("EMF metric directive has no Namespace string.")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list) or not all(isinstance(keys, list) for keys in dimension_sets):
        return MalformedMetric(f"EMF directive for namespace {_show(namespace)} has no Dimensions list of lists.")
    keys = [key for dimension_set in dimension_sets for key in dimension_set]
    for key in keys:
        if not isinstance(key, str):
            return MalformedMetric(f"EMF dimension name {key!r:.40} is not a string.")
    unique_keys = dict.fromkeys(keys)
    too_many = _too_many_tags(len(unique_keys))
    if too_many:
        return too_many
    tags: dict[str, str] = {}
    for key in unique_keys:
        value = obj.get(key)
        if not isinstance(value, str):
            found = "is missing" if value is None else f"is a {type(value).__name__}"
            return MalformedMetric(f"EMF dimension {_show(key)} {found} at the root; it must be a string.")
        tags[key] = value
    definitions = directive.get("Metrics")
    if not isinstance(definitions, list):
        return MalformedMetric(f"EMF directive for namespace {_show(namespace)} has no Metrics list.")
    for definition in definitions:
        if not isinstance(definition, dict):
            return MalformedMetric("EMF metric definition is not an object.")
        name = definition.get("Name")
        if not isinstance(name, str) or not name:
            return MalformedMetric("EMF metric definition has no Name string.")
        unit = definition.get("Unit")
        if "Unit" in definition and not isinstance(unit, str):
            return MalformedMetric(f"EMF metric {_show(name)} has Unit {unit!r:.40}, not a string.")
        resolution = definition.get("StorageResolution", 60)
        if isinstance(resolution, bool) or resolution not in _EMF_STORAGE_RESOLUTIONS:
            return MalformedMetric(f"EMF metric {_show(name)} has StorageResolution {resolution!r:.40}, not 1 or 60.")
        values = _emf_values(obj.get(name))
        if isinstance(values, str):
            return MalformedMetric(f"EMF metric {_show(name)} {values}.")
        too_many = _too_many_values(len(metrics) + len(values))
        if too_many:
            return too_many
        metric_type = _metric_type_for_unit(unit)
        metrics.extend(
            _metric(timestamp, name, value, metric_type, unit, namespace, dict(tags), None, "emf", False, request_id)
            for value in values
        )
    return None


def _emf_values(raw: Any) -> list[float] | str:
    """The values of an EMF metric's root member, or the end of a sentence saying what is wrong."""
    if isinstance(raw, list):
        if len(raw) > MAX_VALUES_PER_METRIC:
            return f"has {len(raw)} values; the limit is {MAX_VALUES_PER_METRIC}"
        values = []
        for item in raw:
            value = _json_number(item)
            if value is None:
                return f"has value {item!r:.40}, not a finite number"
            values.append(value)
        return values
    if raw is None:
        return "has no value at the root"
    value = _json_number(raw)
    if value is None:
        return f"has value {raw!r:.40}, not a finite number or a list of them"
    return [value]
