"""Classify: CloudWatch Logs documents into structured events. Hot path, no I/O.

One `Classifier` lives for a run (a Lambda container, a CLI run, a consumer process). It keeps two
small bounded pieces of state, each remembering the entries used last (at least half its capacity,
at most all of it; `_Recent`), in constant time:

- per log stream (50,000): the function name (when only a platform record says it) and the
  request in progress, so lines without a request id (print output, unhandled exceptions) are
  attributed to the invocation between its START and END. A name or request id longer than 256
  characters is not kept past its document;
- per (function, request id) (200,000): which of timeout / out_of_memory / cold_start /
  error were already emitted, so each shows at most once however many lines report it. When two
  lines in one document report the same signal, the later one fills the fields the first could not
  know (the REPORT line gives a timeout its duration).

Both are keyed by the 64-bit hash of the names, so an entry holds no text from the logs: the two
take at most about 30 MB together, whatever the logs say. Two keys with one hash (odds about 1e-9
when full) would share an entry: a duplicate signal suppressed, or a line put with another request.

Lines are dispatched on their first character and cheap prefix tests before any regex.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import orjson

from shipper.bounds import (
    DURATION_MS,
    EPOCH_MS,
    MEMORY_MB,
    TIMEOUT_S,
    Range,
    json_number,
    json_whole,
    text_number,
    text_whole,
    text_whole_or_number,
)
from shipper.metrics import MalformedMetric, parse_metric_object, parse_metric_text
from shipper.names import Count, RejectCode
from shipper.reject import Reject
from shipper.signals import find_out_of_memory, find_throttle

MAX_MESSAGE_CHARS = 1024 * 1024
"""The longest message of a log event, in bytes of UTF-8 (CloudWatch Logs caps an event at 1 MB); a longer
message is a reject, kept whole in the dead letter. Every input format is held to it (`message_bytes`)."""


def message_bytes(message: str) -> int:
    """The length of `message` in UTF-8, as the message limit counts it (a lone surrogate counts 3)."""
    return len(message) if message.isascii() else len(message.encode("utf-8", "surrogatepass"))


_MAX_MALFORMED_REASONS = 20
"""Distinct reasons kept for metric lines that could not be read; the rest are only counted."""
_MAX_TRACKED_STREAMS = 50_000
_MAX_RUNTIME_CHARS = 64
_MAX_TRACKED_REQUESTS = 200_000
_MAX_HELD_CHARS = 256
"""The longest function name or request id a log stream's state keeps from one document to the next."""
_SIGNAL_BITS = {"cold_start": 1, "timeout": 2, "out_of_memory": 4, "error": 8}
_ERROR_BIT = _SIGNAL_BITS["error"]
_FAILURE_BITS = _SIGNAL_BITS["timeout"] | _SIGNAL_BITS["out_of_memory"] | _ERROR_BIT
"""An error is not reported for an invocation that already failed otherwise."""

_LAMBDA_LOG_GROUP_PREFIX = "/aws/lambda/"
# Custom log groups (advanced logging controls): "2024/05/20/<function>[$LATEST]<instance id>".
_STREAM_FUNCTION = re.compile(r"\d{4}/\d\d/\d\d/([^\[/]+)\[")

