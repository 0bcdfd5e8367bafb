"""Readers: one input's content, in whatever format it has, into batches the pipeline takes.

    Input -> streams (count, sniff, gzip layers) -> detect -> a reader -> Batch, Batch, ...

A `Batch` carries what the pipeline already understands: CloudWatch Logs-shaped documents
(`{"logGroup", "logStream", "owner", "logEvents": [{"id", "timestamp", "message"}]}`) built from
export formats, raw records for the decoder (Kinesis data, subscription payloads, Firehose gzip
members), and rejects for what could not be read, each saying the file and the position.

Everything streams: JSON through ijson, text line by line, gzip layer by layer, with batches of a
bounded size, so memory does not grow with the input. A problem in one input (truncated gzip,
malformed JSON, a read error) ends that input with a reject; the caller goes on with the next.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple

import ijson
import orjson

from shipper import compression
from shipper.bounds import MEMORY_MB, Range, text_number
from shipper.classify import MAX_MESSAGE_CHARS, message_bytes
from shipper.decode import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    GZIP_MAGIC,
    RawRecord,
    record_from_awslogs_event,
    records_from_kinesis_event,
)
from shipper.inputs.detect import FORMATS, detect
from shipper.inputs.lines import ANSI, LineHead, export_head, iso_ms, sam_head, short_head, tail_head, text_head
from shipper.inputs.sources import STDIN_NAME, Input
from shipper.inputs.streams import (
    CHUNK,
    Counting,
    Member,
    Meter,
    Rewound,
    first_member_head,
    gunzipped,
    gzip_members,
    sniffed,
)
from shipper.names import RejectCode
from shipper.reject import Reject

BATCH_EVENTS = 2000
"""Log events per batch of documents."""
BATCH_CHARS = 4 * 1024 * 1024
"""Message characters per batch of documents."""
KINESIS_RECORDS_PER_BATCH = 10_000
"""The most records a Lambda Kinesis event holds, so a saved event is one batch..."""
KINESIS_DATA_PER_BATCH = 32 * 1024 * 1024
"""...unless it is larger than any Lambda event (6 MB): then batches of this much base64 data."""
WHOLE_EVENT_BYTES = 8 * 1024 * 1024
"""A Lambda Kinesis event file up to this size (any Lambda event is at most 6 MB) is parsed whole."""
DOCUMENTS_PER_BATCH = 100
OTHER_FIELDS_BYTES = 64 * 1024
"""Room for the fields around a message, in an NDJSON line or a CSV record, before it is too long to hold."""
JSON_ESCAPE_BYTES = 6
"""The most bytes JSON spends on one byte of a message (`\u0001`)."""

_LAMBDA_PATH = re.compile(r"(?:^|/)aws/lambda/([^/]+)")
_STREAM_PATH = re.compile(r"(?:^|/)(\d{4}/\d\d/\d\d/[^/]*\[[^/]*)$")
_DASHED_STREAM = re.compile(r"^(\d{4})-(\d\d)-(\d\d)-(?=[^/]*\[)")
_CHUNK_FILE = re.compile(r"\d{6}(?:\.gz)?")
_EXTENSIONS = re.compile(r"(?:\.(?:json|ndjson|jsonl|log|txt|csv|tsv|out|gz))+$")

_READ_ERRORS: tuple[type[Exception], ...] = (*compression.STREAM_ERRORS, ijson.JSONError, csv.Error)
"""What reading an input raises for bad data; any of them ends the input with a reject saying where."""


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How inputs are read: `shipper run` options."""

    format: str | None = None
    """A name from FORMATS to read every input as; None recognises each input's own."""
    log_group: str | None = None
    """The log group of formats that do not carry one; None takes it from the path."""
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_message_chars: int = MAX_MESSAGE_CHARS


