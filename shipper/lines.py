"""Parsers of single Lambda log lines: a line's text (or a parsed platform record) in, a named result out.

No state and no events: `shipper.classify` decides what a result means for the run (which request a line
belongs to, which signals are new) and builds the events. Every number is read with `shipper.bounds`; a
result counts the numbers that were there but unreadable or out of range (`unreadable`), and the
classifier counts them for the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import orjson

from shipper.bounds import (
    DURATION_MS,
    MEMORY_MB,
    TIMEOUT_S,
    Range,
    json_number,
    json_whole,
    text_number,
    text_whole,
    text_whole_or_number,
)

MAX_RUNTIME_CHARS: Final = 64

_PYTHON_LEVELS: Final = {
    "[DEBUG]": "DEBUG",
    "[INFO]": "INFO",
    "[WARNING]": "WARNING",
    "[ERROR]": "ERROR",
    "[CRITICAL]": "CRITICAL",
}
NODE_LEVELS: Final = frozenset(("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"))
# `[ERROR] text`: a Python logger's level without time or request id; PowerShell's `[Information] - text`.
_BRACKET_LEVELS: Final = {
    **_PYTHON_LEVELS,
    "[Information]": "INFO",
    "[Warning]": "WARNING",
    "[Error]": "ERROR",
    "[Verbose]": "DEBUG",
    "[Debug]": "DEBUG",
}
NODE_UNHANDLED: Final = ("Invoke Error", "Uncaught Exception", "Unhandled Promise Rejection")
_EXCEPTION_TYPE: Final = re.compile(r"[A-Za-z_][\w.]*")
# A request id as Lambda writes it: a UUID, 8-4-4-4-12 groups (letters allowed: AWS's samples write `xmpl` in them).
_REQUEST_ID: Final = r"[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}"
_REQUEST_ID_SHAPE: Final = re.compile(_REQUEST_ID)
# START's request id: its third word (`\s` is the whitespace `str.split` splits at), when it has a request id's shape.
_START_REQUEST_ID: Final = re.compile(rf"START RequestId:\s+({_REQUEST_ID})(?!\S)")
# `<ISO time> <request id> ` or log4j's `[<yyyy-MM-dd HH:mm:ss>] <request id> <LEVEL> <Class>[:<line>] - `.
_REQUEST_PREFIX: Final = re.compile(
    rf"(?:\d{{4}}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{{1,9}})?Z?[ \t]+)?(?P<id>{_REQUEST_ID})[ \t]+"
    r"(?:(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)[ \t]+(?=\S+ - ))?"
)
# Ruby's Logger as the Lambda guide shows it: `I, [2019-10-26T10:04:01.689856 #8]  INFO <request id> -- : text`.
_RUBY_LOGGER: Final = re.compile(
    r"[DIWEFAU], \[[^\]\n]{1,64}\] +(DEBUG|INFO|WARN|ERROR|FATAL|ANY|UNKNOWN)"
    rf"(?: (?P<id>{_REQUEST_ID}))? -- [^:\n]{{0,256}}: "
)
_TASK_TIMED_OUT: Final = re.compile(
    rf"\d{{4}}-\d\d-\d\dT[\d:.]+Z\s+({_REQUEST_ID})\s+Task timed out after (\d+(?:\.\d+)?) seconds"
)
# Platform lines whose tabs were turned into spaces (consoles, blog copies): known keys only.
_SPACED_PLATFORM_FIELD: Final = re.compile(
    r"(RequestId|Billed Restore Duration|Restore Duration|Billed Duration|Init Duration|Duration|"
    r"Memory Size|Max Memory Used|Status|Error Type|Phase): (\S+)"
)
# Canonical REPORT line (tabs, no Status/Restore fields): one regex instead of the generic field parser.
# What may follow it is checked with string operations: nothing, or the X-Ray trailer on its second line.
# Its numbers are short enough for int() and float() to be cheap; a line with longer ones, or with
# values outside their ranges (shipper.bounds), goes to the generic parser, which refuses it.
_REPORT: Final = re.compile(
    rf"REPORT RequestId: ({_REQUEST_ID})"
    r"\tDuration: (\d{1,9}(?:\.\d{1,6})?) ms\tBilled Duration: (\d{1,9}) ms\t"
    r"Memory Size: (\d{1,7}) MB\tMax Memory Used: (\d{1,7}) MB\t(?:Init Duration: (\d{1,9}(?:\.\d{1,6})?) ms\t)?"
)
_MAX_DURATION_MS: Final = DURATION_MS.high
_MAX_MEMORY_MB: Final = MEMORY_MB.high
_TextNumber = Callable[[str, Range], int | float | None]
# The numeric fields of a REPORT line read by the generic parser, in `Report`'s order.
_REPORT_NUMBERS: Final[tuple[tuple[str, _TextNumber, Range], ...]] = (
    ("Duration", text_number, DURATION_MS),
    ("Billed Duration", text_whole_or_number, DURATION_MS),
    ("Memory Size", text_whole, MEMORY_MB),
    ("Max Memory Used", text_whole, MEMORY_MB),
    ("Init Duration", text_number, DURATION_MS),
    ("Restore Duration", text_number, DURATION_MS),
    ("Billed Restore Duration", text_whole_or_number, DURATION_MS),
)
_XRAY_TRAILER: Final = "\nXRAY TraceId: "
# The X-Ray fields of a REPORT: on its second line (as Lambda writes it), after a tab or spaces on the same line
# (copies that lost the newline), or as a log event of their own right after it (copies split by line).
XRAY_PREFIX: Final = "XRAY TraceId: "


class Report:
    """What a REPORT line (text) or a `platform.report` record (JSON) says about one invocation.

    Numbers keep the type the line wrote (a whole `Billed Duration` stays an int). `status` is the status
    as written, None for success.
    """

    __slots__ = (
        "billed_duration_ms",
        "billed_restore_duration_ms",
        "duration_ms",
        "error_type",
        "init_duration_ms",
        "log_format",
        "max_memory_used_mb",
        "memory_size_mb",
        "request_id",
        "restore_duration_ms",
        "status",
        "unreadable",
        "xray_trace_id",
    )

    def __init__(
        self,
        log_format: str,
        request_id: str | None,
        duration_ms: int | float | None,
        billed_duration_ms: int | float | None,
        memory_size_mb: int | None,
        max_memory_used_mb: int | None,
        init_duration_ms: int | float | None = None,
        restore_duration_ms: int | float | None = None,
        billed_restore_duration_ms: int | float | None = None,
        status: str | None = None,
        error_type: str | None = None,
        xray_trace_id: str | None = None,
        unreadable: int = 0,
    ) -> None:
        self.log_format = log_format
        self.request_id = request_id
        self.duration_ms = duration_ms
        self.billed_duration_ms = billed_duration_ms
        self.memory_size_mb = memory_size_mb
        self.max_memory_used_mb = max_memory_used_mb
        self.init_duration_ms = init_duration_ms
        self.restore_duration_ms = restore_duration_ms
        self.billed_restore_duration_ms = billed_restore_duration_ms
        self.status = status
        self.error_type = error_type
        self.xray_trace_id = xray_trace_id
        self.unreadable = unreadable
        """Numbers that were there but unreadable or out of range (JSON only: such a text line is no Report)."""


class InitFailure:
    """An INIT_REPORT / RESTORE_REPORT (text or JSON) whose status is not success."""

    __slots__ = ("duration_ms", "error_type", "phase", "status", "unreadable")

    def __init__(
        self, error_type: str | None, phase: str | None, status: str, duration_ms: int | float | None, unreadable: int
    ) -> None:
        self.error_type = error_type
        self.phase = phase
        self.status = status
        self.duration_ms = duration_ms
        self.unreadable = unreadable


class AppLine:
    """An application line's level, the request id its prefix names (None: it names none) and its text."""

    __slots__ = ("body", "level", "request_id")

    def __init__(self, level: str | None, request_id: str | None, body: str) -> None:
        self.level = level
        self.request_id = request_id
        self.body = body