_PYTHON_LEVELS = {
    "[DEBUG]": "DEBUG",
    "[INFO]": "INFO",
    "[WARNING]": "WARNING",
    "[ERROR]": "ERROR",
    "[CRITICAL]": "CRITICAL",
}
_NODE_LEVELS = frozenset(("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"))
# `[ERROR] text`: a Python logger's level without time or request id; PowerShell's `[Information] - text`.
_BRACKET_LEVELS = {
    **_PYTHON_LEVELS,
    "[Information]": "INFO",
    "[Warning]": "WARNING",
    "[Error]": "ERROR",
    "[Verbose]": "DEBUG",
    "[Debug]": "DEBUG",
}
_NODE_UNHANDLED = ("Invoke Error", "Uncaught Exception", "Unhandled Promise Rejection")
_EXCEPTION_TYPE = re.compile(r"[A-Za-z_][\w.]*")
# A request id as Lambda writes it: a UUID, 8-4-4-4-12 groups (letters allowed: AWS's samples write `xmpl` in them).
_REQUEST_ID = r"[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}"
_REQUEST_ID_SHAPE = re.compile(_REQUEST_ID)
# START's request id: its third word (`\s` is the whitespace `str.split` splits at), when it has a request id's shape.
_START_REQUEST_ID = re.compile(rf"START RequestId:\s+({_REQUEST_ID})(?!\S)")
# `<ISO time> <request id> ` or log4j's `[<yyyy-MM-dd HH:mm:ss>] <request id> <LEVEL> <Class>[:<line>] - `.
_REQUEST_PREFIX = re.compile(
    rf"(?:\d{{4}}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{{1,9}})?Z?[ \t]+)?(?P<id>{_REQUEST_ID})[ \t]+"
    r"(?:(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)[ \t]+(?=\S+ - ))?"
)
# Ruby's Logger as the Lambda guide shows it: `I, [2019-10-26T10:04:01.689856 #8]  INFO <request id> -- : text`.
_RUBY_LOGGER = re.compile(
    r"[DIWEFAU], \[[^\]\n]{1,64}\] +(DEBUG|INFO|WARN|ERROR|FATAL|ANY|UNKNOWN)"
    rf"(?: (?P<id>{_REQUEST_ID}))? -- [^:\n]{{0,256}}: "
)
_TASK_TIMED_OUT = re.compile(
    rf"\d{{4}}-\d\d-\d\dT[\d:.]+Z\s+({_REQUEST_ID})\s+Task timed out after (\d+(?:\.\d+)?) seconds"
)
# Platform lines whose tabs were turned into spaces (consoles, blog copies): known keys only.
_SPACED_PLATFORM_FIELD = re.compile(
    r"(RequestId|Billed Restore Duration|Restore Duration|Billed Duration|Init Duration|Duration|"
    r"Memory Size|Max Memory Used|Status|Error Type|Phase): (\S+)"
)
# Canonical REPORT line (tabs, no Status/Restore fields): one regex instead of the generic field parser.
# What may follow it is checked with string operations: nothing, or the X-Ray trailer on its second line.
# Its numbers are short enough for int() and float() to be cheap; a line with longer ones, or with
# values outside their ranges (shipper.bounds), goes to the generic parser, which keeps it as a log line.
_REPORT = re.compile(
    rf"REPORT RequestId: ({_REQUEST_ID})"
    r"\tDuration: (\d{1,9}(?:\.\d{1,6})?) ms\tBilled Duration: (\d{1,9}) ms\t"
    r"Memory Size: (\d{1,7}) MB\tMax Memory Used: (\d{1,7}) MB\t(?:Init Duration: (\d{1,9}(?:\.\d{1,6})?) ms\t)?"
)
_MAX_DURATION_MS = DURATION_MS.high
_MAX_MEMORY_MB = MEMORY_MB.high
_MIN_EPOCH_MS, _MAX_EPOCH_MS = EPOCH_MS
# The numeric fields of a REPORT line read by the generic parser, in `_invocation`'s order.
_REPORT_NUMBERS: tuple[tuple[str, Callable[[str, Range], int | float | None], Range], ...] = (
    ("Duration", text_number, DURATION_MS),
    ("Billed Duration", text_whole_or_number, DURATION_MS),
    ("Memory Size", text_whole, MEMORY_MB),
    ("Max Memory Used", text_whole, MEMORY_MB),
    ("Init Duration", text_number, DURATION_MS),
    ("Restore Duration", text_number, DURATION_MS),
    ("Billed Restore Duration", text_whole_or_number, DURATION_MS),
)
_XRAY_TRAILER = "\nXRAY TraceId: "
# The X-Ray fields of a REPORT: on its second line (as Lambda writes it), after a tab or spaces on the same line
# (copies that lost the newline), or as a log event of their own right after it (copies split by line).
_XRAY_PREFIX = "XRAY TraceId: "
# Runtime failures (exceptions, OOM strings, SDK throttling errors) are written at WARN or above, or with no
# level at all (print, stderr, tracebacks): lines at these levels are not scanned for signals.
_QUIET_LEVELS = frozenset(("TRACE", "DEBUG", "INFO"))
_FAILURES = frozenset(("timeout", "out_of_memory", "error"))
_OUT_OF_MEMORY = "Runtime.OutOfMemory"
"""The error type of an invocation Lambda stopped for running out of memory, as REPORT's `Error Type` says it."""
# Lambda writes platform records as {"time":"<24-char ISO time>","type":"platform.<name>","record":{...}}.
# Most of them open or close an invocation and produce no event: read those without parsing the JSON.
_PLATFORM_PREFIX = '{"time":"'
_PLATFORM_TYPE_AT = len(_PLATFORM_PREFIX) + 24 + len('",')
_PLATFORM_TYPE_KEY = '"type":"platform.'
_SILENT_PLATFORM_TYPES = frozenset(
    ("runtimeDone", "initRuntimeDone", "restoreStart", "restoreRuntimeDone", "extension", "telemetrySubscription")
)
_LOADS = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_N = TypeVar("_N", bound=float)


_V = TypeVar("_V")


class _Recent(Generic[_V]):
    """A map that remembers at least the `capacity // 2` keys used last, and at most `capacity`, in O(1).

    Keys go into a young generation; once it holds `capacity // 2`, the old one is dropped whole and the
    young one becomes old. A key found in the old generation moves to the young one. (Evicting from one
    dict entry by entry is not O(1): `del d[next(iter(d))]` scans the slots deleted before, and the dict
    settles at three times the size of its entries.)
    """

    __slots__ = ("half", "old", "young")

    def __init__(self, capacity: int) -> None:
        self.half = max(1, capacity // 2)
        self.young: dict[int, _V] = {}
        self.old: dict[int, _V] = {}

    def get(self, key: int) -> _V | None:
        value = self.young.get(key)
        if value is None:
            value = self.old.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: int, value: _V) -> None:
        young = self.young
        if key not in young and len(young) >= self.half:
            self.old = young
            self.young = young = {}
        young[key] = value


def function_from_log_source(log_group: str, log_stream: str) -> str | None:
    """The Lambda function a log group / stream belongs to, when their names say it."""
    if log_group.startswith(_LAMBDA_LOG_GROUP_PREFIX):
        return log_group[len(_LAMBDA_LOG_GROUP_PREFIX) :] or None
    match = _STREAM_FUNCTION.match(log_stream)
    return match.group(1) if match else None


def _runtime(value: Any) -> str | None:
    """A runtime version as INIT_START names it (`python:3.12.v27`): short printable ASCII, else None."""
    if type(value) is str and 0 < len(value) <= _MAX_RUNTIME_CHARS and value.isascii() and value.isprintable():
        return value
    return None


def is_request_id(text: str) -> bool:
    """Whether `text` has the shape of a Lambda request id."""
    return len(text) == 36 and _REQUEST_ID_SHAPE.fullmatch(text) is not None