@dataclass(slots=True)
class Batch:
    """A bounded piece of one input, in the shapes the pipeline takes."""

    origin: str
    """Unique in a run: the input name and the batch number."""
    where: str
    """The input name and position, prefixed to what the decoder and classifier report."""
    documents: list[dict[str, Any]] = field(default_factory=list)
    records: list[RawRecord] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


class Opened(NamedTuple):
    """An input being read: its format (None when not recognised or not readable) and its batches."""

    format: str | None
    batches: Iterator[Batch]


def read_input(source: Input, options: ReadOptions, meter: Meter) -> Opened:
    """Open `source`, recognise its format, and read it as batches (lazily; errors become rejects)."""
    try:
        raw = Counting(source.open(), meter)
    except OSError as exc:
        reason = f"cannot read {source.name}: {exc.strerror or exc}"
        reject = Reject(RejectCode.UNREADABLE_INPUT, reason, b"", None, source.name)
        return Opened(None, iter([Batch(f"{source.name}#0", source.name, rejects=[reject])]))
    reader = _Reader(source.name, options, raw)
    try:
        found, content = reader.open()
    except compression.STREAM_ERRORS as exc:
        raw.close()
        return Opened(None, iter([reader.failure(exc)]))
    if found is None:
        raw.close()
        return Opened(None, iter([reader.unrecognised()]))
    return Opened(found, reader.batches(found, content))


def log_group_from_path(name: str) -> str | None:
    """`/aws/lambda/NAME` when the path has `aws/lambda/NAME` in it (NAME may be the file, less extensions)."""
    match = _LAMBDA_PATH.search(_key(name))
    return f"/aws/lambda/{_EXTENSIONS.sub('', match.group(1))}" if match else None


def log_stream_from_path(name: str) -> str:
    """The log stream a file holds, by its path.

    `YYYY/MM/DD/...[VERSION]...` in the path (Lambda's stream names, as export objects and per-stream
    files are laid out); else, for an export chunk (`000000.gz`), its directory; else the file name
    less its extensions. A stream written with dashes for slashes (`2024-05-20-[$LATEST]...`) reads
    as the Lambda stream name it stands for.
    """
    directory, _, file = _key(name).rpartition("/")
    if directory and _CHUNK_FILE.fullmatch(file):
        path = directory
    else:
        path = f"{directory}/{_EXTENSIONS.sub('', file)}" if directory else _EXTENSIONS.sub("", file)
    match = _STREAM_PATH.search(path)
    stream = match.group(1) if match else path.rpartition("/")[2]
    return _DASHED_STREAM.sub(r"\1/\2/\3/", stream, count=1)


def _key(name: str) -> str:
    """The path part of a name: an S3 key, or a file path with forward slashes."""
    return name.removeprefix("s3://").partition("/")[2] if name.startswith("s3://") else name.replace("\\", "/")


class _Documents:
    """Log events grouped into documents per (log group, log stream, owner), in bounded batches."""

    __slots__ = ("by_source", "chars", "events")

    def __init__(self) -> None:
        self.by_source: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
        self.events = 0
        self.chars = 0

    def add(self, group: str, stream: str, owner: str | None, event: dict[str, Any]) -> bool:
        """Add one log event; True when the batch is full."""
        key = (group, stream, owner)
        events = self.by_source.get(key)
        if events is None:
            events = self.by_source[key] = []
        events.append(event)
        self.events += 1
        message = event["message"]
        self.chars += len(message) if type(message) is str else 0
        return self.events >= BATCH_EVENTS or self.chars >= BATCH_CHARS

    def take(self) -> list[dict[str, Any]]:
        documents = [
            {"logGroup": group, "logStream": stream, "owner": owner, "logEvents": events}
            for (group, stream, owner), events in self.by_source.items()
        ]
        self.by_source = {}
        self.events = self.chars = 0
        return documents


