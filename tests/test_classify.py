"""Classification of every line shape in formats.md into contract events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.classify import Classifier, function_from_log_source
from shipper.lines import is_request_id, platform_fields

from helpers import REQUEST_ID, classify_messages, of_type

START = f"START RequestId: {REQUEST_ID} Version: $LATEST\n"
END = f"END RequestId: {REQUEST_ID}\n"


def report(*fields: str, xray: str = "") -> str:
    return f"REPORT RequestId: {REQUEST_ID}\t" + "\t".join(fields) + "\t\n" + xray


OOM_REPORT = report(
    "Duration: 6954.19 ms",
    "Billed Duration: 6955 ms",
    "Memory Size: 1024 MB",
    "Max Memory Used: 1024 MB",
    "Status: error",
    "Error Type: Runtime.OutOfMemory",
)
"""The REPORT line of an invocation Lambda stopped for running out of memory."""


BASIC = ("Duration: 11.64 ms", "Billed Duration: 12 ms", "Memory Size: 128 MB", "Max Memory Used: 67 MB")


# --- REPORT and other text platform lines -------------------------------------------------------------


def test_warm_report_gives_one_invocation_and_nothing_else():
    [invocation] = classify_messages([START, END, report(*BASIC)])
    assert invocation == invocation | {
        "type": "invocation",
        "function": "orders-api",
        "request_id": REQUEST_ID,
        "duration_ms": 11.64,
        "billed_duration_ms": 12,
        "memory_size_mb": 128,
        "max_memory_used_mb": 67,
        "init_duration_ms": None,
        "restore_duration_ms": None,
        "cold_start": False,
        "status": "success",
        "error_type": None,
        "xray_trace_id": None,
        "log_format": "text",
    }


def test_cold_report_with_xray_trailer_gives_invocation_and_cold_start():
    message = report(
        *BASIC,
        "Init Duration: 190.62 ms",
        xray="XRAY TraceId: 1-636d1462-33ef10600061cad86dab71c8\tSegmentId: 7ccb4860675ee485\tSampled: true\t\n",
    )
    invocation, cold_start = classify_messages([message])
    assert invocation["init_duration_ms"] == 190.62
    assert invocation["cold_start"] is True
    assert invocation["xray_trace_id"] == "1-636d1462-33ef10600061cad86dab71c8"
    assert cold_start["type"] == "cold_start"
    assert cold_start["init_duration_ms"] == 190.62
    assert cold_start["request_id"] == REQUEST_ID


def test_snapstart_restore_report():
    message = report(
        "Duration: 2338.66 ms",
        "Billed Duration: 2521 ms",
        "Memory Size: 3008 MB",
        "Max Memory Used: 173 MB",
        "Restore Duration: 398.97 ms",
        "Billed Restore Duration: 182 ms",
    )
    invocation, cold_start = classify_messages([message])
    assert invocation["restore_duration_ms"] == 398.97
    assert invocation["billed_restore_duration_ms"] == 182
    assert invocation["init_duration_ms"] is None
    assert cold_start["restore_duration_ms"] == 398.97


def test_old_report_spacing_and_tabs_turned_into_spaces_parse_the_same():
    old = (
        f"REPORT RequestId: {REQUEST_ID}\tDuration: 26.73 ms\tBilled Duration: 100 ms \tMemory Size: 128 MB\t"
        "Max Memory Used: 75 MB\t\n"
    )
    spaced = old.replace("\t", " ")
    [from_old] = classify_messages([old])
    [from_spaced] = classify_messages([spaced])
    for invocation in (from_old, from_spaced):
        assert (invocation["duration_ms"], invocation["billed_duration_ms"]) == (26.73, 100)
        assert (invocation["memory_size_mb"], invocation["max_memory_used_mb"]) == (128, 75)
        assert invocation["request_id"] == REQUEST_ID


def test_report_with_unknown_future_field_still_parses():
    [invocation] = classify_messages([report(*BASIC, "Tenant Overhead: 3 ms")])
    assert invocation["duration_ms"] == 11.64


def test_report_with_only_duration_managed_instances():
    [invocation] = classify_messages([f"REPORT RequestId: {REQUEST_ID}\tDuration: 5.00 ms\t\n"])
    assert invocation["duration_ms"] == 5.0
    assert invocation["memory_size_mb"] is None and invocation["billed_duration_ms"] is None


def test_report_whose_numbers_do_not_parse_is_kept_as_a_log_line():
    message = f"REPORT RequestId: {REQUEST_ID}\tDuration: fast ms\t\n"
    [log] = classify_messages([message])
    assert log["type"] == "log" and log["message"] == message.rstrip("\n")


def test_timeout_line_and_report_status_timeout_give_one_timeout_with_both_facts():
    events = classify_messages(
        [
            START,
            f"2024-05-20T16:30:15.011Z {REQUEST_ID} Task timed out after 30.03 seconds\n\n",
            END,
            report(
                "Duration: 30000.00 ms",
                "Billed Duration: 30477 ms",
                "Memory Size: 1536 MB",
                "Max Memory Used: 1035 MB",
                "Init Duration: 476.75 ms",
                "Status: timeout",
            ),
        ]
    )
    [timeout] = of_type(events, "timeout")
    assert timeout["timeout_s"] == 30.03
    assert timeout["duration_ms"] == 30000.0
    assert timeout["request_id"] == REQUEST_ID
    [invocation] = of_type(events, "invocation")
    assert invocation["status"] == "timeout"
    assert len(of_type(events, "cold_start")) == 1
    assert of_type(events, "log") == []
    assert of_type(events, "error") == []


def test_application_line_saying_timed_out_is_not_a_timeout():
    events = classify_messages(
        [
            f"[WARNING]\t2024-05-20T16:29:45.009Z\t{REQUEST_ID}\trequest to upstream timed out after 3 seconds\n",
            "Task timed out after 5 seconds, will retry\n",
        ]
    )
    assert [e["type"] for e in events] == ["log", "log"]


def test_out_of_memory_report_status():
    message = OOM_REPORT
    invocation, oom = classify_messages([message])
    assert invocation["status"] == "error" and invocation["error_type"] == "Runtime.OutOfMemory"
    assert oom == oom | {
        "type": "out_of_memory",
        "memory_size_mb": 1024,
        "max_memory_used_mb": 1024,
        "error_type": "Runtime.OutOfMemory",
    }


def test_signal_killed_then_report_out_of_memory_is_one_out_of_memory_event():
    events = classify_messages(
        [
            START,
            f"RequestId: {REQUEST_ID} Error: Runtime exited with error: signal: killed\nRuntime.ExitError\n",
            END,
            OOM_REPORT,
        ]
    )
    [oom] = of_type(events, "out_of_memory")
    assert oom["message"] == "Runtime exited with error: signal: killed"
    assert oom["memory_size_mb"] == 1024  # filled in from the REPORT line that followed
    assert of_type(events, "error") == []


def test_runtime_exit_with_status_is_an_error():
    events = classify_messages(
        [f"RequestId: {REQUEST_ID} Error: Runtime exited with error: exit status 106\nRuntime.ExitError\n"]
    )
    [error] = events
    assert error == error | {
        "type": "error",
        "error_type": "Runtime.ExitError",
        "message": "Runtime exited with error: exit status 106",
        "request_id": REQUEST_ID,
    }


@pytest.mark.parametrize(
    ("line", "error_type"),
    [
        ("fatal error: runtime: out of memory\n\ngoroutine 1 [running]:\n", None),
        (
            'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space\n\tat Foo.bar(Foo.java:1)',
            "java.lang.OutOfMemoryError",
        ),
        ("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n", None),
        (
            '[ERROR] MemoryError\nTraceback (most recent call last):\n\u00a0\u00a0File "/var/task/app.py", line 3\n',
            "MemoryError",
        ),
        ('Traceback (most recent call last):\n  File "x.py", line 1\nMemoryError\n', "MemoryError"),
        ("/var/task/app.rb:3: failed to allocate memory (NoMemoryError)\n", "NoMemoryError"),
    ],
)
def test_runtime_out_of_memory_strings(line, error_type):
    events = classify_messages([START, line])
    [oom] = of_type(events, "out_of_memory")
    assert oom["error_type"] == error_type
    assert oom["request_id"] == REQUEST_ID
    assert len(of_type(events, "log")) == 1


@pytest.mark.parametrize(
    "line",
    [
        "CustomMemoryErrorHandler registered\n",
        "handled a MemoryError gracefully and moved on\n",
        "NoMemoryErrorFound in cache\n",
        "free memory: 512 MB\n",
        "out of memory budget for this quarter\n",
    ],
)
def test_ordinary_words_about_memory_are_not_out_of_memory(line):
    assert [e["type"] for e in classify_messages([line])] == ["log"]


def test_init_report_failures_and_success():
    events = classify_messages(
        [
            "INIT_START Runtime Version: python:3.12.v27\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:fb4a\n",
            "INIT_REPORT Init Duration: 10007.33 ms\tPhase: init\tStatus: timeout\n",
            "INIT_REPORT Init Duration: 83.58 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.ImportModuleError\n",
            "INIT_REPORT Init Duration: 412.55 ms\n",
            "RESTORE_START Runtime Version: java:11.v21\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:156a\n",
            "RESTORE_REPORT Restore Duration: 511.25 ms\n",
            "RESTORE_REPORT Restore Duration: 900.00 ms\tStatus: error\tError Type: Runtime.ExitError\n",
        ]
    )
    assert [(e["phase"], e["status"], e["error_type"], e["init_duration_ms"]) for e in events] == [
        ("init", "timeout", None, 10007.33),
        ("invoke", "error", "Runtime.ImportModuleError", 83.58),
        ("restore", "error", "Runtime.ExitError", 900.0),
    ]
    assert all(e["type"] == "init_error" for e in events)


def test_platform_lines_that_carry_no_event_are_consumed():
    lines = [
        START,
        END,
        "EXTENSION\tName: AWSParametersAndSecretsLambdaExtension\tState: Ready\tEvents: [SHUTDOWN, INVOKE]\n",
        "TELEMETRY\tName: datadog-agent\tState: Subscribed\tTypes: [Platform, Function, Extension]\n",
        "LOGS\tName: old-extension\tState: Subscribed\tTypes: [platform]\n",
    ]
    assert classify_messages(lines) == []


# --- application lines ---------------------------------------------------------------------------------


def test_python_text_lines():
    events = classify_messages(
        [
            START,
            f"[INFO]\t2024-05-20T16:29:45.009Z\t{REQUEST_ID}\tprocessed order 42\n",
            "[WARNING]\t2024-05-20T16:29:44.901Z\t\tLAMBDA_WARNING: Unhandled exception.\n",
            "plain print output\n",
        ]
    )
    assert [(e["level"], e["message"], e["request_id"]) for e in events] == [
        ("INFO", "processed order 42", REQUEST_ID),
        ("WARNING", "LAMBDA_WARNING: Unhandled exception.", REQUEST_ID),  # empty id: the open invocation
        (None, "plain print output", REQUEST_ID),
    ]


def test_python_unhandled_exception_then_report_error_is_one_error():
    events = classify_messages(
        [
            START,
            "[ERROR] KeyError: 'order_id'\nTraceback (most recent call last):\n\u00a0\u00a0File \"/var/task/app.py\", "
            "line 12, in handler\n\u00a0\u00a0\u00a0\u00a0order = event['order_id']\n",
            END,
            report(*BASIC, "Status: error", "Error Type: Runtime.Unknown"),
        ]
    )
    [log] = of_type(events, "log")
    assert log["level"] == "ERROR" and log["message"].startswith("KeyError: 'order_id'\nTraceback")
    [error] = of_type(events, "error")
    assert error == error | {"error_type": "KeyError", "message": "'order_id'", "request_id": REQUEST_ID}
    assert of_type(events, "invocation")[0]["status"] == "error"


def test_node_text_lines_and_unhandled_errors():
    events = classify_messages(
        [
            f"2024-05-20T16:29:45.009Z\t{REQUEST_ID}\tINFO\tprocessed order 42\n",
            f'2024-05-20T16:29:45.120Z\t{REQUEST_ID}\tERROR\tInvoke Error \t{{"errorType":"TypeError",'
            '"errorMessage":"Cannot read properties of undefined (reading \'id\')","stack":["TypeError: x"]}\n',
            '2024-05-20T16:29:44.870Z\tundefined\tERROR\tUncaught Exception \t{"errorType":"Runtime.ImportModuleError",'
            '"errorMessage":"Error: Cannot find module \'index\'\\nRequire stack:","stack":[]}\n',
        ]
    )
    logs = of_type(events, "log")
    assert [(e["level"], e["request_id"]) for e in logs] == [
        ("INFO", REQUEST_ID),
        ("ERROR", REQUEST_ID),
        ("ERROR", None),
    ]
    assert logs[0]["message"] == "processed order 42"
    # The init-time Uncaught Exception belongs to no invocation: it stays a log line (INIT_REPORT reports it).
    [error] = of_type(events, "error")
    assert (error["error_type"], error["request_id"]) == ("TypeError", REQUEST_ID)
    assert error["message"] == "Cannot read properties of undefined (reading 'id')"


# --- JSON log format -----------------------------------------------------------------------------------


def test_json_platform_records():
    events = classify_messages(
        [
            '{"time":"2024-05-20T16:29:44.833Z","type":"platform.initStart","record":{"initializationType":"on-demand",'
            '"phase":"init","runtimeVersion":"nodejs:20.v22","functionName":"orders-api","functionVersion":"$LATEST"}}',
            '{"time":"2024-05-20T16:29:45.007Z","type":"platform.initReport","record":{"initializationType":"on-demand",'
            '"phase":"init","status":"success","metrics":{"durationMs":173.778}}}',
            f'{{"time":"2024-05-20T16:29:45.008Z","type":"platform.start","record":{{"requestId":"{REQUEST_ID}",'
            '"version":"$LATEST","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-664b7a59-2f1c0d9e8b7a6c5d4e3f2a1b;Sampled=1"}}}',
            f'{{"time":"2024-05-20T16:29:45.019Z","type":"platform.runtimeDone","record":{{"requestId":"{REQUEST_ID}",'
            '"status":"success","metrics":{"durationMs":11.185,"producedBytes":40}}}',
            f'{{"time":"2024-05-20T16:29:45.022Z","type":"platform.report","record":{{"requestId":"{REQUEST_ID}",'
            '"metrics":{"durationMs":11.642,"billedDurationMs":12,"memorySizeMB":128,"maxMemoryUsedMB":67,'
            '"initDurationMs":174.055},"tracing":{"type":"X-Amzn-Trace-Id",'
            '"value":"Root=1-664b7a59-2f1c0d9e8b7a6c5d4e3f2a1b;Parent=0a1b;Sampled=1"},"status":"success"}}',
        ]
    )
    invocation, cold_start = events
    assert invocation == invocation | {
        "type": "invocation",
        "duration_ms": 11.642,
        "billed_duration_ms": 12,
        "memory_size_mb": 128,
        "max_memory_used_mb": 67,
        "init_duration_ms": 174.055,
        "cold_start": True,
        "status": "success",
        "log_format": "json",
        "xray_trace_id": "1-664b7a59-2f1c0d9e8b7a6c5d4e3f2a1b",
    }
    assert cold_start["init_duration_ms"] == 174.055


def test_json_platform_failures():
    events = classify_messages(
        [
            '{"time":"2024-10-18T19:38:39.661Z","type":"platform.report","record":{"requestId":"b441",'
            '"metrics":{"durationMs":30000.0,"billedDurationMs":30000,"memorySizeMB":128,"maxMemoryUsedMB":74},'
            '"status":"timeout"}}',
            '{"time":"2024-06-17T17:48:06.348Z","type":"platform.initReport","record":{"initializationType":"on-demand",'
            '"phase":"init","status":"timeout","metrics":{"durationMs":10000.487}}}',
            '{"time":"2024-05-20T16:31:02.114Z","type":"platform.report","record":{"requestId":"7d1c",'
            '"metrics":{"durationMs":6954.19,"billedDurationMs":6955,"memorySizeMB":1024,"maxMemoryUsedMB":1024},'
            '"status":"error","errorType":"Runtime.OutOfMemory"}}',
        ]
    )
    assert [e["type"] for e in events] == ["invocation", "timeout", "init_error", "invocation", "out_of_memory"]
    assert events[1]["duration_ms"] == 30000.0 and events[1]["timeout_s"] is None
    assert events[2] == events[2] | {"phase": "init", "status": "timeout", "init_duration_ms": 10000.487}
    assert events[4]["memory_size_mb"] == 1024


def test_json_app_logs_python_and_node():
    events = classify_messages(
        [
            f'{{"timestamp": "2024-05-20T16:29:45Z", "level": "INFO", "message": "processed order 42", "logger": "root",'
            f' "requestId": "{REQUEST_ID}"}}',
            '{"timestamp":"2024-05-20T16:29:45.120Z","level":"ERROR","requestId":"r2","message":{"errorType":"TypeError",'
            '"errorMessage":"Cannot read","stackTrace":["TypeError: Cannot read"]}}',
            '{"timestamp": "2024-05-20T16:29:45Z", "log_level": "ERROR", "errorMessage": "\'order_id\'", "errorType": '
            '"KeyError", "requestId": "r3", "stackTrace": ["  File \\"/var/task/app.py\\", line 12, in handler\\n"]}',
            "raw print() output in a JSON-format stream\n",
        ]
    )
    logs = of_type(events, "log")
    assert [(e["level"], e["request_id"]) for e in logs] == [
        ("INFO", REQUEST_ID),
        ("ERROR", "r2"),
        ("ERROR", "r3"),
        (None, None),
    ]
    assert logs[0]["message"] == "processed order 42" and logs[0]["fields"]["logger"] == "root"
    assert (
        logs[1]["message"]
        == '{"errorType":"TypeError","errorMessage":"Cannot read","stackTrace":["TypeError: Cannot read"]}'
    )
    assert logs[2]["message"] == "KeyError: 'order_id'"
    assert logs[3]["fields"] is None
    # Only the runtime's unhandled-error shape (log_level, no level) is an invocation error.
    [error] = of_type(events, "error")
    assert (error["error_type"], error["request_id"]) == ("KeyError", "r3")


def test_lambda_warning_prefix_before_json_unhandled_error():
    events = classify_messages(
        [
            "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code.\n"
            '{"timestamp": "2024-05-20T16:29:45Z", "log_level": "ERROR", "errorMessage": "boom", "errorType": "ValueError",'
            ' "requestId": "r9", "stackTrace": []}'
        ]
    )
    assert [e["type"] for e in events] == ["log", "log", "error"]
    assert events[0]["level"] == "WARNING" and events[2]["error_type"] == "ValueError"


# --- throttling ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (
            f"[ERROR]\t2024-05-20T16:29:45.120Z\t{REQUEST_ID}\tput_records failed\nTraceback (most recent call last):\n"
            " ...\nbotocore.errorfactory.ProvisionedThroughputExceededException: An error occurred "
            "(ProvisionedThroughputExceededException) when calling the PutRecord operation (reached max retries: 4): "
            "Rate exceeded for shard shardId-000000000001 in stream central-logs under account 123456789012.",
            "ProvisionedThroughputExceededException",
        ),
        (
            "[ERROR] TooManyRequestsException: An error occurred (TooManyRequestsException) when calling the Invoke "
            "operation (reached max retries: 4): Rate Exceeded.\nTraceback (most recent call last):\n",
            "TooManyRequestsException",
        ),
        (
            f"2024-05-20T16:29:45.120Z\t{REQUEST_ID}\tERROR\tThrottlingException: Rate exceeded\n    at throwDefaultError",
            "ThrottlingException",
        ),
        ("An error occurred (Throttling) when calling the AssumeRole operation: Rate exceeded", "Throttling"),
        (
            "An error occurred (SlowDown) when calling the PutObject operation: Please reduce your request rate.",
            "SlowDown",
        ),
        ("kinesis put failed: LimitExceededException", "LimitExceededException"),
        (
            "2024-05-20 16:29:45 4b142fc3 ERROR LedgerHandler - ledger write failed: software.amazon.awssdk.services."
            "dynamodb.model.ProvisionedThroughputExceededException: The level of configured provisioned throughput "
            "(Service: DynamoDb, Status Code: 400, Request ID: ABC)",
            "ProvisionedThroughputExceededException",
        ),
        ("upstream said: Rate exceeded", "RateExceeded"),
        ("HTTP 429 Too Many Requests from api.example.com", "HTTP429"),
        ('request failed {"statusCode": 429}', "HTTP429"),
    ],
)
def test_throttles_in_application_lines(line, code):
    events = classify_messages([line])
    [throttle] = of_type(events, "throttle")
    assert throttle["error_code"] == code
    assert code.replace("HTTP", "").replace("RateExceeded", "Rate") in throttle["message"] or code == "HTTP429"
    assert len(of_type(events, "log")) == 1  # the line itself is kept too


@pytest.mark.parametrize(
    "line",
    [
        "we throttle uploads to 5/s\n",
        "Throttling enabled for tenant acme\n",
        "alarm: error rate exceeded 5% for 3 minutes\n",
        "processed 429 orders\n",
        "KMSLimitExceededExceptionHandler loaded\n",
        "too many requests are queued; scaling out\n",
    ],
)
def test_prose_about_throttles_is_not_a_throttle(line):
    assert of_type(classify_messages([line]), "throttle") == []


# --- metrics, function names, run-wide rules ----------------------------------------------------------


def test_metric_lines_become_metric_events_and_malformed_ones_stay_logs():
    events = classify_messages(
        [
            START,
            "page.views:1|c|#env:prod,service:web\n",
            f"2024-05-20T16:29:45.009Z\t{REQUEST_ID}\tINFO\tMONITORING|42.7|Milliseconds|latency|shop|service=cart\n",
            "MONITORING|1716222585|1|count|orders.processed|#env:prod\n",
            '{"m":"orders.processed","v":1,"e":1716222585,"t":["env:prod"]}\n',
            f'2024-05-20T16:29:45.009Z\t{REQUEST_ID}\tINFO\t{{"_aws":{{"Timestamp":1716222585009,"CloudWatchMetrics":'
            '[{"Namespace":"Orders","Dimensions":[["Service"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]}]},'
            '"Service":"orders-api","Latency":[12.5,48.1]}\n',
            "MONITORING|not|enough\n",
        ]
    )
    metrics = of_type(events, "metric")
    assert [(m["format"], m["name"], m["value"]) for m in metrics] == [
        ("statsd", "page.views", 1.0),
        ("lumigo", "latency", 42.7),
        ("datadog", "orders.processed", 1.0),
        ("datadog", "orders.processed", 1.0),
        ("emf", "Latency", 12.5),
        ("emf", "Latency", 48.1),
    ]
    assert all(m["request_id"] == REQUEST_ID and m["function"] == "orders-api" for m in metrics)
    [malformed] = of_type(events, "log")
    assert malformed["message"] == "MONITORING|not|enough"


def test_function_name_from_custom_log_group_stream_and_platform_record():
    assert function_from_log_source("/aws/lambda/billing-worker", "2024/05/20/[$LATEST]abc") == "billing-worker"
    assert function_from_log_source("/fleet/shared", "2026/10/08/tenner-notifier[$LATEST]22be53a8") == "tenner-notifier"
    assert function_from_log_source("/fleet/shared", "2026/10/08/[$LATEST]22be53a8") is None
    events = classify_messages(
        [
            '{"time":"2024-05-20T16:29:44.833Z","type":"platform.initStart","record":{"functionName":"from-platform",'
            '"phase":"init"}}',
            "hello\n",
        ],
        log_group="/fleet/shared",
        log_stream="2024/05/20/[$LATEST]0a1b",
    )
    assert events[0]["function"] == "from-platform"


def test_at_most_one_timeout_oom_cold_start_per_request_across_documents():
    classifier = Classifier()
    events: list = []
    cold_timeout = report(*BASIC, "Init Duration: 100.00 ms", "Status: timeout")
    for _ in range(3):  # the same lines delivered three times (e.g. two subscriptions)
        from helpers import cwl_document

        classifier.classify(cwl_document([cold_timeout]), events, [])
    assert len(of_type(events, "invocation")) == 3
    assert len(of_type(events, "cold_start")) == 1
    assert len(of_type(events, "timeout")) == 1


def test_platform_fields_reads_every_report_field():
    fields = platform_fields(report(*BASIC, "Init Duration: 1.5 ms", "Status: error", "Error Type: Runtime.Unknown"))
    assert fields == {
        "RequestId": REQUEST_ID,
        "Duration": "11.64",
        "Billed Duration": "12",
        "Memory Size": "128",
        "Max Memory Used": "67",
        "Init Duration": "1.5",
        "Status": "error",
        "Error Type": "Runtime.Unknown",
    }


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.text(max_size=300)
        | st.sampled_from(
            [
                START,
                END,
                report(*BASIC),
                "[ERROR] ",
                "{",
                "REPORT RequestId: ",
                "2024-05-20T16:29:45.009Z\t",
                "MONITORING|",
            ]
        ),
        max_size=8,
    ),
    st.text(max_size=40),
)
def test_classifier_never_raises_and_every_event_meets_the_contract(messages, suffix):
    classify_messages([m + suffix for m in messages])


_WHITESPACE = st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x1c", "\x85", "\u2003", "\u3000"])
_START_WORD = st.one_of(
    st.just(REQUEST_ID),
    st.text("0123456789abcdefXYZ-", min_size=30, max_size=40),
    st.builds(lambda i, c: REQUEST_ID[:i] + c + REQUEST_ID[i + 1 :], st.integers(0, 35), st.characters()),
    st.text(max_size=5),
)


@given(
    gap=st.lists(_WHITESPACE, max_size=3).map("".join),
    word=_START_WORD,
    rest=st.lists(st.one_of(_WHITESPACE, st.text("Version: $LATEST", max_size=3)), max_size=4).map("".join),
)
@settings(max_examples=300, deadline=None)
def test_start_opens_the_invocation_of_its_third_word_when_that_is_a_request_id(gap, word, rest):
    line = "START RequestId: " + gap + word + rest
    words = line.split(None, 3)
    expected = words[2] if len(words) > 2 and is_request_id(words[2]) else None
    [log] = classify_messages([line, "raw print() output\n"])
    assert log["request_id"] == expected


@pytest.mark.parametrize(
    "start_record",
    [
        # Lambda's own layout, read without parsing the JSON
        f'{{"time":"2024-05-20T16:29:45.008Z","type":"platform.start","record":{{"requestId":"{REQUEST_ID}","version":"$LATEST"}}}}',
        # the same record in another key order, parsed in full
        f'{{"type":"platform.start","time":"2024-05-20T16:29:45.008Z","record":{{"version":"$LATEST","requestId":"{REQUEST_ID}"}}}}',
    ],
)
def test_platform_start_opens_the_invocation_for_later_lines_whichever_way_it_is_read(start_record):
    events = classify_messages(
        [
            start_record,
            f'{{"time":"2024-05-20T16:29:45.019Z","type":"platform.runtimeDone","record":{{"requestId":"{REQUEST_ID}","status":"success"}}}}',
            "raw print() output\n",
        ]
    )
    [log] = events
    assert log["request_id"] == REQUEST_ID


def test_xray_trace_id_with_tabs_or_spaces_in_either_report_form():
    xray = "XRAY TraceId: 1-636d1462-33ef10600061cad86dab71c8\tSegmentId: 7ccb4860675ee485\tSampled: true\t\n"
    canonical = report(*BASIC, xray=xray)
    with_status = report(*BASIC, "Status: error", "Error Type: Runtime.Unknown", xray=xray)
    spaced = canonical.replace("\t", " ")
    for message in (canonical, canonical.replace(xray, xray.replace("\t", " ")), with_status, spaced):
        [invocation, *_] = classify_messages([message])
        assert invocation["xray_trace_id"] == "1-636d1462-33ef10600061cad86dab71c8", message


# --- the runtime named by INIT_START -------------------------------------------------------------------


def test_invocations_carry_the_runtime_init_start_named_in_their_stream():
    init = "INIT_START Runtime Version: python:3.12.v27\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:fb4a\n"
    events = classify_messages([init, START, report(*BASIC, "Init Duration: 174.06 ms"), END, START, report(*BASIC)])
    assert [event["runtime"] for event in of_type(events, "invocation")] == ["python:3.12.v27"] * 2
    [warm] = of_type(classify_messages([START, report(*BASIC)]), "invocation")
    assert warm["runtime"] is None
    record = (
        '{"time":"2024-05-20T16:29:44.800Z","type":"platform.initStart","record":{"initializationType":"on-demand",'
        '"phase":"init","runtimeVersion":"nodejs:20.v22","functionName":"orders-api","functionVersion":"$LATEST"}}'
    )
    [json_invocation] = of_type(classify_messages([record, START, report(*BASIC)]), "invocation")
    assert json_invocation["runtime"] == "nodejs:20.v22"


@settings(max_examples=60)
@given(st.text(min_size=1, max_size=120).filter(lambda text: "\t" not in text and "\n" not in text))
def test_any_runtime_text_is_kept_only_when_short_printable_ascii(value):
    init = f"INIT_START Runtime Version: {value}\tRuntime Version ARN: arn\n"
    [invocation] = of_type(classify_messages([init, START, report(*BASIC)]), "invocation")
    runtime = invocation["runtime"]
    assert runtime is None or (runtime.isascii() and runtime.isprintable() and len(runtime) <= 64)