def platform_fields(line: str) -> dict[str, str]:
    """`Key: value[ unit]` fields of a TEXT platform line (REPORT, INIT_REPORT, RESTORE_REPORT).

    Parsed generically so fields Lambda adds later do not break it; the unit is dropped. Known fields are
    also found where spaces stand for the tabs, all of them or some (`Billed Duration: 100 ms Memory Size:
    128 MB`, as copies of the line show).
    """
    fields: dict[str, str] = {}
    spaced = True
    if "\t" in line:
        spaced = False
        # Drop the line's own name ("REPORT ", "INIT_REPORT ", ...) so the first field reads like the rest.
        for part in line.partition(" ")[2].split("\t"):
            key, sep, value = part.partition(": ")
            if sep:
                fields[key] = value.split(" ", 1)[0].strip()
                spaced = spaced or ": " in value  # another field after a space, not a TAB
    if spaced:
        for key, value in _SPACED_PLATFORM_FIELD.findall(line):
            fields.setdefault(key, value)
    return fields


class Classifier:
    """Turns CloudWatch Logs DATA_MESSAGE documents into contract events."""

    def __init__(self, max_message_chars: int = MAX_MESSAGE_CHARS) -> None:
        self.max_message_chars = max_message_chars
        # hash((log group, log stream)) -> [function named by a platform record, request in progress,
        #                                  runtime version named by INIT_START]
        self._streams: _Recent[list[str | None]] = _Recent(_MAX_TRACKED_STREAMS)
        # hash((function, request id)) -> bits (_SIGNAL_BITS) of the signals already emitted for that invocation
        self._signals_seen: _Recent[int] = _Recent(_MAX_TRACKED_REQUESTS)
        self.counts: dict[str, int] = {}
        # why metric lines could not be read -> how many (at most _MAX_MALFORMED_REASONS reasons)
        self.malformed_metrics: dict[str, int] = {}

    def count(self, name: str, increment: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + increment

    def malformed_metric(self, reason: str) -> None:
        """Count a line that claims to be a metric line and is not a valid one, and why."""
        self.count(Count.METRIC_LINE_MALFORMED)
        reasons = self.malformed_metrics
        if reason in reasons or len(reasons) < _MAX_MALFORMED_REASONS:
            reasons[reason] = reasons.get(reason, 0) + 1

    def classify(
        self, document: dict[str, Any], events: list[dict[str, Any]], rejects: list[Reject], source: str | None = None
    ) -> None:
        """Append the events of one DATA_MESSAGE to `events`, its unusable log events to `rejects`."""
        _DocumentClassifier(self, document, events, rejects, source).run()

    def _stream_state(self, log_group: str, log_stream: str) -> list[str | None]:
        key = hash((log_group, log_stream))
        state = self._streams.get(key)
        if state is None:
            state = [None, None, None]
            self._streams.put(key, state)
        return state

    def _first_sighting(self, key: tuple[str | None, str], signal: str) -> bool:
        """Record `signal` for an invocation; False when it (or, for errors, a failure) was seen."""
        hashed = hash(key)
        bit = _SIGNAL_BITS[signal]
        seen = self._signals_seen.get(hashed)
        if seen is None:
            self._signals_seen.put(hashed, bit)
            return True
        if seen & (_FAILURE_BITS if bit == _ERROR_BIT else bit):
            return False
        self._signals_seen.put(hashed, seen | bit)
        return True


class _DocumentClassifier:
    """Classifies the log events of one document; holds what all its events share."""

    __slots__ = (
        "account",
        "classifier",
        "common",
        "document",
        "events",
        "function",
        "last_report",
        "last_report_end",
        "log_group",
        "log_stream",
        "pending_signals",
        "rejects",
        "source",
        "stream_state",
    )

    def __init__(
        self,
        classifier: Classifier,
        document: dict[str, Any],
        events: list[dict[str, Any]],
        rejects: list[Reject],
        source: str | None,
    ) -> None:
        self.classifier = classifier
        self.document = document
        self.events = events
        self.rejects = rejects
        self.source = source
        self.log_group: str = document["logGroup"]
        self.log_stream: str = document["logStream"]
        owner = document.get("owner")
        self.account = owner if type(owner) is str else None
        self.stream_state = classifier._stream_state(self.log_group, self.log_stream)
        self.function = function_from_log_source(self.log_group, self.log_stream) or self.stream_state[0]
        self.common = self._common_fields()
        # (request id, signal type) -> the event emitted from this document, to be completed by later lines
        self.pending_signals: dict[tuple[str, str], dict[str, Any]] = {}
        # The invocation of the last text REPORT, and how many events there were once it was handled: an X-Ray
        # line of its own belongs to it only when nothing came between.
        self.last_report: dict[str, Any] | None = None
        self.last_report_end = -1

    def run(self) -> None:
        max_chars = self.classifier.max_message_chars
        state = self.stream_state
        app_line = self._app_line
        min_ms, max_ms = _MIN_EPOCH_MS, _MAX_EPOCH_MS
        for log_event in self.document["logEvents"]:
            try:
                message = log_event["message"]
                timestamp = log_event["timestamp"]
            except (KeyError, TypeError, IndexError):
                message = timestamp = None
            if type(message) is not str or type(timestamp) is not int:
                self._reject_event(
                    log_event, RejectCode.BAD_LOG_EVENT, "log event has no string message or integer timestamp"
                )
                continue
            if timestamp < min_ms or timestamp > max_ms:
                self._reject_event(
                    log_event, RejectCode.BAD_LOG_EVENT, "log event timestamp is not in the years 0001 to 9999"
                )
                continue
            if len(message) * 4 > max_chars and (size := message_bytes(message)) > max_chars:
                self._reject_event(
                    log_event,
                    RejectCode.OVERSIZED_EVENT,
                    f"log event message has {size:,} bytes; the limit is {max_chars:,}",
                )
                continue
            event_id = log_event.get("id")
            if type(event_id) is not str:
                event_id = None if event_id is None else str(event_id)
            first = message[:1]
            if first == "[":
                self._python_text_line(message, timestamp, event_id)
            elif first == "{":
                self._json_line(message, timestamp, event_id)
            elif "0" <= first <= "9":
                self._timestamped_line(message, timestamp, event_id)
            elif first == "S" and message.startswith("START RequestId: "):
                start = _START_REQUEST_ID.match(message)
                state[1] = None if start is None else start.group(1)
            elif first == "E" and message.startswith(("END RequestId: ", "EXTENSION\t")):
                if message[1] == "N":  # END closes the invocation; EXTENSION lines carry nothing
                    state[1] = None
            elif first == "R" and message.startswith("REPORT RequestId: "):
                self._report_line(message, timestamp, event_id)
            elif first in "IRTLX" and self._other_platform_line(message, timestamp, event_id):
                pass
            elif not self._prefixed_line(message, timestamp, event_id):
                app_line(None, state[1], message, timestamp, event_id)
        for index, held in enumerate(state):
            if held is not None and len(held) > _MAX_HELD_CHARS:
                state[index] = None

    # --- TEXT platform lines ------------------------------------------------------------------------

    def _report_line(self, message: str, timestamp: int, event_id: str | None) -> None:
        match = _REPORT.match(message)
        if match is not None:
            rest = message[match.end() :]
            if rest.startswith(_XRAY_TRAILER):
                xray = _trace_id(rest[len(_XRAY_TRAILER) :])
            elif rest.startswith(_XRAY_PREFIX):
                xray = _trace_id(rest[len(_XRAY_PREFIX) :])
            elif rest in ("", "\n"):
                xray = None
            else:
                match = None
        if match is not None:
            request_id, duration, billed, memory, max_memory, init = match.groups()
            duration_ms, billed_ms = float(duration), int(billed)
            memory_mb, max_memory_mb = int(memory), int(max_memory)
            init_duration = None if init is None else float(init)
            if (
                duration_ms <= _MAX_DURATION_MS
                and billed_ms <= _MAX_DURATION_MS
                and memory_mb <= _MAX_MEMORY_MB
                and max_memory_mb <= _MAX_MEMORY_MB
                and (init_duration is None or init_duration <= _MAX_DURATION_MS)
            ):
                self._invocation(
                    timestamp,
                    request_id,
                    event_id,
                    duration_ms,
                    billed_ms,
                    memory_mb,
                    max_memory_mb,
                    init_duration,
                    None,
                    None,
                    None,
                    None,
                    xray,
                    "text",
                )
                return
        text = message
        if "\t" not in text and "\\t" in text:
            # Copied through one JSON encoding too many: `\t` written out. Read as the TAB it stood for.
            text = text.replace("\\t", "\t").replace("\\n", "\n")
        head, xray_sep, xray = text.partition(_XRAY_PREFIX)
        fields = platform_fields(head)
        request_id = fields.get("RequestId")
        numbers: list[int | float | None] = []
        for key, parse, bounds in _REPORT_NUMBERS:
            raw = fields.get(key)
            value = None if raw is None else parse(raw, bounds)
            if value is None and raw is not None:
                break
            numbers.append(value)
        if len(numbers) < len(_REPORT_NUMBERS) or request_id is None or not is_request_id(request_id):
            # A REPORT line with a number that is not one, or out of its range, or without a request id of
            # Lambda's shape, is kept as a log line.
            self.classifier.count(Count.PLATFORM_LINE_UNPARSED)
            self._app_line(None, self.stream_state[1], message, timestamp, event_id)
            return
        duration, billed, memory, max_memory, init, restore, billed_restore = numbers
        self._invocation(
            timestamp,
            request_id,
            event_id,
            duration,
            billed,
            cast("int | None", memory),  # both memory fields are parsed by text_whole (_REPORT_NUMBERS)
            cast("int | None", max_memory),
            init,
            restore,
            billed_restore,
            fields.get("Status"),
            fields.get("Error Type"),
            _trace_id(xray) if xray_sep else None,
            "text",
        )

    def _number(self, raw: Any, parse: Callable[[Any, Range], _N | None], bounds: Range) -> _N | None:
        """`parse(raw, bounds)`; a field that is there but unreadable or out of range is null, and counted."""
        if raw is None:
            return None
        value = parse(raw, bounds)
        if value is None:
            self.classifier.count(Count.NUMBER_OUT_OF_RANGE)
        return value

    def _other_platform_line(self, message: str, timestamp: int, event_id: str | None) -> bool:
        """Handle INIT_*, RESTORE_*, TELEMETRY, LOGS, XRAY and runtime-exit lines; False if not one."""
        if message.startswith(_XRAY_PREFIX):
            self._xray_line(message)
            return True
        if message.startswith("INIT_START "):
            self.stream_state[2] = _runtime(platform_fields(message).get("Runtime Version"))
            return True
        if message.startswith(("RESTORE_START ", "TELEMETRY\t", "LOGS\t")):
            return True
        if message.startswith(("INIT_REPORT ", "RESTORE_REPORT ")):
            fields = platform_fields(message)
            status = fields.get("Status")
            if status is not None and status != "success":
                phase = "restore" if message[0] == "R" else fields.get("Phase")
                duration = fields.get("Init Duration", fields.get("Restore Duration"))
                init_duration_ms = self._number(duration, text_number, DURATION_MS)
                self._init_error(timestamp, event_id, fields.get("Error Type"), phase, status, init_duration_ms)
            return True
        if message.startswith("RequestId: ") and " Error: Runtime exited" in message:
            return self._runtime_exit(message, timestamp, event_id)
        return False

    def _xray_line(self, message: str) -> None:
        """`XRAY TraceId: ...` as a log event of its own: the trace of the REPORT just before it, if that had none."""
        report = self.last_report
        if report is not None and report["xray_trace_id"] is None and self.last_report_end == len(self.events):
            report["xray_trace_id"] = _trace_id(message[len(_XRAY_PREFIX) :])

    def _init_error(
        self,
        timestamp: int,
        event_id: str | None,
        error_type: Any,
        phase: Any,
        status: str,
        init_duration_ms: float | None,
    ) -> None:
        event = self._base("init_error", timestamp, None, event_id)
        event["error_type"] = error_type if type(error_type) is str else None
        event["phase"] = phase if type(phase) is str else None
        event["status"] = status
        event["init_duration_ms"] = init_duration_ms
        self.events.append(event)

    def _runtime_exit(self, message: str, timestamp: int, event_id: str | None) -> bool:
        """`RequestId: <id> Error: Runtime exited with error: signal: killed\\nRuntime.ExitError`; False if no id."""
        request_id = message.split(None, 2)[1]
        if not is_request_id(request_id):
            return False
        first_line, _, rest = message.partition("\n")
        reason = first_line.partition(" Error: ")[2].strip()
        error_type = rest.strip().split("\n", 1)[0].strip() or "Runtime.ExitError"
        if reason.endswith("signal: killed"):
            self._signal("out_of_memory", timestamp, request_id, event_id, _oom_fields(None, None, error_type, reason))
        else:
            self._signal("error", timestamp, request_id, event_id, {"error_type": error_type, "message": reason})
        return True

    # --- application lines --------------------------------------------------------------------------

    def _python_text_line(self, message: str, timestamp: int, event_id: str | None) -> None:
        """`[LEVEL]\\t<time>\\t<request id>\\t<text>` or the unhandled `[ERROR] Type: message`."""
        if message.startswith("[ERROR] "):
            body = message[8:]
            first_line = body.split("\n", 1)[0].rstrip("\r")
            error_type, sep, error_message = first_line.partition(": ")
            if _EXCEPTION_TYPE.fullmatch(error_type):
                request_id = self.stream_state[1]
                self._app_line("ERROR", request_id, body, timestamp, event_id, oom_scan=False)
                if error_type == "MemoryError":
                    fields = _oom_fields(None, None, error_type, first_line)
                    self._signal("out_of_memory", timestamp, request_id, event_id, fields)
                else:
                    fields = {"error_type": error_type, "message": error_message if sep else None}
                    self._signal("error", timestamp, request_id, event_id, fields)
                return
        parts = message.split("\t", 3)
        level = _PYTHON_LEVELS.get(parts[0]) if len(parts) == 4 else None
        if level is not None:
            self._app_line(level, parts[2] or self.stream_state[1], parts[3], timestamp, event_id)
            return
        # `[ERROR] message` (a logger's format without time and request id) or PowerShell's `[Information] - text`
        tag, _, body = message.partition("]")
        level = _BRACKET_LEVELS.get(tag + "]") if body[:1] in (" ", "\t") else None
        if level is None:
            self._app_line(None, self.stream_state[1], message, timestamp, event_id)
            return
        body = body[1:]
        self._app_line(level, self.stream_state[1], body[2:] if body.startswith("- ") else body, timestamp, event_id)

    def _timestamped_line(self, message: str, timestamp: int, event_id: str | None) -> None:
        """Node `<ISO time>\\t<request id>\\t<LEVEL>\\t<text>`, or Lambda's `Task timed out` line."""
        if message[24:25] == "\t":
            parts = message.split("\t", 3)
            if len(parts) == 4 and parts[2] in _NODE_LEVELS:
                request_id: str | None = parts[1]
                if request_id == "undefined" or not request_id:
                    request_id = self.stream_state[1]
                body = parts[3]
                self._app_line(parts[2], request_id, body, timestamp, event_id)
                if parts[2] == "ERROR" and body.startswith(_NODE_UNHANDLED):
                    self._node_unhandled(body, request_id, timestamp, event_id)
                return
        elif " Task timed out after " in message:
            match = _TASK_TIMED_OUT.match(message)
            if match is not None:
                timeout_s = self._number(match.group(2), text_number, TIMEOUT_S)
                fields: dict[str, Any] = {"timeout_s": timeout_s, "duration_ms": None}
                self._signal("timeout", timestamp, match.group(1), event_id, fields)
                return
        if not self._prefixed_line(message, timestamp, event_id):
            self._app_line(None, self.stream_state[1], message, timestamp, event_id)

    def _prefixed_line(self, message: str, timestamp: int, event_id: str | None) -> bool:
        """A line whose prefix names its request id (and often its level); False if it has no such prefix.

        `<ISO time> <request id> <text>` (what the Node.js runtime prints on a fatal error), log4j with the
        Lambda appender's `[<yyyy-MM-dd HH:mm:ss>] <request id> <LEVEL> <Class>:<line> - <text>`, and Ruby's
        Logger `I, [<time> #<pid>]  INFO <request id> -- : <text>`.
        """
        if message[1:4] == ", [":
            match = _RUBY_LOGGER.match(message)
            level = None if match is None else match.group(1)
        elif message[8:9] == "-" or message[28:29] == "-" or message[33:34] == "-":
            match = _REQUEST_PREFIX.match(message)
            level = None if match is None else match.group(2)
        else:
            return False
        if match is None:
            return False
        request_id = match.group("id") or self.stream_state[1]
        body = message[match.end() :]
        if level is None:
            word = body.split(None, 1)[0] if body.strip() else ""
            level = word if word in _NODE_LEVELS else None
        self._app_line(level, request_id, body, timestamp, event_id)
        return True

    def _node_unhandled(self, body: str, request_id: str | None, timestamp: int, event_id: str | None) -> None:
        """`Invoke Error \\t{"errorType": ..., "errorMessage": ...}` and its kin."""
        blob = body.partition("\t")[2]
        try:
            error = _LOADS(blob)
        except _JSONDecodeError:
            error = None
        if type(error) is not dict:
            error = {}
        error_type = error.get("errorType")
        error_message = error.get("errorMessage")
        fields = {
            "error_type": error_type if type(error_type) is str else None,
            "message": error_message if type(error_message) is str else body.partition("\t")[0].strip(),
        }
        self._signal("error", timestamp, request_id, event_id, fields)

    def _json_line(self, message: str, timestamp: int, event_id: str | None) -> None:
        if message.startswith(_PLATFORM_TYPE_KEY, _PLATFORM_TYPE_AT) and message.startswith(_PLATFORM_PREFIX):
            name_start = _PLATFORM_TYPE_AT + len(_PLATFORM_TYPE_KEY)
            name = message[name_start : message.find('"', name_start)]
            if name in _SILENT_PLATFORM_TYPES:
                return
            if name == "start":
                id_start = message.find('"requestId":"', name_start) + len('"requestId":"')
                if id_start > name_start:
                    self.stream_state[1] = message[id_start : message.find('"', id_start)] or None
                    return
        try:
            record = _LOADS(message)
        except _JSONDecodeError:
            record = None
        if type(record) is not dict:
            self._app_line(None, self.stream_state[1], message, timestamp, event_id)
            return
        record_type = record.get("type")
        if type(record_type) is str and record_type.startswith("platform."):
            body = record.get("record")
            if type(body) is dict:
                self._platform_record(record_type, body, timestamp, event_id)
                return
        if ("_aws" in record or "m" in record) and self._metrics(
            parse_metric_object(record, timestamp), self.stream_state[1], event_id
        ):
            return
        self._json_app_log(record, message, timestamp, event_id)

    def _json_app_log(self, record: dict[str, Any], message: str, timestamp: int, event_id: str | None) -> None:
        """An application log in Lambda's JSON log format (Python, Node, Powertools and the like)."""
        level = record.get("level")
        if level is None:
            level = record.get("log_level")
        level = level.upper() if type(level) is str else None
        request_id = record.get("requestId")
        if type(request_id) is not str or not request_id:
            request_id = record.get("AWSRequestId") or record.get("function_request_id")
            if type(request_id) is not str or not request_id:
                request_id = self.stream_state[1]
        text = record.get("message")
        event = self._base("log", timestamp, request_id, event_id)
        event["level"] = level
        event["fields"] = record
        self.events.append(event)
        if "errorType" not in record:
            event["message"] = text if type(text) is str else "" if text is None else orjson.dumps(text).decode()
            if level not in _QUIET_LEVELS:
                self._app_signals(message, request_id, timestamp, event_id, oom_scan=True)
            return
        error_type = record["errorType"]
        error_message = record.get("errorMessage")
        if type(error_message) is not str:
            error_message = None
        if type(text) is not str:
            if text is not None:
                text = orjson.dumps(text).decode()
            elif type(error_type) is str:
                text = f"{error_type}: {error_message}" if error_message is not None else error_type
            else:
                text = ""
        event["message"] = text
        # The runtime's own unhandled-error records: Python's `log_level` shape, Node's "Invoke Error ..." text.
        unhandled = type(error_type) is str and (
            ("log_level" in record and "level" not in record) or text.startswith(_NODE_UNHANDLED)
        )
        oom_found = unhandled and error_type == "MemoryError"
        if oom_found:
            self._signal(
                "out_of_memory", timestamp, request_id, event_id, _oom_fields(None, None, error_type, error_message)
            )
        elif unhandled:
            self._signal("error", timestamp, request_id, event_id, {"error_type": error_type, "message": error_message})
        if level not in _QUIET_LEVELS:
            self._app_signals(message, request_id, timestamp, event_id, oom_scan=not oom_found)

    def _app_line(
        self,
        level: str | None,
        request_id: str | None,
        body: str,
        timestamp: int,
        event_id: str | None,
        oom_scan: bool = True,
    ) -> None:
        """An application line: a metric line, or a `log` event plus any signal it shows."""
        if "|" in body and self._metrics(parse_metric_text(body, timestamp), request_id, event_id):
            return
        fields = None
        first = body[:1]
        if first == "{":
            try:
                parsed = _LOADS(body)
            except _JSONDecodeError:
                parsed = None
            if type(parsed) is dict:
                if ("_aws" in parsed or "m" in parsed) and self._metrics(
                    parse_metric_object(parsed, timestamp), request_id, event_id
                ):
                    return
                fields = parsed
        elif first == "L" and body.startswith("LAMBDA_WARNING: ") and "\n{" in body:
            # Python JSON log format: the runtime's warning and the unhandled error's JSON in one event.
            warning, _, error_json = body.partition("\n{")
            self._app_line("WARNING", request_id, warning, timestamp, event_id)
            self._json_line("{" + error_json, timestamp, event_id)
            return
        event = self.common.copy()
        event["type"] = "log"
        event["timestamp"] = timestamp
        event["request_id"] = request_id
        event["event_id"] = event_id
        event["level"] = level
        event["message"] = body.rstrip("\r\n")
        event["fields"] = fields
        self.events.append(event)
        if level not in _QUIET_LEVELS:
            self._app_signals(body, request_id, timestamp, event_id, oom_scan)

    def _app_signals(
        self, text: str, request_id: str | None, timestamp: int, event_id: str | None, oom_scan: bool
    ) -> None:
        throttle = find_throttle(text)
        if throttle is not None:
            event = self._base("throttle", timestamp, request_id, event_id)
            event["error_code"], event["message"] = throttle
            self.events.append(event)
        if oom_scan:
            oom = find_out_of_memory(text)
            if oom is not None:
                fields = _oom_fields(None, None, oom[0], oom[1])
                self._signal("out_of_memory", timestamp, request_id, event_id, fields)

    def _metrics(
        self, parsed: list[dict[str, Any]] | MalformedMetric | None, request_id: str | None, event_id: str | None
    ) -> bool:
        """Emit parsed metrics; False (the line stays a log line) when it was no valid metric line."""
        if parsed is None:
            return False
        if isinstance(parsed, MalformedMetric):
            self.classifier.malformed_metric(parsed.reason)
            return False
        common = self._base("metric", 0, request_id, event_id)
        for metric in parsed:
            event = common | metric
            if event["request_id"] is None:
                event["request_id"] = request_id
            self.events.append(event)
        return True

    # --- JSON platform records ----------------------------------------------------------------------

    def _platform_record(self, record_type: str, record: dict[str, Any], timestamp: int, event_id: str | None) -> None:
        if record_type == "platform.report":
            metrics = record.get("metrics")
            if type(metrics) is not dict:
                metrics = {}
            tracing = record.get("tracing")
            trace_value = tracing.get("value") if type(tracing) is dict else None
            request_id = record.get("requestId")
            status = record.get("status")
            error_type = record.get("errorType")
            number = self._number
            self._invocation(
                timestamp,
                request_id if type(request_id) is str else None,
                event_id,
                number(metrics.get("durationMs"), json_number, DURATION_MS),
                number(metrics.get("billedDurationMs"), json_number, DURATION_MS),
                number(metrics.get("memorySizeMB"), json_whole, MEMORY_MB),
                number(metrics.get("maxMemoryUsedMB"), json_whole, MEMORY_MB),
                number(metrics.get("initDurationMs"), json_number, DURATION_MS),
                number(metrics.get("restoreDurationMs"), json_number, DURATION_MS),
                number(metrics.get("billedRestoreDurationMs"), json_number, DURATION_MS),
                None if status == "success" or type(status) is not str else status,
                error_type if type(error_type) is str else None,
                _xray_root(trace_value) if type(trace_value) is str else None,
                "json",
            )
        elif record_type in ("platform.initReport", "platform.restoreReport"):
            status = record.get("status")
            if type(status) is str and status != "success":
                metrics = record.get("metrics")
                duration = None
                if type(metrics) is dict:
                    duration = self._number(metrics.get("durationMs"), json_number, DURATION_MS)
                phase = "restore" if record_type == "platform.restoreReport" else record.get("phase")
                self._init_error(timestamp, event_id, record.get("errorType"), phase, status, duration)
        elif record_type == "platform.start":
            request_id = record.get("requestId")
            self.stream_state[1] = request_id if type(request_id) is str else None
        elif record_type == "platform.initStart":
            self.stream_state[2] = _runtime(record.get("runtimeVersion"))
            name = record.get("functionName")
            if type(name) is str and name:
                self.stream_state[0] = name
                if self.function is None:
                    self.function = name
                    self.common = self._common_fields()

    # --- event construction -------------------------------------------------------------------------

    def _invocation(
        self,
        timestamp: int,
        request_id: str | None,
        event_id: str | None,
        duration_ms: float | None,
        billed_duration_ms: float | None,
        memory_size_mb: int | None,
        max_memory_used_mb: int | None,
        init_duration_ms: float | None,
        restore_duration_ms: float | None,
        billed_restore_duration_ms: float | None,
        raw_status: str | None,
        error_type: str | None,
        xray_trace_id: str | None,
        log_format: str,
    ) -> None:
        """One `invocation` event, plus the cold_start / timeout / out_of_memory / error it implies.

        `raw_status` is the status the line wrote, None for success. A text REPORT without a status (all of
        them before Lambda added `Status:`) takes it from a timeout or out-of-memory line of the same request
        seen before it in the run; one seen after it, in the same document, corrects it (`_signal`).
        """
        legacy = raw_status is None and log_format == "text" and request_id is not None
        if legacy:
            signals_seen = self.classifier._signals_seen
            key = hash((self.function, request_id))
            # Most requests showed no signal before their REPORT: test for the key before the call that refreshes it.
            if key in signals_seen.young or key in signals_seen.old:
                seen = signals_seen.get(key) or 0
                if seen & _SIGNAL_BITS["timeout"]:
                    raw_status = "timeout"
                elif seen & _SIGNAL_BITS["out_of_memory"]:
                    raw_status, error_type = "error", _OUT_OF_MEMORY
        if raw_status is None:
            status = "success"
        elif raw_status == "timeout":
            status = "timeout"
        else:
            status = "error"
        cold_start = init_duration_ms is not None or restore_duration_ms is not None
        invocation = {
            "type": "invocation",
            "timestamp": timestamp,
            "function": self.function,
            "log_group": self.log_group,
            "log_stream": self.log_stream,
            "account": self.account,
            "request_id": request_id,
            "event_id": event_id,
            "duration_ms": duration_ms,
            "billed_duration_ms": billed_duration_ms,
            "memory_size_mb": memory_size_mb,
            "max_memory_used_mb": max_memory_used_mb,
            "init_duration_ms": init_duration_ms,
            "restore_duration_ms": restore_duration_ms,
            "billed_restore_duration_ms": billed_restore_duration_ms,
            "cold_start": cold_start,
            "status": status,
            "error_type": error_type,
            "xray_trace_id": xray_trace_id,
            "log_format": log_format,
            "runtime": self.stream_state[2],
        }
        self.events.append(invocation)
        if legacy and status == "success":
            self.pending_signals[(request_id, "invocation")] = invocation  # type: ignore[index]
        if self.stream_state[1] == request_id:
            self.stream_state[1] = None
        if cold_start:
            fields = {"init_duration_ms": init_duration_ms, "restore_duration_ms": restore_duration_ms}
            self._signal("cold_start", timestamp, request_id, event_id, fields)
        if status == "timeout":
            self._signal("timeout", timestamp, request_id, event_id, {"timeout_s": None, "duration_ms": duration_ms})
        elif error_type == _OUT_OF_MEMORY:
            fields = _oom_fields(memory_size_mb, max_memory_used_mb, error_type, None)
            self._signal("out_of_memory", timestamp, request_id, event_id, fields)
        elif status == "error":
            self._signal("error", timestamp, request_id, event_id, {"error_type": error_type, "message": None})
        if log_format == "text":
            self.last_report, self.last_report_end = invocation, len(self.events)

    def _signal(
        self, signal: str, timestamp: int, request_id: str | None, event_id: str | None, fields: dict[str, Any]
    ) -> None:
        """Emit a timeout / out_of_memory / cold_start / error at most once per invocation.

        An unhandled error seen outside any invocation happened during init: `init_error` reports it,
        and the line itself stays a `log` event.
        """
        if request_id is None and signal == "error":
            self.classifier.count(Count.ERROR_OUTSIDE_INVOCATION)
            return
        if request_id is not None and not self.classifier._first_sighting((self.function, request_id), signal):
            earlier = self.pending_signals.get((request_id, signal))
            if earlier is not None:
                for name, value in fields.items():
                    if earlier[name] is None:
                        earlier[name] = value
            self.classifier.count(Count.SIGNAL_DUPLICATE_SUPPRESSED)
            return
        event = self._base(signal, timestamp, request_id, event_id)
        event.update(fields)
        self.events.append(event)
        if request_id is not None:
            self.pending_signals[(request_id, signal)] = event
            if signal in ("timeout", "out_of_memory"):
                invocation = self.pending_signals.get((request_id, "invocation"))
                if invocation is not None and invocation["status"] == "success":
                    _correct_legacy_invocation(invocation, event)

    def _common_fields(self) -> dict[str, Any]:
        """The fields every event of this document starts from: copied per event, cheaper than a literal."""
        return {
            "type": None,
            "timestamp": 0,
            "function": self.function,
            "log_group": self.log_group,
            "log_stream": self.log_stream,
            "account": self.account,
            "request_id": None,
            "event_id": None,
        }

    def _base(self, event_type: str, timestamp: int, request_id: str | None, event_id: str | None) -> dict[str, Any]:
        event = self.common.copy()
        event["type"] = event_type
        event["timestamp"] = timestamp
        event["request_id"] = request_id
        event["event_id"] = event_id
        return event

    def _reject_event(self, log_event: Any, code: str, reason: str) -> None:
        try:
            raw = orjson.dumps(log_event)
        except TypeError:
            raw = repr(log_event).encode("utf-8", "backslashreplace")
        where = f"{self.log_group} / {self.log_stream}"
        self.rejects.append(Reject(code, f"{reason} (in {where})", raw, None, self.source))


def _correct_legacy_invocation(invocation: dict[str, Any], signal: dict[str, Any]) -> None:
    """A REPORT without a status, followed by its request's timeout or out-of-memory line: each completes the other."""
    if signal["type"] == "timeout":
        invocation["status"] = "timeout"
        if signal["duration_ms"] is None:
            signal["duration_ms"] = invocation["duration_ms"]
        return
    invocation["status"], invocation["error_type"] = "error", _OUT_OF_MEMORY
    for name in ("memory_size_mb", "max_memory_used_mb"):
        if signal[name] is None:
            signal[name] = invocation[name]


def _oom_fields(
    memory_size_mb: int | None, max_memory_used_mb: int | None, error_type: str | None, message: str | None
) -> dict[str, Any]:
    """The fields of an `out_of_memory` event."""
    return {
        "memory_size_mb": memory_size_mb,
        "max_memory_used_mb": max_memory_used_mb,
        "error_type": error_type,
        "message": message,
    }


def _trace_id(xray_trailer: str) -> str | None:
    """The trace id at the start of `1-...\tSegmentId: ...` (tabs or spaces)."""
    words = xray_trailer.split(None, 1)
    return words[0] if words else None


def _xray_root(trace_header: str) -> str | None:
    """`Root=1-...;Parent=...;Sampled=1` -> `1-...`."""
    for part in trace_header.split(";"):
        if part.startswith("Root="):
            return part[5:]
    return None
