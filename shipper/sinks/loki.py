"""Loki sink (`loki:URL`): events pushed to Loki's push API (/loki/api/v1/push), as lambda-promtail does.

- Streams are labelled by a small set, `labels=` (default function,log_group,type,level; account may
  be added). Request ids, event ids and log streams are never labels: they are structured metadata
  (request_id, event_id, log_stream), with the scalar top-level `fields` of a JSON log line (up to
  MAX_FIELD_ENTRIES; the rest as one `fields` JSON entry). A level that is not a known one is
  labelled `other`, so a log line cannot make new streams at will. Constant labels: `label.NAME=value`.
- The line is the message of a `log` event and the JSON event for every other type. Entries are in
  time order within each stream.
- `format=protobuf` (the default: PushRequest, snappy block format) or `format=json` (for proxies
  and debugging). `tenant=ID` sends X-Scope-OrgID.
- A line longer than `max_line_bytes` (Loki's max_line_size, default 256 KiB) is not sent: its
  event is dead-lettered with the reason, and the rest of the batch is sent.

Answers: 429 and 5xx are retried (Retry-After honoured); a 400 (an entry too old, a line too long,
a bad label) refuses the batch for good: its events are dead-lettered with Loki's message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shipper.errors import ConfigError
from shipper.sinks.backend import flag, oversized, positive, text, transport
from shipper.sinks.http import HttpSink

__all__ = ["LABELS", "LokiSink", "build"]

PUSH_PATH = "/loki/api/v1/push"
LABELS = ("function", "log_group", "type", "level", "account")
"""The fields that may label a stream: each takes few values."""
DEFAULT_LABELS = ("function", "log_group", "type", "level")
LEVELS = frozenset({"trace", "debug", "info", "notice", "warn", "warning", "error", "critical", "fatal"})
MAX_FIELD_ENTRIES = 32
MAX_LABEL_VALUE_CHARS = 1024
DEFAULT_MAX_LINE_BYTES = 256 * 1024
_METADATA = ("request_id", "event_id", "log_stream", "account")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class LokiSink:
    """Pushes each batch as one push request (see the module docstring)."""

    name = "loki"

    def __init__(
        self,
        target: HttpSink,
        *,
        labels: Sequence[str] = DEFAULT_LABELS,
        static_labels: Mapping[str, str] | None = None,
        format: str = "protobuf",
        tenant: str | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self._target = target
        self.labels = tuple(labels)
        self.static_labels = dict(static_labels or {})
        self.format = format
        self.max_line_bytes = max_line_bytes
        self.max_batch_events = target.max_batch_events
        self.max_batch_bytes = target.max_batch_bytes
        self._headers = {"X-Scope-OrgID": tenant} if tenant else {}
        if format == "protobuf":
            from shipper.sinks import protos  # snappy and protobuf: only for this format

            self._protos: Any = protos
            self._headers["Content-Encoding"] = "snappy"

    def __repr__(self) -> str:
        return f"LokiSink({self._target.url!r}, format={self.format!r}, labels={self.labels!r})"

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        streams: dict[tuple[tuple[str, str], ...], list[tuple[int, int, str, dict[str, str]]]] = {}
        too_long: list[int] = []
        for index, event in enumerate(events):
            line = self.line(event)
            if len(line.encode()) > self.max_line_bytes:
                too_long.append(index)
                continue
            key = tuple(sorted(self.stream_labels(event).items()))
            streams.setdefault(key, []).append((_ns(event), index, line, metadata(event, self.labels)))
        if streams:
            for entries in streams.values():
                entries.sort(key=lambda entry: entry[:2])
            if self.format == "json":
                body, content_type = _json_body(streams), "application/json"
            else:
                body, content_type = self._protobuf_body(streams), "application/x-protobuf"
            reply = self._target.post(body, content_type, self._headers)
            if not reply.ok:
                raise self._target.refusal(reply)
        if too_long:
            raise oversized("Loki", too_long, self.max_line_bytes, "lines")

    def close(self) -> None:
        self._target.close()

    def line(self, event: dict[str, Any]) -> str:
        if event.get("type") == "log":
            return str(event.get("message", ""))
        return orjson.dumps(event, default=str).decode()

    def stream_labels(self, event: dict[str, Any]) -> dict[str, str]:
        labels = dict(self.static_labels)
        for name in self.labels:
            value = event.get(name)
            if name == "level":
                value = None if value is None else str(value).lower()
                value = value if value in LEVELS or value is None else "other"
            if value is not None and value != "":
                labels[name] = str(value)[:MAX_LABEL_VALUE_CHARS]
        return labels or {"type": str(event.get("type"))}

    def _protobuf_body(self, streams: Mapping[tuple[tuple[str, str], ...], list[Any]]) -> bytes:
        p = self._protos
        request = p.PushRequest(
            streams=[
                p.StreamAdapter(
                    labels=label_text(key),
                    entries=[
                        p.EntryAdapter(
                            timestamp=p.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000),
                            line=line,
                            structuredMetadata=[p.LabelPairAdapter(name=k, value=v) for k, v in meta.items()],
                        )
                        for ns, _, line, meta in entries
                    ],
                )
                for key, entries in streams.items()
            ]
        )
        return p.snappy_compress(request.SerializeToString())


def _json_body(streams: Mapping[tuple[tuple[str, str], ...], list[Any]]) -> bytes:
    return orjson.dumps(
        {
            "streams": [
                {
                    "stream": dict(key),
                    "values": [[str(ns), line, meta] if meta else [str(ns), line] for ns, _, line, meta in entries],
                }
                for key, entries in streams.items()
            ]
        }
    )


def label_text(labels: Sequence[tuple[str, str]]) -> str:
    """Labels in Loki's (PromQL) selector form: {a="x", b="y\\"z"}."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, value in labels)
    return "{" + ", ".join(f'{name}="{value}"' for (name, _), value in zip(labels, escaped, strict=True)) + "}"


