"""The line parsers alone (shipper.lines): each shape read into its named result, hostile text never raising."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.bounds import DURATION_MS, MEMORY_MB
from shipper.lines import (
    AppLine,
    _generic_report_line,
    init_report_line,
    node_line,
    platform_init_failure,
    platform_report,
    prefixed_line,
    python_line,
    python_unhandled,
    report_line,
    runtime_exit,
    task_timeout,
)

from helpers import EXTREMES, REQUEST_ID

durations = st.decimals(min_value=0, max_value=DURATION_MS.high, places=2).map(str)
memories = st.integers(0, MEMORY_MB.high)
hostile_numbers = st.one_of(
    st.sampled_from((*EXTREMES, "86400000.5", "86400001", "1048577", "999999999")),
    st.text(alphabet="0123456789.eE+-", min_size=1, max_size=30),
)
UNITS = {"Duration": "ms", "Billed Duration": "ms", "Memory Size": "MB", "Max Memory Used": "MB", "Init Duration": "ms"}
REPORT_FIELDS = ("duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb", "init_duration_ms")


def _figures(report: object) -> tuple[object, ...]:
    return tuple(getattr(report, name) for name in REPORT_FIELDS)


@settings(max_examples=150)
@given(duration=durations, billed=st.integers(0, 900_000), memory=memories, used=memories, init=st.none() | durations)
def test_a_canonical_report_reads_the_same_by_the_fast_and_the_generic_parser(duration, billed, memory, used, init):
    line = (
        f"REPORT RequestId: {REQUEST_ID}\tDuration: {duration} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {memory} MB\tMax Memory Used: {used} MB\t"
        + ("" if init is None else f"Init Duration: {init} ms\t")
        + "\nXRAY TraceId: 1-abc\tSegmentId: 42\tSampled: true\t\n"
    )
    fast, generic = report_line(line), _generic_report_line(line)
    assert fast is not None and generic is not None
    assert _figures(fast) == _figures(generic)
    assert [type(value) for value in _figures(fast)] == [type(value) for value in _figures(generic)]
    assert (fast.request_id, fast.xray_trace_id, fast.status, fast.log_format) == (REQUEST_ID, "1-abc", None, "text")
    assert fast.duration_ms == float(duration) and fast.billed_duration_ms == billed
    assert fast.init_duration_ms == (None if init is None else float(init))


@settings(max_examples=200)
@given(number=hostile_numbers, field=st.sampled_from(("Duration", "Billed Duration", "Memory Size", "Init Duration")))
def test_a_report_number_out_of_its_range_or_unreadable_leaves_no_report(number, field):
    fields = {"Duration": "1.5", "Billed Duration": "2", "Memory Size": "128", "Max Memory Used": "64"} | {
        field: number
    }
    line = f"REPORT RequestId: {REQUEST_ID}\t" + "".join(
        f"{key}: {value} {UNITS[key]}\t" for key, value in fields.items()
    )
    report = report_line(line)
    if report is None:
        return
    for value in _figures(report):
        assert value is None or (math.isfinite(value) and 0 <= value <= DURATION_MS.high)
    assert report.memory_size_mb is None or report.memory_size_mb <= MEMORY_MB.high


@settings(max_examples=200)
@given(value=st.one_of(st.floats(allow_nan=True), st.integers(-(10**30), 10**30), st.text(max_size=5), st.none()))
def test_a_json_report_keeps_readable_numbers_and_counts_the_others(value):
    report = platform_report({"requestId": REQUEST_ID, "metrics": {"durationMs": value, "memorySizeMB": value}})
    readable = [v for v in (report.duration_ms, report.memory_size_mb) if v is not None]
    assert all(math.isfinite(v) and v >= 0 for v in readable)
    assert report.unreadable == (0 if value is None else 2 - len(readable))


@settings(max_examples=300)
@given(text=st.text(max_size=80), prefix=st.sampled_from(("", "[ERROR] ", "[INFO]\t", "2024-05-20T16:29:45.120Z\t")))
def test_no_parser_raises_on_hostile_text_and_an_app_line_keeps_a_suffix_of_it(text, prefix):
    message = prefix + text
    for parse in (python_line, node_line, prefixed_line):
        line = parse(message)
        assert line is None or (isinstance(line, AppLine) and message.endswith(line.body))
    for other in (python_unhandled, report_line, init_report_line, task_timeout):
        other(message)
    if message.split(None, 2)[1:2]:
        runtime_exit(message)


def test_each_shape_reads_into_its_named_result():
    assert vars_of(python_line(f"[WARNING]\t2024-05-20T16:29:45.120Z\t{REQUEST_ID}\tslow")) == (
        "WARNING",
        REQUEST_ID,
        "slow",
    )
    assert vars_of(python_line("[Information] - started")) == ("INFO", None, "started")
    assert vars_of(node_line("2024-05-20T16:29:45.120Z\tundefined\tERROR\tboom")) == ("ERROR", None, "boom")
    assert vars_of(prefixed_line(f"2024-05-20T16:29:45.120Z {REQUEST_ID} FATAL heap")) == (
        "FATAL",
        REQUEST_ID,
        "FATAL heap",
    )
    error = python_unhandled("[ERROR] MemoryError: out\nTraceback")
    assert error is not None and (error.error_type, error.message, error.out_of_memory) == (
        "MemoryError",
        "MemoryError: out",
        True,
    )
    killed = runtime_exit(
        f"RequestId: {REQUEST_ID} Error: Runtime exited with error: signal: killed\nRuntime.ExitError"
    )
    assert killed is not None and (killed.request_id, killed.error_type, killed.out_of_memory) == (
        REQUEST_ID,
        "Runtime.ExitError",
        True,
    )
    timeout = task_timeout(f"2024-05-20T16:29:45.120Z {REQUEST_ID} Task timed out after 99999999.00 seconds")
    assert timeout is not None and (timeout.timeout_s, timeout.unreadable) == (None, 1)
    init = init_report_line("INIT_REPORT Init Duration: 1e999 ms\tPhase: init\tStatus: error\tError Type: X")
    assert init is not None and (init.duration_ms, init.unreadable, init.phase, init.error_type) == (
        None,
        1,
        "init",
        "X",
    )
    assert init_report_line("INIT_REPORT Init Duration: 9 ms\tPhase: init\tStatus: success") is None
    restore = platform_init_failure("platform.restoreReport", {"status": "timeout", "metrics": {"durationMs": 5}})
    assert restore is not None and (restore.phase, restore.status, restore.duration_ms) == ("restore", "timeout", 5)


def vars_of(line: AppLine | None) -> tuple[str | None, str | None, str] | None:
    return None if line is None else (line.level, line.request_id, line.body)