class Failure:
    """An unhandled error or a runtime exit: its error type and the message that shows it."""

    __slots__ = ("error_type", "message", "out_of_memory", "request_id")

    def __init__(
        self, request_id: str | None, error_type: str | None, message: str | None, out_of_memory: bool
    ) -> None:
        self.request_id = request_id
        self.error_type = error_type
        self.message = message
        self.out_of_memory = out_of_memory


class TaskTimeout:
    """Lambda's `<time> <request id> Task timed out after N seconds`."""

    __slots__ = ("request_id", "timeout_s", "unreadable")

    def __init__(self, request_id: str, timeout_s: float | None, unreadable: int) -> None:
        self.request_id = request_id
        self.timeout_s = timeout_s
        self.unreadable = unreadable


def is_request_id(text: str) -> bool:
    """Whether `text` has the shape of a Lambda request id."""
    return len(text) == 36 and _REQUEST_ID_SHAPE.fullmatch(text) is not None


def start_request_id(message: str) -> str | None:
    """The request id of `START RequestId: <id> Version: ...`, None when it has no request id's shape."""
    start = _START_REQUEST_ID.match(message)
    return None if start is None else start.group(1)


def runtime_version(value: object) -> str | None:
    """A runtime version as INIT_START names it (`python:3.12.v27`): short printable ASCII, else None."""
    if isinstance(value, str) and 0 < len(value) <= MAX_RUNTIME_CHARS and value.isascii() and value.isprintable():
        return value
    return None


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


