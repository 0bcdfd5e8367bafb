"""What Lambda, its runtimes and other tools really write, read right through `shipper run` in every export format.

Fixtures: tests/real_logs.py (excerpts of AWS's documented samples, per runtime).
"""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.classify import Classifier
from shipper.inputs.sources import not_logs

from helpers import classify_messages, cwl_document, of_type
from real_logs import (
    CONSOLE_COPIES,
    DATADOG_LEGACY_METRIC,
    DATADOG_NODE_METRIC,
    DOTNET,
    EXPORT_FORMATS,
    GO,
    JAVA,
    LEGACY_OOM_KILL,
    LEGACY_REQUEST_ID,
    LEGACY_TIMEOUT,
    NODE,
    NODE_HEAP_OUT_OF_MEMORY,
    POWERSHELL,
    PYTHON,
    RUBY,
    RUNTIMES,
    STREAM_NAME,
    Runtime,
    export_files,
    legacy_report,
)
from run_helpers import run


def _run_format(tmp_path, runtime: Runtime, export_format: str, messages: list[str] | None = None):
    paths = export_files(tmp_path / "in", runtime.name, runtime.messages if messages is None else messages)
    status, events = run(tmp_path, str(paths[export_format]), "--quiet")
    return status, events


# --- X-Ray ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("export_format", EXPORT_FORMATS)
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


# --- REPORT separators and request ids -------------------------------------------------------------------

BEST_PRACTICES_REPORT = (
    # AWS's Lambda best-practices page: a space, not a TAB, between Billed Duration and Memory Size.
    "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms\tBilled Duration: 100 ms "
    "Memory Size: 128 MB\tMax Memory Used: 18 MB\t\n"
)


def test_report_with_mixed_separators_yields_every_field():
    [invocation] = classify_messages([BEST_PRACTICES_REPORT])
    assert invocation | {"timestamp": 0} == invocation | {
        "timestamp": 0,
        "request_id": "3604209a-e9a3-11e6-939a-754dd98c7be3",
        "duration_ms": 12.34,
        "billed_duration_ms": 100,
        "memory_size_mb": 128,
        "max_memory_used_mb": 18,
    }


def test_report_with_literal_backslash_t_is_read_fully():
    line = BEST_PRACTICES_REPORT.replace("\t", "\\t").replace("\n", "\\n")
    [invocation] = classify_messages([line + "XRAY TraceId: 1-5e34a614-10bdxmplf1fb44f07bc535a1\\tSegmentId: 07f5\n"])
    assert (invocation["request_id"], invocation["max_memory_used_mb"], invocation["xray_trace_id"]) == (
        "3604209a-e9a3-11e6-939a-754dd98c7be3",
        18,
        "1-5e34a614-10bdxmplf1fb44f07bc535a1",
    )


@pytest.mark.parametrize(
    "request_id",
    [
        "8f507cfc-xmpl-4697-b07a-ac58fc914c95",
        "3604209a-e9a3-11e6-939a-754dd98c7be3",
        "C793869B-EE49-115B-A5B6-4FD21E8DEDAC",
    ],
)
def test_request_ids_as_lambda_and_its_documentation_write_them(request_id):
    messages = [
        f"START RequestId: {request_id} Version: $LATEST\n",
        "print output\n",
        f"2024-05-20T16:30:15.011Z {request_id} Task timed out after 3.00 seconds\n",
        f"REPORT RequestId: {request_id}\tDuration: 3003.17 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\t\n",
    ]
    events = classify_messages(messages)
    assert {event["type"]: event["request_id"] for event in events} == {
        "log": request_id,
        "timeout": request_id,
        "invocation": request_id,
    }


