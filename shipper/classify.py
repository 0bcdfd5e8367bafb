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
from typing import Any, Final, Generic, TypeVar

import orjson

from shipper.bounds import EPOCH_MS
from shipper.lines import (
    NODE_UNHANDLED,
    XRAY_PREFIX,
    Failure,
    InitFailure,
    Report,
    init_report_line,
    node_line,
    node_unhandled,
    platform_fields,
    platform_init_failure,
    platform_report,
    prefixed_line,
    python_line,
    python_unhandled,
    report_line,
    runtime_exit,
    runtime_version,
    start_request_id,
    task_timeout,
    trace_id,
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


_MAX_MALFORMED_REASONS: Final = 20
"""Distinct reasons kept for metric lines that could not be read; the rest are only counted."""
_MAX_TRACKED_STREAMS: Final = 50_000
_MAX_TRACKED_REQUESTS: Final = 200_000
_MAX_HELD_CHARS: Final = 256
"""The longest function name or request id a log stream's state keeps from one document to the next."""
_SIGNAL_BITS: Final = {"cold_start": 1, "timeout": 2, "out_of_memory": 4, "error": 8}
_TIMEOUT_BIT: Final = 2
_OUT_OF_MEMORY_BIT: Final = 4
_ERROR_BIT: Final = 8
_FAILURE_BITS: Final = _TIMEOUT_BIT | _OUT_OF_MEMORY_BIT | _ERROR_BIT
"""An error is not reported for an invocation that already failed otherwise."""

_LAMBDA_LOG_GROUP_PREFIX: Final = "/aws/lambda/"
# Custom log groups (advanced logging controls): "2024/05/20/<function>[$LATEST]<instance id>".
_STREAM_FUNCTION: Final = re.compile(r"\d{4}/\d\d/\d\d/([^\[/]+)\[")
_MIN_EPOCH_MS: Final = EPOCH_MS.low
_MAX_EPOCH_MS: Final = EPOCH_MS.high
# Runtime failures (exceptions, OOM strings, SDK throttling errors) are written at WARN or above, or with no
# level at all (print, stderr, tracebacks): lines at these levels are not scanned for signals.
_QUIET_LEVELS: Final = frozenset(("TRACE", "DEBUG", "INFO"))
_OUT_OF_MEMORY: Final = "Runtime.OutOfMemory"
"""The error type of an invocation Lambda stopped for running out of memory, as REPORT's `Error Type` says it."""
# Lambda writes platform records as {"time":"<24-char ISO time>","type":"platform.<name>","record":{...}}.
# Most of them open or close an invocation and produce no event: read those without parsing the JSON.
_PLATFORM_PREFIX: Final = '{"time":"'
_PLATFORM_TYPE_AT: Final = len(_PLATFORM_PREFIX) + 24 + len('",')
_PLATFORM_TYPE_KEY: Final = '"type":"platform.'
_SILENT_PLATFORM_TYPES: Final = frozenset(
    ("runtimeDone", "initRuntimeDone", "restoreStart", "restoreRuntimeDone", "extension", "telemetrySubscription")
)
_LOADS: Final = orjson.loads
_JSONDecodeError: Final = orjson.JSONDecodeError


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


class _StreamState:
    """What a log stream's earlier documents said that its later lines need."""

    __slots__ = ("function", "request_id", "runtime")

    def __init__(self) -> None:
        self.function: str | None = None
        """The function a platform record named (when the log group and stream do not)."""
        self.request_id: str | None = None
        """The request in progress: between its START (or platform.start) and its END or REPORT."""
        self.runtime: str | None = None
        """The runtime version INIT_START named."""


class Classifier:
    """Turns CloudWatch Logs DATA_MESSAGE documents into contract events."""

    def __init__(self, max_message_chars: int = MAX_MESSAGE_CHARS) -> None:
        self.max_message_chars = max_message_chars
        # hash((log group, log stream)) -> that stream's state
        self._streams: _Recent[_StreamState] = _Recent(_MAX_TRACKED_STREAMS)
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

    def _stream_state(self, log_group: str, log_stream: str) -> _StreamState:
        key = hash((log_group, log_stream))
        state = self._streams.get(key)
        if state is None:
            state = _StreamState()
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
    """Classifies the log events of one document: dispatches each line to its parser (shipper.lines), builds
    the events, and emits each signal once per invocation."""

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
        "stream",
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
        self.stream = classifier._stream_state(self.log_group, self.log_stream)
        self.function = function_from_log_source(self.log_group, self.log_stream) or self.stream.function
        self.common = self._common_fields()
        # (request id, signal type) -> the event emitted from this document, to be completed by later lines
        self.pending_signals: dict[tuple[str, str], dict[str, Any]] = {}
        # The invocation of the last text REPORT, and how many events there were once it was handled: an X-Ray
        # line of its own belongs to it only when nothing came between.
        self.last_report: dict[str, Any] | None = None
        self.last_report_end = -1

    def run(self) -> None:
        max_chars = self.classifier.max_message_chars
        state = self.stream
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
                state.request_id = start_request_id(message)
            elif first == "E" and message.startswith(("END RequestId: ", "EXTENSION\t")):
                if message[1] == "N":  # END closes the invocation; EXTENSION lines carry nothing
                    state.request_id = None
            elif first == "R" and message.startswith("REPORT RequestId: "):
                self._report_line(message, timestamp, event_id)
            elif first in "IRTLX" and self._other_platform_line(message, timestamp, event_id):
                pass
            elif not self._prefixed_line(message, timestamp, event_id):
                app_line(None, state.request_id, message, timestamp, event_id)
        if state.function is not None and len(state.function) > _MAX_HELD_CHARS:
            state.function = None
        if state.request_id is not None and len(state.request_id) > _MAX_HELD_CHARS:
            state.request_id = None

    # --- platform lines and records -----------------------------------------------------------------

    def _report_line(self, message: str, timestamp: int, event_id: str | None) -> None:
        report = report_line(message)
        if report is None:
            # A REPORT line with a number that is not one, or out of its range, or without a request id of
            # Lambda's shape, is kept as a log line.
            self.classifier.count(Count.PLATFORM_LINE_UNPARSED)
            self._app_line(None, self.stream.request_id, message, timestamp, event_id)
        else:
            self._invocation(timestamp, event_id, report)

    def _other_platform_line(self, message: str, timestamp: int, event_id: str | None) -> bool:
        """Handle INIT_*, RESTORE_*, TELEMETRY, LOGS, XRAY and runtime-exit lines; False if not one."""
        if message.startswith(XRAY_PREFIX):
            self._xray_line(message)
            return True
        if message.startswith("INIT_START "):
            self.stream.runtime = runtime_version(platform_fields(message).get("Runtime Version"))
            return True
        if message.startswith(("RESTORE_START ", "TELEMETRY\t", "LOGS\t")):
            return True
        if message.startswith(("INIT_REPORT ", "RESTORE_REPORT ")):
            failure = init_report_line(message)
            if failure is not None:
                self._init_error(timestamp, event_id, failure)
            return True
        if message.startswith("RequestId: ") and " Error: Runtime exited" in message:
            exit = runtime_exit(message)
            if exit is None:
                return False
            self._failure(exit, exit.request_id, timestamp, event_id)
            return True
        return False

    def _xray_line(self, message: str) -> None:
        """`XRAY TraceId: ...` as a log event of its own: the trace of the REPORT just before it, if that had none."""
        report = self.last_report
        if report is not None and report["xray_trace_id"] is None and self.last_report_end == len(self.events):
            report["xray_trace_id"] = trace_id(message[len(XRAY_PREFIX) :])

    def _platform_record(self, record_type: str, record: dict[str, Any], timestamp: int, event_id: str | None) -> None:
        if record_type == "platform.report":
            report = platform_report(record)
            if report.unreadable:
                self.classifier.count(Count.NUMBER_OUT_OF_RANGE, report.unreadable)
            self._invocation(timestamp, event_id, report)
        elif record_type in ("platform.initReport", "platform.restoreReport"):
            failure = platform_init_failure(record_type, record)
            if failure is not None:
                self._init_error(timestamp, event_id, failure)
        elif record_type == "platform.start":
            request_id = record.get("requestId")
            self.stream.request_id = request_id if type(request_id) is str else None
        elif record_type == "platform.initStart":
            self.stream.runtime = runtime_version(record.get("runtimeVersion"))
            name = record.get("functionName")
            if type(name) is str and name:
                self.stream.function = name
                if self.function is None:
                    self.function = name
                    self.common = self._common_fields()

    # --- application lines --------------------------------------------------------------------------

    def _python_text_line(self, message: str, timestamp: int, event_id: str | None) -> None:
        """`[LEVEL]\t<time>\t<request id>\t<text>`, `[LEVEL] text`, or the unhandled `[ERROR] Type: message`."""
        request_id = self.stream.request_id
        unhandled = python_unhandled(message) if message.startswith("[ERROR] ") else None
        if unhandled is not None:
            self._app_line("ERROR", request_id, message[8:], timestamp, event_id, oom_scan=False)
            self._failure(unhandled, request_id, timestamp, event_id)
            return
        line = python_line(message)
        self._app_line(line.level, line.request_id or request_id, line.body, timestamp, event_id)

    def _timestamped_line(self, message: str, timestamp: int, event_id: str | None) -> None:
        """Node `<ISO time>\t<request id>\t<LEVEL>\t<text>`, Lambda's `Task timed out` line, or a prefixed line."""
        line = node_line(message)
        if line is not None:
            request_id = line.request_id or self.stream.request_id
            body = line.body
            self._app_line(line.level, request_id, body, timestamp, event_id)
            if line.level == "ERROR" and body.startswith(NODE_UNHANDLED):
                self._failure(node_unhandled(body), request_id, timestamp, event_id)
            return
        if message[24:25] != "\t" and " Task timed out after " in message:
            timeout = task_timeout(message)
            if timeout is not None:
                if timeout.unreadable:
                    self.classifier.count(Count.NUMBER_OUT_OF_RANGE, timeout.unreadable)
                fields: dict[str, Any] = {"timeout_s": timeout.timeout_s, "duration_ms": None}
                self._signal("timeout", timestamp, timeout.request_id, event_id, fields)
                return
        if not self._prefixed_line(message, timestamp, event_id):
            self._app_line(None, self.stream.request_id, message, timestamp, event_id)

    def _prefixed_line(self, message: str, timestamp: int, event_id: str | None) -> bool:
        """A line whose prefix names its request id (shipper.lines.prefixed_line); False if it has none."""
        line = prefixed_line(message)
        if line is None:
            return False
        self._app_line(line.level, line.request_id or self.stream.request_id, line.body, timestamp, event_id)
        return True

    def _json_line(self, message: str, timestamp: int, event_id: str | None) -> None:
        if message.startswith(_PLATFORM_TYPE_KEY, _PLATFORM_TYPE_AT) and message.startswith(_PLATFORM_PREFIX):
            name_start = _PLATFORM_TYPE_AT + len(_PLATFORM_TYPE_KEY)
            name = message[name_start : message.find('"', name_start)]
            if name in _SILENT_PLATFORM_TYPES:
                return
            if name == "start":
                id_start = message.find('"requestId":"', name_start) + len('"requestId":"')
                if id_start > name_start:
                    self.stream.request_id = message[id_start : message.find('"', id_start)] or None
                    return
        try:
            record = _LOADS(message)
        except _JSONDecodeError:
            record = None
        if type(record) is not dict:
            self._app_line(None, self.stream.request_id, message, timestamp, event_id)
            return
        record_type = record.get("type")
        if type(record_type) is str and record_type.startswith("platform."):
            body = record.get("record")
            if type(body) is dict:
                self._platform_record(record_type, body, timestamp, event_id)
                return
        if ("_aws" in record or "m" in record) and self._metrics(
            parse_metric_object(record, timestamp), self.stream.request_id, event_id
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
                request_id = self.stream.request_id
        text = record.get("message")
        event = self._event("log", timestamp, request_id, event_id)
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
            ("log_level" in record and "level" not in record) or text.startswith(NODE_UNHANDLED)
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
        event = self._event("log", timestamp, request_id, event_id)
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
            event = self._event("throttle", timestamp, request_id, event_id)
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
        common = self._event("metric", 0, request_id, event_id)
        for metric in parsed:
            # Key by key: `common | metric` would resize the event's key table to the kind of the metric's
            # (a compiled literal's, which stores every hash: 632 bytes an event instead of 464).
            event = common.copy()
            for name, value in metric.items():
                event[name] = value
            if event["request_id"] is None:
                event["request_id"] = request_id
            self.events.append(event)
        return True

    # --- events -------------------------------------------------------------------------------------

    def _invocation(self, timestamp: int, event_id: str | None, report: Report) -> None:
        """One `invocation` event, plus the cold_start / timeout / out_of_memory / error it implies.

        A text REPORT without a status (all of them before Lambda added `Status:`) takes it from a timeout or
        out-of-memory line of the same request seen before it in the run; one seen after it, in the same
        document, corrects it (`_signal`).
        """
        request_id = report.request_id
        raw_status = report.status
        error_type = report.error_type
        text = report.log_format == "text"
        legacy = raw_status is None and text and request_id is not None
        if legacy:
            signals_seen = self.classifier._signals_seen
            key = hash((self.function, request_id))
            # Most requests showed no signal before their REPORT: test for the key before the call that refreshes it.
            if key in signals_seen.young or key in signals_seen.old:
                seen = signals_seen.get(key) or 0
                if seen & _TIMEOUT_BIT:
                    raw_status = "timeout"
                elif seen & _OUT_OF_MEMORY_BIT:
                    raw_status, error_type = "error", _OUT_OF_MEMORY
        if raw_status is None:
            status = "success"
        elif raw_status == "timeout":
            status = "timeout"
        else:
            status = "error"
        init_duration_ms = report.init_duration_ms
        restore_duration_ms = report.restore_duration_ms
        cold_start = init_duration_ms is not None or restore_duration_ms is not None
        invocation = self._event("invocation", timestamp, request_id, event_id)
        invocation["duration_ms"] = report.duration_ms
        invocation["billed_duration_ms"] = report.billed_duration_ms
        invocation["memory_size_mb"] = report.memory_size_mb
        invocation["max_memory_used_mb"] = report.max_memory_used_mb
        invocation["init_duration_ms"] = init_duration_ms
        invocation["restore_duration_ms"] = restore_duration_ms
        invocation["billed_restore_duration_ms"] = report.billed_restore_duration_ms
        invocation["cold_start"] = cold_start
        invocation["status"] = status
        invocation["error_type"] = error_type
        invocation["xray_trace_id"] = report.xray_trace_id
        invocation["log_format"] = report.log_format
        invocation["runtime"] = self.stream.runtime
        self.events.append(invocation)
        if legacy and status == "success":
            self.pending_signals[(request_id, "invocation")] = invocation  # type: ignore[index]
        if self.stream.request_id == request_id:
            self.stream.request_id = None
        if cold_start:
            fields = {"init_duration_ms": init_duration_ms, "restore_duration_ms": restore_duration_ms}
            self._signal("cold_start", timestamp, request_id, event_id, fields)
        if status == "timeout":
            fields = {"timeout_s": None, "duration_ms": report.duration_ms}
            self._signal("timeout", timestamp, request_id, event_id, fields)
        elif error_type == _OUT_OF_MEMORY:
            fields = _oom_fields(report.memory_size_mb, report.max_memory_used_mb, error_type, None)
            self._signal("out_of_memory", timestamp, request_id, event_id, fields)
        elif status == "error":
            self._signal("error", timestamp, request_id, event_id, {"error_type": error_type, "message": None})
        if text:
            self.last_report, self.last_report_end = invocation, len(self.events)

    def _init_error(self, timestamp: int, event_id: str | None, failure: InitFailure) -> None:
        if failure.unreadable:
            self.classifier.count(Count.NUMBER_OUT_OF_RANGE, failure.unreadable)
        event = self._event("init_error", timestamp, None, event_id)
        event["error_type"] = failure.error_type
        event["phase"] = failure.phase
        event["status"] = failure.status
        event["init_duration_ms"] = failure.duration_ms
        self.events.append(event)

    def _failure(self, failure: Failure, request_id: str | None, timestamp: int, event_id: str | None) -> None:
        """The out_of_memory or error signal of an unhandled error or a runtime exit."""
        if failure.out_of_memory:
            fields = _oom_fields(None, None, failure.error_type, failure.message)
            self._signal("out_of_memory", timestamp, request_id, event_id, fields)
        else:
            fields = {"error_type": failure.error_type, "message": failure.message}
            self._signal("error", timestamp, request_id, event_id, fields)

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
        event = self._event(signal, timestamp, request_id, event_id)
        event.update(fields)
        self.events.append(event)
        if request_id is not None:
            self.pending_signals[(request_id, signal)] = event
            if signal in ("timeout", "out_of_memory"):
                invocation = self.pending_signals.get((request_id, "invocation"))
                if invocation is not None and invocation["status"] == "success":
                    _correct_legacy_invocation(invocation, event)

    def _common_fields(self) -> dict[str, Any]:
        """The fields every event of this document starts from: copied per event, cheaper than a literal.

        Built key by key, not as a literal: compiled, a literal makes a dict whose key table also stores
        each key's hash (CPython keeps that for dicts built presized), and every copy, so every event,
        inherits it: 632 bytes for a log event instead of 464.
        """
        common: dict[str, Any] = {}
        common["type"] = None
        common["timestamp"] = 0
        common["function"] = self.function
        common["log_group"] = self.log_group
        common["log_stream"] = self.log_stream
        common["account"] = self.account
        common["request_id"] = None
        common["event_id"] = None
        return common

    def _event(self, event_type: str, timestamp: int, request_id: str | None, event_id: str | None) -> dict[str, Any]:
        """A new event: the fields every event has, in the contract's order; the caller adds its type's own."""
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