def trace_id(xray_trailer: str) -> str | None:
    """The trace id at the start of `1-...\tSegmentId: ...` (tabs or spaces)."""
    words = xray_trailer.split(None, 1)
    return words[0] if words else None


def _xray_root(trace_header: str) -> str | None:
    """`Root=1-...;Parent=...;Sampled=1` -> `1-...`."""
    for part in trace_header.split(";"):
        if part.startswith("Root="):
            return part[5:]
    return None


def report_line(message: str) -> Report | None:
    """A text `REPORT RequestId: ...` line; None when a number is unreadable or out of range, or the request
    id has not Lambda's shape (the line stays a log line)."""
    match = _REPORT.match(message)
    if match is not None:
        rest = message[match.end() :]
        xray: str | None = None
        if rest.startswith(_XRAY_TRAILER):
            xray = trace_id(rest[len(_XRAY_TRAILER) :])
        elif rest.startswith(XRAY_PREFIX):
            xray = trace_id(rest[len(XRAY_PREFIX) :])
        elif rest not in ("", "\n"):
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
                return Report(
                    "text",
                    request_id,
                    duration_ms,
                    billed_ms,
                    memory_mb,
                    max_memory_mb,
                    init_duration,
                    xray_trace_id=xray,
                )
    return _generic_report_line(message)


def _generic_report_line(message: str) -> Report | None:
    """A REPORT line of any field order, with Status / Restore fields, spaces for tabs or `\\t` written out."""
    text = message
    if "\t" not in text and "\\t" in text:
        # Copied through one JSON encoding too many: `\t` written out. Read as the TAB it stood for.
        text = text.replace("\\t", "\t").replace("\\n", "\n")
    head, xray_sep, xray = text.partition(XRAY_PREFIX)
    fields = platform_fields(head)
    request_id = fields.get("RequestId")
    if request_id is None or not is_request_id(request_id):
        return None
    numbers: list[int | float | None] = []
    for key, parse, bounds in _REPORT_NUMBERS:
        raw = fields.get(key)
        value = None if raw is None else parse(raw, bounds)
        if value is None and raw is not None:
            return None
        numbers.append(value)
    duration, billed, memory, max_memory, init, restore, billed_restore = numbers
    return Report(
        "text",
        request_id,
        duration,
        billed,
        memory if type(memory) is int else None,  # both memory fields are read by text_whole (_REPORT_NUMBERS)
        max_memory if type(max_memory) is int else None,
        init,
        restore,
        billed_restore,
        fields.get("Status"),
        fields.get("Error Type"),
        trace_id(xray) if xray_sep else None,
    )