LAMBDA_REQUEST_ID = re.compile(r"[0-9A-Za-z]{8}(?:-[0-9A-Za-z]{4}){3}-[0-9A-Za-z]{12}")
_FIELDS = [
    "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3",
    "REPORT RequestId:",
    "START RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3",
    "RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3 Error: Runtime exited with error: signal: killed",
    "2024-05-20T16:30:15.011Z 3604209a-e9a3-11e6-939a-754dd98c7be3",
    "Task timed out after 3.00 seconds",
    "Duration: 12.34 ms",
    "Billed Duration: 100 ms",
    "Memory Size: 128 MB",
    "Max Memory Used: 18 MB",
    "Init Duration: 130.49 ms",
    "Status: timeout",
    "XRAY TraceId: 1-5e34a614-10bdxmplf1fb44f07bc535a1",
    "-xmpl-",
    "",
]
_SEPARATORS = ["\t", "\\t", " ", "  ", "\n", "\\n", "", "\t\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_FIELDS), st.sampled_from(_SEPARATORS)), min_size=1, max_size=8))
def test_platform_lines_with_any_separators_never_yield_a_request_id_of_another_shape(parts):
    message = "".join(field + separator for field, separator in parts)
    events = classify_messages([message, "after it\n"])
    assert [
        e["request_id"]
        for e in events
        if e["request_id"] is not None and not LAMBDA_REQUEST_ID.fullmatch(e["request_id"])
    ] == []


# --- a REPORT without Status, and the timeout or out-of-memory line of its request -------------------------


@pytest.mark.parametrize("export_format", ["tail", "export", "text", "filter-log-events", "insights", "insights-csv"])
@pytest.mark.parametrize("order", ["as-written", "report-first"])
def test_legacy_report_and_timeout_line_complete_each_other(tmp_path, export_format, order):
    messages = LEGACY_TIMEOUT if order == "as-written" else LEGACY_TIMEOUT[::-1]
    paths = export_files(tmp_path / "in", "orders-api", messages)
    _, events = run(tmp_path, str(paths[export_format]), "--quiet")
    [invocation] = of_type(events, "invocation")
    [timeout] = of_type(events, "timeout")
    assert (invocation["status"], invocation["duration_ms"]) == ("timeout", 3003.17)
    assert (timeout["request_id"], timeout["timeout_s"], timeout["duration_ms"]) == (LEGACY_REQUEST_ID, 3.0, 3003.17)


@pytest.mark.parametrize("export_format", ["tail", "export", "text", "filter-log-events", "insights", "insights-csv"])
@pytest.mark.parametrize("order", ["as-written", "report-first"])
def test_legacy_report_and_out_of_memory_kill_complete_each_other(tmp_path, export_format, order):
    messages = LEGACY_OOM_KILL if order == "as-written" else LEGACY_OOM_KILL[::-1]
    paths = export_files(tmp_path / "in", "orders-api", messages)
    _, events = run(tmp_path, str(paths[export_format]), "--quiet")
    [invocation] = of_type(events, "invocation")
    [oom] = of_type(events, "out_of_memory")
    assert of_type(events, "error") == []
    assert (invocation["status"], invocation["error_type"]) == ("error", "Runtime.OutOfMemory")
    assert (oom["request_id"], oom["memory_size_mb"], oom["max_memory_used_mb"]) == (LEGACY_REQUEST_ID, 128, 128)


def test_legacy_report_in_a_later_document_still_takes_the_status_of_an_earlier_timeout():
    """Across documents (batches) the status is corrected from the run's bounded per-request state; the
    timeout event, already emitted with the earlier document, keeps its null duration."""
    classifier = Classifier()
    first: list = []
    later: list = []
    classifier.classify(cwl_document(LEGACY_TIMEOUT[:2]), first, [])
    classifier.classify(cwl_document(LEGACY_TIMEOUT[2:]), later, [])
    [timeout] = of_type(first, "timeout")
    [invocation] = of_type(later, "invocation")
    assert (invocation["status"], timeout["duration_ms"]) == ("timeout", None)
    assert of_type(later, "timeout") == []


def test_modern_success_report_stays_success_beside_other_requests_failures():
    other = "3604209a-e9a3-11e6-939a-754dd98c7be3"
    messages = [LEGACY_TIMEOUT[1].replace(LEGACY_REQUEST_ID, other), legacy_report("12.00", "12", 128, 40)]
    [invocation] = of_type(classify_messages(messages), "invocation")
    assert (invocation["status"], invocation["error_type"]) == ("success", None)


# --- request ids and levels from line prefixes -------------------------------------------------------------


def test_out_of_memory_line_with_time_and_request_id_prefix_carries_the_request_id():
    # No START before it: the request id can only come from the line itself.
    events = classify_messages([NODE_HEAP_OUT_OF_MEMORY])
    [oom] = of_type(events, "out_of_memory")
    [log] = of_type(events, "log")
    assert oom["request_id"] == log["request_id"] == LEGACY_REQUEST_ID
    assert log["message"].startswith("FATAL ERROR: Ineffective mark-compacts")


@pytest.mark.parametrize(
    ("runtime", "line", "level", "message"),
    [
        ("python", "[ERROR] First test message\n", "ERROR", "First test message"),
        ("python", "[WARNING]\tsomething odd\n", "WARNING", "something odd"),
        (
            "java",
            "6bc28136-xmpl-4365-b021-0ce6b2e64ab0 DEBUG Handler:54 - processed 3 records\n",
            "DEBUG",
            "Handler:54 - processed 3 records",
        ),
        (
            "java",
            "2020-03-18 22:52:15 6bc28136-xmpl-4365-b021-0ce6b2e64ab0 INFO  Handler:31 - EVENT TYPE: class java.util.LinkedHashMap\n",
            "INFO",
            "Handler:31 - EVENT TYPE: class java.util.LinkedHashMap",
        ),
        (
            "java",
            "6bc28136-xmpl-4365-b021-0ce6b2e64ab0 ERROR Handler:60 - java.lang.OutOfMemoryError: Java heap space\n",
            "ERROR",
            "Handler:60 - java.lang.OutOfMemoryError: Java heap space",
        ),
        (
            "ruby",
            "I, [2019-10-26T10:04:01.689856 #8]  INFO 50aba555-xmpl-4b21-8358-644ee996a05f -- : ## EVENT\n",
            "INFO",
            "## EVENT",
        ),
        (
            "ruby",
            "E, [2019-10-26T10:04:01.689874 #8] ERROR 50aba555-xmpl-4b21-8358-644ee996a05f -- : failed\n",
            "ERROR",
            "failed",
        ),
        ("powershell", "[Information] - ## Environment variables\n", "INFO", "## Environment variables"),
        ("powershell", "[Warning] - low disk\n", "WARNING", "low disk"),
    ],
)
def test_runtime_log_levels_and_request_ids_from_line_prefixes(runtime, line, level, message):
    request_id = next(r.request_id for r in RUNTIMES if r.name == runtime)
    start = f"START RequestId: {request_id} Version: $LATEST\n"
    [log, *signals] = classify_messages([start, line])
    assert (log["level"], log["message"], log["request_id"]) == (level, message, request_id)
    assert [s["type"] for s in signals] == (["out_of_memory"] if "OutOfMemoryError" in line else [])


def test_prefixed_request_id_wins_over_the_open_invocation():
    other = "3604209a-e9a3-11e6-939a-754dd98c7be3"
    start = f"START RequestId: {other} Version: $LATEST\n"
    [log] = classify_messages([start, "6bc28136-xmpl-4365-b021-0ce6b2e64ab0 WARN  Handler:70 - slow\n"])
    assert (log["request_id"], log["level"]) == ("6bc28136-xmpl-4365-b021-0ce6b2e64ab0", "WARN")


@pytest.mark.parametrize(
    "line",
    [
        "2020/03/27 03:40:05 EVENT: {}\n",  # Go's log package: no request id
        "deadbeef-not-a-request-id DEBUG x\n",
        "2024-05-20 16:29:45 something else\n",
        "E, [not closed\n",
    ],
)
def test_lines_without_a_request_id_prefix_keep_the_open_invocation(line):
    start = f"START RequestId: {LEGACY_REQUEST_ID} Version: $LATEST\n"
    [log] = classify_messages([start, line])
    assert (log["request_id"], log["level"], log["message"]) == (LEGACY_REQUEST_ID, None, line.rstrip("\n"))


# --- custom metrics -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("export_format", ["tail", "export", "text", "filter-log-events", "insights-csv", "sam-logs"])
def test_datadog_metrics_with_fractional_epoch_seconds_are_metrics(tmp_path, export_format):
    node_prefixed = f"2020-03-05T16:30:36.120Z\t{NODE.request_id}\tINFO\t{DATADOG_NODE_METRIC}"
    messages = [DATADOG_NODE_METRIC, DATADOG_LEGACY_METRIC, node_prefixed]
    _, events = _run_format(tmp_path, NODE, export_format, messages)
    metrics = of_type(events, "metric")
    assert [(m["name"], m["timestamp"], m["value"]) for m in metrics] == [
        ("serverless.lambda-extension.integration-test.count", 1583425836114, 1.0),
        ("orders.processed", 1609983680410, 1.0),
        ("serverless.lambda-extension.integration-test.count", 1583425836114, 1.0),
    ]
    assert of_type(events, "log") == []


def test_run_summary_says_how_many_metric_lines_could_not_be_read_and_why(tmp_path, capsys):
    messages = [
        "MONITORING|1609983680|1|counter|orders.processed|#env:prod\n",
        "MONITORING|1609983680|1|counter|orders.processed|#env:prod\n",
        '{"m":"orders.processed","v":"one","e":1609983680,"t":[]}\n',
        DATADOG_LEGACY_METRIC,
    ]
    paths = export_files(tmp_path / "in", "orders-api", messages)
    report = tmp_path / "report.json"
    _, events = run(tmp_path, str(paths["export"]), "--report", str(report))
    err = capsys.readouterr().err
    assert "shipper: 3 metric lines could not be read and were kept as log events:" in err
    assert "2 x MONITORING| line fits neither form" in err
    assert "1 x Datadog metric 'orders.processed' has v 'one', not a finite number." in err
    assert len(of_type(events, "log")) == 3 and len(of_type(events, "metric")) == 1
    malformed = orjson.loads(report.read_bytes())["run"]["metric_lines_malformed"]
    assert malformed["lines"] == 3 and sum(malformed["reasons"].values()) == 3


def test_sampled_counters_count_value_over_sample_rate_in_the_report(tmp_path):
    messages = ["orders.processed:3|c|@0.1\n", "orders.processed:2|c\n", "checkout.latency:40|ms|@0.5\n"]
    paths = export_files(tmp_path / "in", "orders-api", messages)
    report = tmp_path / "report.json"
    run(tmp_path, str(paths["export"]), "--quiet", "--report", str(report))
    metrics = {m["name"]: m for m in orjson.loads(report.read_bytes())["metrics"]}
    assert metrics["orders.processed"]["sum"] == pytest.approx(32.0)
    assert metrics["checkout.latency"]["sum"] == 40.0  # timers are values, not counts: not scaled


# --- inputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda r: r.name)
def test_sam_logs_output_is_recognised_and_read_like_the_other_exports(tmp_path, runtime, capsys):
    paths = export_files(tmp_path / "in", runtime.name, runtime.messages)
    status, events = run(tmp_path, str(paths["sam-logs"]))
    assert "formats: sam-logs 1" in capsys.readouterr().err
    [invocation] = of_type(events, "invocation")
    assert (invocation["request_id"], invocation["xray_trace_id"]) == (runtime.request_id, runtime.trace_id)
    assert {e["log_stream"] for e in events} == {STREAM_NAME}
    assert status == 0


JSON_APP_LOGS = [
    # Lambda's JSON log format as the Python and Node.js runtimes write it (the advanced logging controls page).
    '{"timestamp": "2023-11-14T12:22:56Z", "level": "INFO", "message": "Inside the handler function", "logger": "root", "requestId": "79b4f56e-95b1-4643-9700-2807f4e68189"}\n',
    '{"timestamp":"2023-11-14T12:22:57.120Z","level":"ERROR","requestId":"79b4f56e-95b1-4643-9700-2807f4e68189","message":{"errorType":"TypeError","errorMessage":"Cannot read properties of undefined"}}\n',
    "raw print output stays text\n",
    '{"timestamp":"2023-11-14T12:22:57.200Z","level":"WARN","requestId":"79b4f56e-95b1-4643-9700-2807f4e68189","message":{"note":"an object"}}\n',
]


@pytest.mark.parametrize("lines", [JSON_APP_LOGS, JSON_APP_LOGS[:2], JSON_APP_LOGS[:1]], ids=["mixed", "json", "one"])
def test_a_file_of_json_application_logs_is_read_as_logs_never_rejects(tmp_path, lines, capsys):
    path = tmp_path / "aws" / "lambda" / "orders-api" / "app.log"
    path.parent.mkdir(parents=True)
    path.write_text("".join(lines))
    status, events = run(tmp_path, str(path))
    assert "formats: text 1" in capsys.readouterr().err
    assert status == 0
    logs = of_type(events, "log")
    assert len(logs) == len(lines)
    json_logs = [e for e in logs if e["fields"] is not None]
    assert {e["request_id"] for e in json_logs} == {"79b4f56e-95b1-4643-9700-2807f4e68189"}
    assert json_logs[0]["timestamp"] == 1699964576000
    assert [e["level"] for e in json_logs] == ["INFO", "ERROR", "WARN"][: len(json_logs)]


def test_ndjson_event_whose_message_is_an_object_is_a_log_not_a_reject(tmp_path):
    line = b'{"timestamp": 1716222585008, "message": {"level": "INFO", "msg": "hi"}, "logStreamName": "s"}\n'
    path = tmp_path / "aws" / "lambda" / "orders-api.ndjson"
    path.parent.mkdir(parents=True)
    path.write_bytes(line)
    status, events = run(tmp_path, str(path), "--quiet")
    [log] = events
    assert (status, log["type"], log["level"], log["fields"]) == (0, "log", "INFO", {"level": "INFO", "msg": "hi"})


EMF_INDENTED = """{
    "_aws": {
        "Timestamp": 1716222585009,
        "CloudWatchMetrics": [
            {
                "Namespace": "Orders",
                "Dimensions": [["Service"]],
                "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}]
            }
        ]
    },
    "Service": "orders-api",
    "Latency": 12.5
}
"""


@pytest.mark.parametrize("export_format", ["tail", "export", "text", "sam-logs"])
def test_pretty_printed_emf_in_text_exports_is_one_event_with_its_metrics(tmp_path, export_format):
    messages = [PYTHON.messages[0], EMF_INDENTED, PYTHON.messages[3]]
    _, events = _run_format(tmp_path, PYTHON, export_format, messages)
    [metric] = of_type(events, "metric")
    assert (metric["name"], metric["value"], metric["request_id"]) == ("Latency", 12.5, PYTHON.request_id)
    assert of_type(events, "log") == []


def _insights_report_rows(with_timestamp: bool) -> list[dict[str, str]]:
    """Rows of the Logs Insights sample query `filter @type = "REPORT" | fields @requestId, @duration, ...`."""
    rows = []
    for number, (duration, init) in enumerate([("15.74", "130.49"), ("3.02", ""), ("101.50", "")]):
        row = {
            "@requestId": f"8f507cfc-xmpl-4697-b07a-ac58fc91400{number}",
            "@duration": duration,
            "@billedDuration": str(int(float(duration)) + 1),
            "@memorySize": "128000000",
            "@maxMemoryUsed": "56000000",
            "@initDuration": init,
        }
        if with_timestamp:
            row = {"@timestamp": f"2024-05-20 16:29:4{number}.000", **row}
        rows.append(row)
    return rows


def _write_insights(path, rows: list[dict[str, str]], as_csv: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if as_csv:
        header = list(rows[0])
        lines = [",".join(header)] + [",".join(row.get(k, "") for k in header) for row in rows]
        path.write_text("\n".join(lines) + "\n")
    else:
        results = [[{"field": k, "value": v} for k, v in row.items() if v != ""] for row in rows]
        path.write_bytes(orjson.dumps({"results": results, "status": "Complete"}))


@pytest.mark.parametrize("as_csv", [False, True], ids=["json", "csv"])
@pytest.mark.parametrize("with_timestamp", [False, True], ids=["no-time", "time"])
def test_logs_insights_report_query_without_message_becomes_invocations(tmp_path, as_csv, with_timestamp):
    path = tmp_path / "aws" / "lambda" / "orders-api" / ("report.csv" if as_csv else "report.json")
    _write_insights(path, _insights_report_rows(with_timestamp), as_csv)
    status, events = run(tmp_path, str(path), "--quiet")
    invocations = of_type(events, "invocation")
    assert status == 0
    assert [(i["duration_ms"], i["memory_size_mb"], i["max_memory_used_mb"], i["cold_start"]) for i in invocations] == [
        (15.74, 128, 56, True),
        (3.02, 128, 56, False),
        (101.5, 128, 56, False),
    ]
    assert {i["function"] for i in invocations} == {"orders-api"}
    assert len(of_type(events, "cold_start")) == 1
    if with_timestamp:
        assert invocations[0]["timestamp"] == 1716222580000


@pytest.mark.parametrize("as_csv", [False, True], ids=["json", "csv"])
def test_logs_insights_rows_without_message_say_what_to_add_to_the_query(tmp_path, as_csv, capsys):
    rows = [{"@timestamp": "2024-05-20 16:29:40.000", "@logStream": STREAM_NAME, "level": "INFO"}] * 3
    path = tmp_path / "aws" / "lambda" / "orders-api" / ("q.csv" if as_csv else "q.json")
    _write_insights(path, rows, as_csv)
    status, events = run(tmp_path, str(path))
    err = capsys.readouterr().err
    assert status == 1 and events == []
    assert "3 Logs Insights rows have no @message field" in err
    assert "add @message to the query (fields @timestamp, @message, @logStream, @log)" in err
    assert 'filter @type = "REPORT" | fields @timestamp, @requestId, @duration' in err


def test_logs_insights_report_row_with_hostile_numbers_stays_a_log_line(tmp_path):
    row = _insights_report_rows(True)[0] | {"@memorySize": "1e400", "@duration": "9" * 5000}
    path = tmp_path / "aws" / "lambda" / "orders-api" / "report.json"
    _write_insights(path, [row], as_csv=False)
    _, events = run(tmp_path, str(path), "--quiet")
    assert [e["type"] for e in events] == ["log"]


# --- the function, when nothing names it ------------------------------------------------------------------------


def test_filter_log_events_of_unknown_functions_are_named_in_the_summary_with_the_fix(tmp_path, capsys):
    """`aws logs filter-log-events --log-group-name /aws/lambda/F > F.json` has no log group in it."""
    for runtime in (PYTHON, NODE):
        paths = export_files(tmp_path / "raw", runtime.name, runtime.messages)
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{runtime.name}.json").write_bytes(paths["filter-log-events"].read_bytes())
    report = tmp_path / "report.json"
    _, events = run(tmp_path, str(tmp_path / "in"), "--report", str(report))
    err = capsys.readouterr().err
    assert {e["function"] for e in events} == {None}
    in_dir = tmp_path / "in"
    assert (
        f"events from 2 inputs have no known function (no log group in the data or the path): {in_dir / 'node.json'}, {in_dir / 'python.json'}."
        in err
    )
    assert "the report adds them up together as (unknown function)" in err
    assert (
        "pass --log-group /aws/lambda/NAME (one run per function), or keep each file under a path holding aws/lambda/NAME"
        in err
    )
    unknown = orjson.loads(report.read_bytes())["run"]["unknown_function"]
    assert unknown["events"] == len(events) and unknown["inputs"] == 2


def test_the_documented_recipes_name_the_function(tmp_path, capsys):
    """docs/run.md's recipe: the file under aws/lambda/F (or --log-group) names the function."""
    paths = export_files(tmp_path, "orders-api", PYTHON.messages)
    _, events = run(tmp_path, str(paths["filter-log-events"]))
    assert {e["function"] for e in events} == {"orders-api"}
    assert "no known function" not in capsys.readouterr().err
    plain = tmp_path / "F.json"
    plain.write_bytes(paths["filter-log-events"].read_bytes())
    _, events = run(tmp_path, str(plain), "--log-group", "/aws/lambda/orders-api")
    assert {e["function"] for e in events} == {"orders-api"}


# --- a directory walk reads logs, not documentation ----------------------------------------------------------

README_PROSE = """# Orders exports

When DynamoDB answers ProvisionedThroughputExceededException or ThrottlingException, or an API says
"Rate exceeded" (HTTP 429, Too Many Requests), the SDK retries: see the runbook. Task timed out after
3.00 seconds means the function hit its timeout; JavaScript heap out of memory means raise memory.
"""


def test_a_directory_walk_skips_files_that_are_not_logs_and_lists_them(tmp_path, capsys):
    paths = export_files(tmp_path / "in", "orders-api", PYTHON.messages)
    export_dir = tmp_path / "in" / "export"
    assert paths["export"].is_relative_to(export_dir)
    (export_dir / "README.md").write_text(README_PROSE)
    (export_dir / "LICENSE").write_text("Apache License 2.0: TooManyRequestsException\n")
    (export_dir / "fetch.sh").write_text("aws logs create-export-task  # SlowDown on 503\n")
    report = tmp_path / "report.json"
    status, events = run(tmp_path, str(export_dir), "--report", str(report))
    err = capsys.readouterr().err
    assert status == 0
    assert of_type(events, "throttle") == [] and of_type(events, "timeout") == []
    assert {e["function"] for e in events} == {"orders-api"} and len(of_type(events, "invocation")) == 1
    assert "shipper: skipped 3 files that do not look like logs:" in err
    assert f"{export_dir / 'README.md'}: documentation (.md), not logs" in err
    assert f"{export_dir / 'LICENSE'}: LICENSE: documentation, not logs" in err
    assert f"{export_dir / 'fetch.sh'}: source or configuration (.sh), not logs" in err
    assert orjson.loads(report.read_bytes())["run"]["skipped_inputs"]["count"] == 3


def test_a_file_named_on_the_command_line_is_read_whatever_its_name(tmp_path):
    readme = tmp_path / "aws" / "lambda" / "orders-api" / "README.md"
    readme.parent.mkdir(parents=True)
    readme.write_text(README_PROSE)
    _, events = run(tmp_path, str(readme), "--quiet")
    assert len(of_type(events, "throttle")) > 0


@pytest.mark.parametrize(
    ("name", "skipped"),
    [
        ("README.md", True),
        ("readme.txt", True),
        ("notes.rst", True),
        ("docs/index.html", True),
        ("orders-api.log", False),
        ("orders-api.json", False),
        ("000000.gz", False),
        ("2024/05/20/[$LATEST]abc/000000.gz", False),
        ("orders-api.txt", False),
        ("report.csv", False),
        ("aws-logs-write-test", False),
        ("central-logs-1-2024-05-20-16-00-00-abc", False),
    ],
)
def test_which_names_are_not_logs(name, skipped):
    assert (not_logs(name) is not None) == skipped


def test_canonical_report_lines_take_the_one_regex_path(monkeypatch):
    """Lambda's own REPORT lines (TABs, X-Ray on the second line) never need the generic field parser."""
    import shipper.classify

    def generic(line):
        raise AssertionError(f"generic parser used for {line!r}")

    monkeypatch.setattr(shipper.classify, "platform_fields", generic)
    for runtime in (PYTHON, JAVA, GO, RUBY, DOTNET, POWERSHELL):
        [invocation] = of_type(classify_messages([runtime.messages[-1]]), "invocation")
        assert invocation["xray_trace_id"] == runtime.trace_id
