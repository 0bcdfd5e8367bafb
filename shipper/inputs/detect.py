"""Recognising an input's format from its first bytes (after any gzip layers).

Rules, in order (the first that matches wins):

- JSON (the first character is `{` or `[` and the next token parses): the first value's top-level keys decide.
  `Records` -> kinesis, `awslogs` -> awslogs, `messageType` -> cwl-json, `events` -> filter-log-events
  (its events name their log stream) or get-log-events (they do not), `results` -> insights,
  `timestamp` (epoch ms, or beside a CloudWatch field such as `ingestionTime` or `logStreamName`) and
  `message` -> ndjson (CloudWatch log events, one per line). A JSON array of such events is
  filter-log-events; an array of Logs Insights rows is insights. Application logs in Lambda's JSON
  log format (`timestamp` an ISO time, `level`, `message`, `requestId`), lines of JSON of any other
  shape, and JSON lines mixed with plain text lines are read as text, one message a line; a single
  JSON document of another shape is not recognised.
- Text (UTF-8 without NUL bytes; ANSI colour codes ignored), by the first non-empty line:
  `2024-05-20T16:29:45.009000+00:00 STREAM message` -> tail (`aws logs tail`, detailed or json format);
  `2024-05-20T16:29:45.009Z message` or `1716222585009 message` -> export (CreateExportTask object);
  `2024-05-20T16:29:45 message` -> tail-short; `STREAM 2024-05-20T16:29:45.009000 message` -> sam-logs;
  a CSV header naming `@timestamp`, `@message` or `@requestId` -> insights-csv; anything else -> text.
- Anything else is not recognised.
"""

from __future__ import annotations

import codecs
import io

import ijson

from shipper.inputs.lines import ANSI, export_head, sam_head, short_head, tail_head

FORMATS: dict[str, str] = {
    "kinesis": 'Lambda Kinesis event JSON ({"Records": [...]})',
    "awslogs": 'direct subscription event JSON ({"awslogs": {"data": ...}})',
    "firehose": "Firehose-to-S3 object: concatenated gzip members, one CloudWatch Logs document each",
    "cwl-json": "CloudWatch Logs subscription documents as JSON, concatenated or one per line",
    "filter-log-events": "aws logs filter-log-events JSON, or a JSON array of its events",
    "get-log-events": "aws logs get-log-events JSON",
    "insights": "Logs Insights GetQueryResults JSON (or its results array)",
    "ndjson": "NDJSON of CloudWatch log events ({timestamp, message, ...} a line)",
    "tail": "aws logs tail text, detailed or json format",
    "tail-short": "aws logs tail --format short text",
    "sam-logs": "sam logs text: STREAM TIME message",
    "export": "CreateExportTask object: lines starting with an ISO-8601 or epoch-ms timestamp",
    "insights-csv": "Logs Insights results downloaded as CSV",
    "text": "plain text log lines",
}
"""Every format `shipper run` reads, by the name `--format` takes."""


_JSON_KEYS = (
    ("Records", "kinesis"),
    ("awslogs", "awslogs"),
    ("messageType", "cwl-json"),
    ("results", "insights"),
)
_CLOUDWATCH_EVENT_KEYS = frozenset(
    ("ingestionTime", "eventId", "logStreamName", "logGroupName", "logStream", "logGroup", "id")
)
"""Fields of a CloudWatch log event beside `timestamp` and `message`; an application log has none of them."""
_INSIGHTS_CSV_FIELDS = ("@timestamp", "@message", "@requestId")
"""A CSV header naming one of these is Logs Insights results (`@requestId`: the REPORT query's fields)."""
_WHITESPACE = b" \t\r\n"
_BOM = codecs.BOM_UTF8


def detect(head: bytes) -> str | None:
    """The format of content starting with `head` (at most a few tens of KiB), or None."""
    body = head.removeprefix(_BOM).lstrip(_WHITESPACE)
    if body[:1] in (b"{", b"["):
        return _json_format(body)
    text = _text(body)
    if text is None:
        return None
    return _text_format(text)


def _json_format(body: bytes) -> str | None:
    shape = _JsonShape(body)
    if shape.not_json:
        text = _text(body)
        return None if text is None else _text_format(text)
    keys = shape.keys
    if shape.is_array:
        if {"timestamp", "message"} <= shape.item_keys:
            return "filter-log-events"
        return "insights" if shape.item_is_row else None
    for key, name in _JSON_KEYS:
        if key in keys:
            return name
    if "events" in keys:
        if "logStreamName" in shape.item_keys or ("searchedLogStreams" in keys and not shape.item_keys):
            return "filter-log-events"
        return "get-log-events"
    if {"timestamp", "message"} <= keys and (shape.timestamp_is_number or keys & _CLOUDWATCH_EVENT_KEYS):
        return "ndjson"
    app_log = "message" in keys and ("timestamp" in keys or "level" in keys)
    if (shape.values > 1 or shape.broken_after_first or app_log) and _text(body) is not None:
        return "text"
    return None


class _JsonShape:
    """What the head of a JSON input shows: top-level keys of its first value, keys of its first item."""

    def __init__(self, body: bytes) -> None:
        self.is_array = body[:1] == b"["
        self.keys: set[str] = set()
        self.item_keys: set[str] = set()
        self.item_is_row = False
        self.values = 0
        self.timestamp_is_number = False
        self.broken_after_first = False
        """True when the first value is whole and what follows is not JSON (JSON and text lines mixed)."""
        self.not_json = False
        """True when the parser fails at its first token: text that starts with `[` or `{` (`[INFO] ...`)."""
        item_prefixes = ("item", "events.item", "results.item")
        tokens = 0
        last_top_level_end = False
        try:
            for prefix, event, value in ijson.parse(io.BytesIO(body), multiple_values=True):
                tokens += 1
                last_top_level_end = prefix == "" and event in ("end_map", "end_array")
                if prefix == "" and event in ("start_map", "start_array", "string", "number"):
                    self.values += 1
                    if self.values > 1:
                        break
                elif prefix == "" and event == "map_key":
                    self.keys.add(value)
                    if value == _JSON_KEYS[0][0]:
                        break  # it wins whatever follows: the rest of the head need not be parsed
                elif prefix == "timestamp" and event == "number":
                    self.timestamp_is_number = True
                elif event == "map_key" and prefix in item_prefixes:
                    self.item_keys.add(value)
                elif prefix in ("item.item", "results.item.item") and event == "map_key" and value == "field":
                    self.item_is_row = True
        except ijson.JSONError as exc:
            self.not_json = tokens <= 1 and "premature EOF" not in str(exc)
            self.broken_after_first = self.values == 1 and last_top_level_end


def _text(body: bytes) -> str | None:
    """The head as text, or None when it is binary (NUL bytes, not UTF-8)."""
    if b"\x00" in body:
        return None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(body, final=False)
    except UnicodeDecodeError:
        return None


def _text_format(text: str) -> str:
    for line in text.splitlines():
        line = ANSI.sub("", line) if "\x1b" in line else line
        if not line.strip():
            continue
        if tail_head(line):
            return "tail"
        if export_head(line):
            return "export"
        if short_head(line):
            return "tail-short"
        if sam_head(line):
            return "sam-logs"
        if "," in line and any(field in line for field in _INSIGHTS_CSV_FIELDS):
            return "insights-csv"
        return "text"
    return "text"