class _JsonNumbers:
    """Reads the numbers of one JSON record with `shipper.bounds`, counting those it could not read."""

    __slots__ = ("unreadable",)

    def __init__(self) -> None:
        self.unreadable = 0

    def number(self, raw: object) -> int | float | None:
        if raw is None:
            return None
        value = json_number(raw, DURATION_MS)
        if value is None:
            self.unreadable += 1
        return value

    def memory(self, raw: object) -> int | None:
        if raw is None:
            return None
        value = json_whole(raw, MEMORY_MB)
        if value is None:
            self.unreadable += 1
        return value


def platform_report(record: dict[str, Any]) -> Report:
    """The `record` of a JSON `platform.report`: each number that is there but unreadable is None, and counted."""
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        metrics = {}
    tracing = record.get("tracing")
    trace_value = tracing.get("value") if isinstance(tracing, dict) else None
    request_id = record.get("requestId")
    status = record.get("status")
    error_type = record.get("errorType")
    read = _JsonNumbers()
    return Report(
        "json",
        request_id if isinstance(request_id, str) else None,
        read.number(metrics.get("durationMs")),
        read.number(metrics.get("billedDurationMs")),
        read.memory(metrics.get("memorySizeMB")),
        read.memory(metrics.get("maxMemoryUsedMB")),
        read.number(metrics.get("initDurationMs")),
        read.number(metrics.get("restoreDurationMs")),
        read.number(metrics.get("billedRestoreDurationMs")),
        None if status == "success" or not isinstance(status, str) else status,
        error_type if isinstance(error_type, str) else None,
        _xray_root(trace_value) if isinstance(trace_value, str) else None,
        read.unreadable,
    )


def platform_init_failure(record_type: str, record: dict[str, Any]) -> InitFailure | None:
    """The `record` of a JSON `platform.initReport` / `platform.restoreReport`; None when it succeeded."""
    status = record.get("status")
    if not isinstance(status, str) or status == "success":
        return None
    metrics = record.get("metrics")
    read = _JsonNumbers()
    duration = read.number(metrics.get("durationMs")) if isinstance(metrics, dict) else None
    phase = "restore" if record_type == "platform.restoreReport" else record.get("phase")
    error_type = record.get("errorType")
    return InitFailure(
        error_type if isinstance(error_type, str) else None,
        phase if isinstance(phase, str) else None,
        status,
        duration,
        read.unreadable,
    )


def init_report_line(message: str) -> InitFailure | None:
    """A text `INIT_REPORT ...` / `RESTORE_REPORT ...` line; None when its status is success or missing."""
    fields = platform_fields(message)
    status = fields.get("Status")
    if status is None or status == "success":
        return None
    raw = fields.get("Init Duration", fields.get("Restore Duration"))
    duration = None if raw is None else text_number(raw, DURATION_MS)
    return InitFailure(
        fields.get("Error Type"),
        "restore" if message[0] == "R" else fields.get("Phase"),
        status,
        duration,
        1 if duration is None and raw is not None else 0,
    )


def runtime_exit(message: str) -> Failure | None:
    """`RequestId: <id> Error: Runtime exited with error: signal: killed\\nRuntime.ExitError`; None if no id."""
    request_id = message.split(None, 2)[1]
    if not is_request_id(request_id):
        return None
    first_line, _, rest = message.partition("\n")
    reason = first_line.partition(" Error: ")[2].strip()
    error_type = rest.strip().split("\n", 1)[0].strip() or "Runtime.ExitError"
    return Failure(request_id, error_type, reason, reason.endswith("signal: killed"))