class _Reader:
    """Reads one input; keeps where it is for messages."""

    def __init__(self, name: str, options: ReadOptions, raw: Counting) -> None:
        self.name = name
        self.options = options
        self.raw = raw
        self.content: Rewound | None = None
        self.head = b""
        """The first bytes of the content (after gzip layers), as sniffed."""
        self.pending = _Documents()
        """Log events read and not yet in a batch: a read error sends them on before its reject."""
        self.gzip_layers = 0
        self.batch_number = 0
        self.unit = "event"
        self.at = 0
        """Where reading is, in the format's own unit (line, event, record, ...), for messages."""
        self.group = options.log_group or log_group_from_path(name) or ""
        self.stream = "stdin" if name == STDIN_NAME else log_stream_from_path(name)

    # --- opening: gzip layers and format ---------------------------------------------------------

    def open(self) -> tuple[str | None, Rewound]:
        """Peel gzip layers and recognise the format; Firehose objects keep their gzip members."""
        forced = self.options.format
        head, stream = sniffed(self.raw)
        while head.startswith(GZIP_MAGIC):
            if forced == "firehose" or (forced is None and detect(first_member_head(head)) == "cwl-json"):
                self.content = stream
                return "firehose", stream
            head, stream = sniffed(gunzipped(stream))
            self.gzip_layers += 1
        self.content, self.head = stream, head
        return forced or detect(head), stream

    def unrecognised(self) -> Batch:
        """The reject for content in no format shipper reads: names the input and the formats tried."""
        tried = ", ".join(FORMATS)
        body = self.head.lstrip()
        layers = f" (inside {self.gzip_layers} gzip layer{'s' * (self.gzip_layers > 1)})" if self.gzip_layers else ""
        if body[:1] in (b"{", b"["):
            reason = (
                f"{self.name} is JSON but neither a Lambda Kinesis event nor another format shipper reads{layers} "
                f"(tried: {tried}); --format forces one"
            )
        else:
            reason = f"{self.name} is not in a format shipper reads{layers} (tried: {tried}); --format forces one"
        return self._batch("", rejects=[Reject(RejectCode.UNRECOGNISED_INPUT, reason, self.head, None, self.name)])

    # --- reading --------------------------------------------------------------------------------------

    def batches(self, found: str, content: Rewound) -> Iterator[Batch]:
        """The input's batches; a read error ends them with a reject saying where."""
        read: Callable[[Rewound], Iterator[Batch]] = getattr(self, "_" + found.replace("-", "_"))
        try:
            yield from read(content)
        except _READ_ERRORS as exc:
            if self.pending.events:
                yield self._batch(f"events before {self.position}", documents=self.pending.take())
            yield self.failure(exc)
        finally:
            self.raw.close()

    @property
    def position(self) -> str:
        return f"{self.unit} {self.at:,}" if self.at else ""

    def failure(self, exc: BaseException) -> Batch:
        """The reject for an error that stops reading this input."""
        at = f" at byte {self.raw.position:,}" + (f" ({self.position})" if self.position else "")
        if isinstance(exc, EOFError):
            code, what = RejectCode.TRUNCATED_GZIP, "gzip stream ends early"
        elif isinstance(exc, (gzip.BadGzipFile, *compression.ERRORS)):
            code, what = RejectCode.BAD_GZIP, f"gzip data is corrupt ({exc})"
        elif isinstance(exc, ijson.JSONError):
            detail = str(exc).strip().splitlines()
            parsed = f"the parser had read {self.content.position:,} bytes" if self.content else ""
            details = "; ".join(part for part in (self.position, parsed) if part)
            at = f" ({details})" if details else ""
            code, what = RejectCode.NOT_JSON, f"malformed JSON: {detail[0] if detail else exc}"
            if len(detail) > 1:
                what += f" near {detail[1].strip()!r}"
        elif isinstance(exc, csv.Error):
            code, what = RejectCode.NOT_CSV, f"malformed CSV: {exc}"
        else:
            strerror = exc.strerror if isinstance(exc, OSError) else None
            code, what = RejectCode.UNREADABLE_INPUT, f"read error: {strerror or exc}"
        reason = f"{self.name}: {what}{at}; the rest of this input is skipped"
        return self._batch("", rejects=[Reject(code, reason, b"", None, self.name)])

    def _batch(self, where: str, **parts: Any) -> Batch:
        self.batch_number += 1
        return Batch(f"{self.name}#{self.batch_number}", f"{self.name} ({where})" if where else self.name, **parts)

    # JSON documents carrying records for the decoder

    def _kinesis(self, content: Rewound) -> Iterator[Batch]:
        self.unit = "record"
        chunk: list[Any] = []
        first = size = 0
        try:
            for entry in self._kinesis_entries(content):
                chunk.append(entry)
                self.at = first + len(chunk)
                kinesis = entry.get("kinesis") if type(entry) is dict else None
                data = kinesis.get("data") if type(kinesis) is dict else None
                size += len(data) if type(data) is str else 0
                if len(chunk) >= KINESIS_RECORDS_PER_BATCH or size >= KINESIS_DATA_PER_BATCH:
                    yield self._kinesis_batch(chunk, first)
                    first, chunk, size = first + len(chunk), [], 0
        except _READ_ERRORS:
            if chunk:  # the records read before the error go on before its reject
                yield self._kinesis_batch(chunk, first)
            raise
        if chunk:
            yield self._kinesis_batch(chunk, first)

    def _kinesis_entries(self, content: Rewound) -> Iterator[Any]:
        """The entries of the event's `Records` array.

        A file of a Lambda event's size is parsed whole by orjson, several times faster than streaming it,
        when it holds one array only (a `[` found once): a second `Records` key could hide another array of
        records, which orjson would drop where ijson reads both. Anything else, or anything orjson refuses,
        streams through ijson, which reads records up to an error and says where it is. Both give the same
        entries, except that orjson reads an integer past 64 bits as a float where ijson stops the input.
        """
        body, content = sniffed(content, WHOLE_EVENT_BYTES + 1)
        self.content = content
        first = body.find(b"[")
        if len(body) <= WHOLE_EVENT_BYTES and not content.failed and first != -1 and body.find(b"[", first + 1) == -1:
            try:
                event = orjson.loads(body)
            except orjson.JSONDecodeError:
                event = None
            entries = event.get("Records") if type(event) is dict else None
            if type(entries) is list:
                return iter(entries)
        return ijson.items(content, "Records.item", use_float=True)

    def _kinesis_batch(self, chunk: list[Any], first: int) -> Batch:
        records, rejects = records_from_kinesis_event({"Records": chunk})
        return self._batch("" if first == 0 else f"records from {first + 1:,}", records=records, rejects=rejects)

    def _awslogs(self, content: Rewound) -> Iterator[Batch]:
        for value in ijson.items(content, "awslogs", use_float=True):
            record, reject = record_from_awslogs_event({"awslogs": value}, self.name)
            yield self._batch("", records=[record] if record else [], rejects=[reject] if reject else [])

    def _firehose(self, content: Rewound) -> Iterator[Batch]:
        for number, found in enumerate(gzip_members(content, self.options.max_decompressed_bytes), start=1):
            self.unit, self.at = "gzip member", number
            inner = " of the inflated object" if self.gzip_layers else ""
            where = f"gzip member {number:,} at byte {found.offset:,}{inner}"
            if isinstance(found, Member):
                yield self._batch(where, records=[RawRecord(found.content, None, f"{self.name} ({where})")])
            else:
                reject = Reject(found.code, f"{self.name}: {found.reason}", found.raw, None, self.name)
                yield self._batch("", rejects=[reject])

    def _cwl_json(self, content: Rewound) -> Iterator[Batch]:
        documents = ijson.items(content, "", multiple_values=True, use_float=True)
        first = 0
        while chunk := list(islice(documents, DOCUMENTS_PER_BATCH)):
            self.unit, self.at = "document", first + len(chunk)
            records = [RawRecord(orjson.dumps(document), None, self.name) for document in chunk]
            yield self._batch(f"documents from {first + 1:,}", records=records)
            first += len(chunk)

    # JSON of log events

    def _filter_log_events(self, content: Rewound) -> Iterator[Batch]:
        prefix = "item" if self._is_array() else "events.item"
        return self._log_events(ijson.items(content, prefix, use_float=True), self._cli_event)

    _get_log_events = _filter_log_events

    def _insights(self, content: Rewound) -> Iterator[Batch]:
        prefix = "item" if self._is_array() else "results.item"
        rows = map(_insights_row, ijson.items(content, prefix, use_float=True))
        return self._log_events(self._insights_messages(rows), self._insights_fields)

    def _is_array(self) -> bool:
        """Whether the content is a bare JSON array (`--query events` output) rather than the whole response."""
        return self.head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")[:1] == b"["

    def _log_events(self, items: Iterator[Any], convert: Callable[[Any], Any]) -> Iterator[Batch]:
        """Batches of documents from log events (`convert` makes (group, stream, owner, event)) and rejects."""
        documents = self.pending
        rejects: list[Reject] = []
        count = first = 0
        by_event = self.unit == "event"  # NDJSON counts its own lines
        for item in items:
            if type(item) is Reject:
                rejects.append(item)
                continue
            count += 1
            if by_event:
                self.at = count
            if documents.add(*convert(item)):
                yield self._batch(f"events {first + 1:,}-{count:,}", documents=documents.take(), rejects=rejects)
                rejects, first = [], count
        if documents.events or rejects:
            yield self._batch(f"events {first + 1:,}-{count:,}", documents=documents.take(), rejects=rejects)

    def _cli_event(self, item: Any) -> tuple[str, str, str | None, dict[str, Any]]:
        """An event of filter-log-events / get-log-events output (or NDJSON of such events)."""
        if type(item) is not dict:
            return self.group, self.stream, None, {"id": None, "timestamp": None, "message": item}
        stream = item.get("logStreamName") or item.get("logStream")
        group = item.get("logGroupName") or item.get("logGroup") or item.get("logGroupIdentifier")
        if type(group) is str and ":log-group:" in group:
            group = group.partition(":log-group:")[2].removesuffix(":*")
        timestamp = item.get("timestamp")
        if type(timestamp) is str:
            timestamp = iso_ms(timestamp)
        event_id = item.get("eventId", item.get("id"))
        owner = item.get("owner")
        message = item.get("message")
        if type(message) in (dict, list):
            message = orjson.dumps(message).decode()  # as CloudWatch holds a JSON message: its text
        return (
            group if type(group) is str and group else self.group,
            stream if type(stream) is str and stream else self.stream,
            owner if type(owner) is str else None,
            {"id": event_id, "timestamp": timestamp, "message": message},
        )

    def _insights_messages(self, rows: Iterator[dict[str, Any] | Reject]) -> Iterator[dict[str, Any] | Reject]:
        """Logs Insights rows with a `@message`: the REPORT query's rows (`@requestId`, `@duration`, ...) get
        the REPORT line they stand for; other rows without one are skipped, and one reject says what to add."""
        skipped = 0
        for row in rows:
            if not isinstance(row, Reject) and "@message" not in row:
                if "@requestId" in row and "@duration" in row:
                    row["@message"] = _report_from_insights(row)
                    row.setdefault("@timestamp", _EPOCH_START)  # the query did not ask for times
                else:
                    skipped += 1
                    continue
            yield row
        if skipped:
            reason = (
                f"{self.name}: {skipped:,} Logs Insights rows have no @message field, so there is nothing to read; "
                "add @message to the query (fields @timestamp, @message, @logStream, @log), or for invocations "
                'only use filter @type = "REPORT" | fields @timestamp, @requestId, @duration, @billedDuration, '
                "@memorySize, @maxMemoryUsed, @initDuration"
            )
            yield Reject("insights_without_message", reason, b"", None, self.name)

    def _insights_fields(self, fields: dict[str, Any]) -> tuple[str, str, str | None, dict[str, Any]]:
        group, owner = self.group, None
        log = fields.get("@log")
        if type(log) is str and log:
            account, _, name = log.rpartition(":")
            group, owner = name, account or None
        stream = fields.get("@logStream")
        moment = fields.get("@timestamp")
        timestamp = iso_ms(moment) if type(moment) is str else None
        return (
            group,
            stream if type(stream) is str and stream else self.stream,
            owner,
            {"id": None, "timestamp": timestamp, "message": fields.get("@message")},
        )

    # lines

    def _ndjson(self, content: Rewound) -> Iterator[Batch]:
        self.unit = "line"
        return self._log_events(self._ndjson_items(io.BufferedReader(content, CHUNK)), self._cli_event)

    def _ndjson_items(self, lines: io.BufferedReader) -> Iterator[Any]:
        """One JSON value a line; a line that is not JSON becomes a reject and reading goes on.

        A line is held when its message could be within the limit, however escaped; the classifier
        decides on the message itself, as for every format."""
        limit = self.options.max_message_chars * JSON_ESCAPE_BYTES + OTHER_FIELDS_BYTES
        number = 0
        while line := lines.readline(limit):
            number += 1
            self.unit, self.at = "line", number
            if len(line) == limit and not line.endswith(b"\n"):
                while (rest := lines.readline(limit)) and not rest.endswith(b"\n"):
                    pass
                reason = f"{self.name} line {number:,} is longer than {limit:,} bytes"
                yield Reject(RejectCode.OVERSIZED_EVENT, reason, line[:4096], None, self.name)
                continue
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                reason = f"{self.name} line {number:,} is not JSON ({exc})"
                yield Reject(RejectCode.NOT_JSON, reason, line[:4096], None, self.name)

    def _insights_csv(self, content: Rewound) -> Iterator[Batch]:
        text = io.TextIOWrapper(io.BufferedReader(content, CHUNK), encoding="utf-8-sig", errors="replace", newline="")
        cap = self.options.max_message_chars + OTHER_FIELDS_BYTES
        self.unit = "line"
        if csv.field_size_limit() < cap:
            csv.field_size_limit(cap)
        return self._log_events(self._insights_messages(self._csv_rows(text, cap)), self._insights_fields)

    def _csv_rows(self, text: io.TextIOWrapper, cap: int) -> Iterator[dict[str, str] | Reject]:
        """Rows as {column: value} by the header; a record too long to hold, or malformed, is a reject alone."""
        header: list[str] | None = None
        for record in self._csv_records(text, cap):
            if type(record) is Reject:
                yield record
                continue
            try:
                row = next(csv.reader([record]), [])  # type: ignore[list-item]
            except csv.Error as exc:
                reason = f"{self.name} line {self.at:,}: malformed CSV ({exc})"
                yield Reject(RejectCode.NOT_CSV, reason, record[:4096].encode(), None, self.name)  # type: ignore[index]
                continue
            if header is None:
                header = row
            elif row:
                yield dict(zip(header, row, strict=False))

    def _csv_records(self, text: io.TextIOWrapper, cap: int) -> Iterator[str | Reject]:
        """The records of a CSV as text: a record ends at a line end outside a quoted field (RFC 4180).

        A record over `cap` characters is not held: it becomes a reject and reading goes on after it.
        A quote never closed takes the rest of the input; that is a reject too.
        """
        readline = text.readline
        self.unit = "line"
        while line := readline(cap + 1):
            start = self.at + 1
            self.at += 1
            parts, size, quoted = [line], len(line), _csv_quote_open(line, False)
            while quoted or line[-1:] not in ("\n", "\r"):
                line = readline(cap + 1)
                if not line:
                    break
                self.at += line[-1:] in ("\n", "\r")
                size += len(line)
                quoted = _csv_quote_open(line, quoted)
                if size <= cap:
                    parts.append(line)
            if quoted:
                reason = f"{self.name} line {start:,}: a quoted field is not closed before the end of the input"
                yield Reject(RejectCode.NOT_CSV, reason, parts[0][:4096].encode(), None, self.name)
            elif size > cap:
                reason = f"{self.name} line {start:,}: one record of {size:,} characters; the limit is {cap:,}"
                yield Reject(RejectCode.OVERSIZED_EVENT, reason, parts[0][:4096].encode(), None, self.name)
            else:
                yield "".join(parts)

    def _tail(self, content: Rewound) -> Iterator[Batch]:
        return self._text_lines(content, tail_head, None)

    def _tail_short(self, content: Rewound) -> Iterator[Batch]:
        return self._text_lines(content, short_head, None)

    def _sam_logs(self, content: Rewound) -> Iterator[Batch]:
        return self._text_lines(content, sam_head, None)

    def _export(self, content: Rewound) -> Iterator[Batch]:
        return self._text_lines(content, export_head, None)

    def _text(self, content: Rewound) -> Iterator[Batch]:
        return self._text_lines(content, text_head, 0)

    def _text_lines(self, content: Rewound, head_of: LineHead, unknown_time: int | None) -> Iterator[Batch]:
        """Events that start on a line the format recognises and go on over the lines after it.

        A line `head_of` does not recognise continues the event before it (tracebacks, REPORT + XRAY);
        before the first recognised line it is an event of its own, at `unknown_time` (None: rejected).
        An event whose message (less the line end) is over the limit, in bytes of UTF-8, becomes a
        reject without being kept whole.
        """
        max_chars = self.options.max_message_chars
        held = max_chars + 2  # the message and its line end, "\r\n" at most
        limit = max_chars + 256
        text = io.TextIOWrapper(io.BufferedReader(content, CHUNK), encoding="utf-8", errors="replace", newline="\n")
        readline = text.readline
        documents = self.pending
        add = documents.add
        rejects: list[Reject] = []
        group, default_stream = self.group, self.stream
        self.unit = "line"
        parts: list[str] = []
        chars = start = number = 0
        first = 1
        timestamp = last_timestamp = unknown_time
        stream = default_stream
        in_long_line = False
        while True:
            line = readline(limit)
            if in_long_line:  # the rest of a physical line longer than the limit
                chars += message_bytes(line)
                in_long_line = bool(line) and not line.endswith("\n")
                continue
            found = None
            if line:
                number += 1
                self.at = number
                in_long_line = len(line) == limit and not line.endswith("\n")
                if "\x1b" in line:
                    line = ANSI.sub("", line)
                found = head_of(line)
                if found is None:
                    if parts:
                        chars += message_bytes(line)
                        if chars <= held:
                            parts.append(line)
                        continue
                    if not line.strip():
                        continue
                    found = (None, None, line)
            if parts:  # the event before this line is complete
                end = number - 1 if line else number
                message = None
                if chars <= held:
                    message = parts[0] if len(parts) == 1 else "".join(parts)
                    if message[-1:] == "\n":
                        message = message[:-2] if message[-2:] == "\r\n" else message[:-1]
                    if message[:2] == "\n{":
                        message = _compact_json(message)
                    chars = message_bytes(message)
                if message is None or chars > max_chars:
                    rejects.append(self._oversized(start, end, chars, parts))
                else:
                    if add(group, stream, None, {"id": None, "timestamp": timestamp, "message": message}):
                        yield self._batch(f"lines {first:,}-{end:,}", documents=documents.take(), rejects=rejects)
                        rejects, first = [], end + 1
                parts = []
            if found is None:
                break
            timestamp, named_stream, message = found
            if timestamp is None:
                timestamp = last_timestamp
            last_timestamp = timestamp
            stream = named_stream or default_stream
            parts, chars, start = [message], message_bytes(message), number
        if documents.events or rejects:
            yield self._batch(f"lines {first:,}-{number:,}", documents=documents.take(), rejects=rejects)

    def _oversized(self, start: int, end: int, chars: int, parts: list[str]) -> Reject:
        reason = (
            f"{self.name} lines {start:,}-{end:,}: one event of {chars:,} bytes or more; the limit is "
            f"{self.options.max_message_chars:,} (is the format right? --format forces one)"
        )
        return Reject(RejectCode.OVERSIZED_EVENT, reason, "".join(parts)[:4096].encode(), None, self.name)


def _insights_row(row: Any) -> dict[str, Any]:
    """A Logs Insights result row, a list of {"field", "value"}, as {field: value}."""
    fields = {}
    if type(row) is list:
        for cell in row:
            if type(cell) is dict and type(cell.get("field")) is str:
                fields[cell["field"]] = cell.get("value")
    return fields


# Logs Insights' REPORT fields and the REPORT line's: (Insights field, REPORT field, unit, bytes -> MB).
_INSIGHTS_REPORT_FIELDS = (
    ("@duration", "Duration", "ms", False),
    ("@billedDuration", "Billed Duration", "ms", False),
    ("@memorySize", "Memory Size", "MB", True),
    ("@maxMemoryUsed", "Max Memory Used", "MB", True),
    ("@initDuration", "Init Duration", "ms", False),
)
_MEMORY_BYTES = Range(0, MEMORY_MB.high * 1_000_000)
_EPOCH_START = "1970-01-01 00:00:00.000"


def _report_from_insights(row: dict[str, Any]) -> str:
    """The REPORT line a row of the REPORT query stands for. Insights gives memory in bytes (128 MB is
    128000000); a value that is not a number in range is written as it came, for the classifier to refuse."""
    parts = [f"REPORT RequestId: {row['@requestId']}"]
    for key, name, unit, in_bytes in _INSIGHTS_REPORT_FIELDS:
        value = row.get(key)
        if value is None or value == "":
            continue
        text = str(value)
        if in_bytes:
            size = text_number(text, _MEMORY_BYTES)
            if size is not None:
                text = str(round(size / 1_000_000))
        parts.append(f"{name}: {text} {unit}")
    return "\t".join(parts) + "\t"


_CSV_QUOTED = re.compile(r'[^"]*(?:""[^"]*)*')
"""The inside of a quoted CSV field, up to its closing quote (`""` is a quote in it)."""
_CSV_UNQUOTED = re.compile(r"[^,]*")
"""An unquoted field, or what follows a closing quote, up to the next comma: a quote there is data."""


def _csv_quote_open(text: str, quoted: bool) -> bool:
    """Whether a quoted field is open at the end of `text`, `quoted` telling whether one was at its start.

    As Python's csv reads: a quote opens a quoted field only at the start of a field."""
    position, end = 0, len(text)
    while True:
        if quoted:
            position = _CSV_QUOTED.match(text, position).end()  # type: ignore[union-attr]
            if position >= end:
                return True
            quoted = False
            position = _CSV_UNQUOTED.match(text, position + 1).end()  # type: ignore[union-attr]
        elif text[position : position + 1] == '"':
            quoted = True
            position += 1
            continue
        else:
            position = _CSV_UNQUOTED.match(text, position).end()  # type: ignore[union-attr]
        if position >= end:
            return False
        position += 1  # the comma: a field starts after it


def _compact_json(message: str) -> str:
    """`aws logs tail --format json` pretty-prints JSON messages on the lines after the stream name."""
    try:
        return orjson.dumps(orjson.loads(message)).decode()
    except orjson.JSONDecodeError:
        return message[1:]