def metadata(event: dict[str, Any], labels: Sequence[str]) -> dict[str, str]:
    """Structured metadata of an entry: ids, the log stream, and the scalar top-level fields of a JSON line."""
    meta = {name: str(event[name]) for name in _METADATA if event.get(name) is not None and name not in labels}
    fields = event.get("fields") if event.get("type") == "log" else None
    if isinstance(fields, dict):
        rest = {}
        for key, value in fields.items():
            name = _NOT_NAME.sub("_", str(key))[:64]
            if len(meta) < MAX_FIELD_ENTRIES and name and name not in meta and isinstance(value, str | int | float):
                meta[name] = str(value)
            else:
                rest[key] = value
        if rest:
            meta["fields"] = orjson.dumps(rest, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return meta


def _ns(event: dict[str, Any]) -> int:
    timestamp = event.get("timestamp")
    return max(0, timestamp) * 1_000_000 if isinstance(timestamp, int) else 0


def _labels(key: str, value: Any) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(item.strip() for item in text(key, value).split(",") if item.strip()))
    unknown = [name for name in names if name not in LABELS]
    if not names or unknown:
        raise ConfigError(f"Loki sink option {key}: labels are chosen among {', '.join(LABELS)}; got {value!r}")
    return names


def _format(key: str, value: Any) -> str:
    if value not in ("protobuf", "json"):
        raise ConfigError(f"Loki sink option {key} must be protobuf or json, got {value!r}")
    return value


_STATIC = "label."


def build(spec: str, options: Mapping[str, Any]) -> LokiSink:
    """A LokiSink from `loki:URL` and options: labels, label.NAME, format, tenant, max_line_bytes, and those
    of the HTTP sink (gzip only with format=json: the protobuf body is snappy-compressed)."""
    url = spec.removeprefix("loki:").rstrip("/")
    if not url.endswith(PUSH_PATH):
        url += PUSH_PATH
    static = {key.removeprefix(_STATIC): value for key, value in options.items() if key.startswith(_STATIC)}
    for name, value in static.items():
        if not _LABEL_NAME.fullmatch(name) or not isinstance(value, str):
            raise ConfigError(f"Loki sink option {_STATIC}{name}: a label name and a text value, got {value!r}")
    options = {key: value for key, value in options.items() if not key.startswith(_STATIC)}
    own = {"labels": _labels, "format": _format, "tenant": text, "max_line_bytes": positive(int)}
    target, values = transport("Loki", url, options, own)
    if values.get("format", "protobuf") == "protobuf" and "gzip" in options and flag("gzip", options["gzip"]):
        raise ConfigError("Loki sink: format=protobuf is snappy-compressed; gzip is for format=json")
    return LokiSink(target, static_labels=static, **values)