def task_timeout(message: str) -> TaskTimeout | None:
    """`<ISO time> <request id> Task timed out after 3.00 seconds`; None for any other line."""
    match = _TASK_TIMED_OUT.match(message)
    if match is None:
        return None
    timeout_s = text_number(match.group(2), TIMEOUT_S)
    return TaskTimeout(match.group(1), timeout_s, 1 if timeout_s is None else 0)


def python_unhandled(message: str) -> Failure | None:
    """The Python runtime's unhandled error, `[ERROR] Type: message\\nTraceback ...`; None for other lines.

    Its `message` is the whole first line for a MemoryError, the text after the type for other errors
    (None when there is none). `request_id` is None: the line names none.
    """
    if not message.startswith("[ERROR] "):
        return None
    body = message[8:]
    first_line = body.split("\n", 1)[0].rstrip("\r")
    error_type, sep, error_message = first_line.partition(": ")
    if not _EXCEPTION_TYPE.fullmatch(error_type):
        return None
    if error_type == "MemoryError":
        return Failure(None, error_type, first_line, True)
    return Failure(None, error_type, error_message if sep else None, False)


def python_line(message: str) -> AppLine:
    """`[LEVEL]\\t<time>\\t<request id>\\t<text>`, `[LEVEL] text` or PowerShell's `[Information] - text`."""
    parts = message.split("\t", 3)
    level = _PYTHON_LEVELS.get(parts[0]) if len(parts) == 4 else None
    if level is not None:
        return AppLine(level, parts[2] or None, parts[3])
    # `[ERROR] message` (a logger's format without time and request id) or PowerShell's `[Information] - text`
    tag, _, body = message.partition("]")
    level = _BRACKET_LEVELS.get(tag + "]") if body[:1] in (" ", "\t") else None
    if level is None:
        return AppLine(None, None, message)
    body = body[1:]
    return AppLine(level, None, body[2:] if body.startswith("- ") else body)


def node_line(message: str) -> AppLine | None:
    """Node's `<ISO time>\\t<request id>\\t<LEVEL>\\t<text>`; None for other lines. An `undefined` id is none."""
    if message[24:25] != "\t":
        return None
    parts = message.split("\t", 3)
    if len(parts) != 4 or parts[2] not in NODE_LEVELS:
        return None
    request_id: str | None = parts[1]
    if request_id == "undefined" or not request_id:
        request_id = None
    return AppLine(parts[2], request_id, parts[3])


def node_unhandled(body: str) -> Failure:
    """The error of Node's `Invoke Error \\t{"errorType": ..., "errorMessage": ...}` and its kin."""
    head, _, blob = body.partition("\t")
    try:
        error = orjson.loads(blob)
    except orjson.JSONDecodeError:
        error = None
    error_type = error.get("errorType") if isinstance(error, dict) else None
    error_message = error.get("errorMessage") if isinstance(error, dict) else None
    return Failure(
        None,
        error_type if isinstance(error_type, str) else None,
        error_message if isinstance(error_message, str) else head.strip(),
        False,
    )


def prefixed_line(message: str) -> AppLine | None:
    """A line whose prefix names its request id (and often its level); None if it has no such prefix.

    `<ISO time> <request id> <text>` (what the Node.js runtime prints on a fatal error), log4j with the
    Lambda appender's `[<yyyy-MM-dd HH:mm:ss>] <request id> <LEVEL> <Class>:<line> - <text>`, and Ruby's
    Logger `I, [<time> #<pid>]  INFO <request id> -- : <text>`. The level is also read from the text's
    first word when the prefix has none.
    """
    if message[1:4] == ", [":
        match = _RUBY_LOGGER.match(message)
        level = None if match is None else match.group(1)
    elif message[8:9] == "-" or message[28:29] == "-" or message[33:34] == "-":
        match = _REQUEST_PREFIX.match(message)
        level = None if match is None else match.group(2)
    else:
        return None
    if match is None:
        return None
    body = message[match.end() :]
    if level is None:
        word = body.split(None, 1)[0] if body.strip() else ""
        level = word if word in NODE_LEVELS else None
    return AppLine(level, match.group("id") or None, body)
