"""What Lambda, its runtimes and other tools really write, read right through `shipper run` in every export format.

Fixtures: tests/real_logs.py (excerpts of AWS's documented samples, per runtime).
"""

from __future__ import annotations

import pytest

from helpers import classify_messages, of_type
from real_logs import CONSOLE_COPIES, EXPORT_FORMATS, RUNTIMES, Runtime, export_files
from run_helpers import run



def _run_format(tmp_path, runtime: Runtime, export_format: str, messages: list[str] | None = None):
    paths = export_files(tmp_path / "in", runtime.name, runtime.messages if messages is None else messages)
    status, events = run(tmp_path, str(paths[export_format]), "--quiet")
    return status, events


# --- X-Ray ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("export_format", [f for f in EXPORT_FORMATS if f != "sam-logs"])
@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda r: r.name)
def test_every_runtime_report_gives_its_xray_trace_in_every_format(tmp_path, runtime, export_format):
    status, events = _run_format(tmp_path, runtime, export_format)
    [invocation] = of_type(events, "invocation")
    assert invocation["request_id"] == runtime.request_id
    assert invocation["xray_trace_id"] == runtime.trace_id
    assert invocation["function"] == runtime.name
    assert status == 0


@pytest.mark.parametrize(
    "separator", ["\t\n", "\n", "\t", "  ", " "], ids=["tab-newline", "newline", "tab", "spaces", "space"]
)
@pytest.mark.parametrize("fields_separator", ["\t", "  "], ids=["tabs", "spaces"])
def test_xray_fields_after_report_whatever_separates_them(separator, fields_separator):
    request_id, trace = "8f507cfc-xmpl-4697-b07a-ac58fc914c95", "1-5e34a614-10bdxmplf1fb44f07bc535a1"
    fields = fields_separator.join(("Duration: 15.74 ms", "Billed Duration: 16 ms", "Memory Size: 128 MB"))
    message = (
        f"REPORT RequestId: {request_id}{fields_separator}{fields}{fields_separator}Max Memory Used: 56 MB"
        f"{separator}XRAY TraceId: {trace}{fields_separator}SegmentId: 07f5xmpl2d1f6f85{fields_separator}Sampled: true\n"
    )
    [invocation] = classify_messages([message])
    assert (invocation["xray_trace_id"], invocation["max_memory_used_mb"], invocation["memory_size_mb"]) == (
        trace,
        56,
        128,
    )


def test_xray_line_of_its_own_belongs_only_to_the_report_just_before_it():
    copy = CONSOLE_COPIES["python"]
    report, xray = copy.split("\n", 1)
    [invocation] = of_type(classify_messages([report + "\n", xray]), "invocation")
    assert invocation["xray_trace_id"] == "1-5e34a614-10bdxmplf1fb44f07bc535a1"
    [invocation] = of_type(classify_messages([report + "\n", "some print output\n", xray]), "invocation")
    assert invocation["xray_trace_id"] is None
    assert of_type(classify_messages([xray]), "invocation") == []
