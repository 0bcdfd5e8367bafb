"""Numbers in log lines drawn from their extremes, through every path: nothing raises, every event meets the contract.

Platform lines (text and JSON) and metric lines in every format get each numeric field from
EXTREMES (huge integers, thousands of digits, 1e308, inf, nan, -0, negatives, exponents, junk) and
go through decode -> classify -> router -> every local sink -> report -> Prometheus registry, through
the Lambda handler, `shipper run` and `shipper consume`.
"""

from __future__ import annotations

import gzip
import io
import math
import tempfile
import threading
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from test_consume import consuming, make_consumer

from shipper.checkpoint import FileCheckpoints
from shipper.cli import main
from shipper.config import build_router, merge_cli
from shipper.contract import FIELD_RANGES, contract_violations
from shipper.decode import RawRecord
from shipper.handler import KinesisHandler
from shipper.pipeline import Pipeline
from shipper.report import FleetReport, Prices, render
from shipper.telemetry import Telemetry

from helpers import EXTREMES, REQUEST_ID, classify_messages, cwl_document, gz, kinesis_event, numbers_in
from promstack import wait_for

# Finite values near the float limit: two of them added overflow a sum.
HUGE_FINITE = ("1e308", "-1e308", "1.7976931348623157e308", "9e307", "1e300")
number_text = st.one_of(
    st.sampled_from(EXTREMES),
    st.sampled_from(HUGE_FINITE),
    st.integers().map(str),
    st.floats().map(repr),
    st.integers(min_value=1, max_value=6000).map(lambda digits: "7" * digits),
)

_TIME = '{"time":"2024-05-20T16:29:45.120Z",'
# Each `#` is replaced by a number drawn from `number_text`.
TEMPLATES = (
    f"REPORT RequestId: {REQUEST_ID}\tDuration: # ms\tBilled Duration: # ms\tMemory Size: # MB\t"
    "Max Memory Used: # MB\tInit Duration: # ms\t",
    f"REPORT RequestId: {REQUEST_ID}\tDuration: # ms\tBilled Duration: # ms\tMemory Size: # MB\t"
    "Max Memory Used: # MB\tRestore Duration: # ms\tBilled Restore Duration: # ms\tStatus: error\t"
    "Error Type: Runtime.OutOfMemory\t",
    f"REPORT RequestId: {REQUEST_ID} Duration: # ms Billed Duration: # ms Memory Size: # MB Max Memory Used: # MB "
    "Status: timeout",
    "INIT_REPORT Init Duration: # ms\tPhase: init\tStatus: error\tError Type: Runtime.Unknown",
    "RESTORE_REPORT Restore Duration: # ms\tStatus: timeout",
    f"2024-05-20T16:29:45.120Z {REQUEST_ID} Task timed out after # seconds",
    _TIME + '"type":"platform.report","record":{"requestId":"r1","status":"timeout","metrics":{"durationMs":#,'
    '"billedDurationMs":#,"memorySizeMB":#,"maxMemoryUsedMB":#,"initDurationMs":#,"restoreDurationMs":#,'
    '"billedRestoreDurationMs":#}}}',
    _TIME + '"type":"platform.report","record":{"requestId":"r2","status":"error","errorType":"Runtime.OutOfMemory",'
    '"metrics":{"durationMs":#,"billedDurationMs":#,"memorySizeMB":#,"maxMemoryUsedMB":#}}}',
    _TIME + '"type":"platform.initReport","record":{"phase":"init","status":"error","metrics":{"durationMs":#}}}',
    "page.views:#|c|@#|#env:prod,n:#|T#",
    "hits:#|c",
    "queue.depth:#:#:#|g",
    "api.latency:#|ms|@#",
    "payload.size:#|h|#region:#",
    "visitors:#|s",
    "a.b:#|c\na.c:#|d|@#",
    "MONITORING|#|#|count|orders.placed|#env:#",
    "MONITORING|#|#|distribution|latency",
    '{"m":"orders","v":#,"e":#,"t":["env:#"]}',
    "MONITORING|#|Milliseconds|latency|shop|env=#",
    "MONITORING|#|Gigabytes|heap|shop|env=prod",
    '{"_aws":{"Timestamp":#,"CloudWatchMetrics":[{"Namespace":"Shop","Dimensions":[["D"]],"Metrics":'
    '[{"Name":"M","Unit":"Gigabytes"},{"Name":"C","Unit":"Count"},{"Name":"T","Unit":"Microseconds"}]}]},'
    '"D":"#","M":[#,#],"C":#,"T":#}',
    "[INFO]\t2024-05-20T16:29:45.120Z\tr6\tMONITORING|#|#|gauge|g.y",
    "2024-05-20T16:29:45.120Z\tr7\tINFO\tq.z:#|c|@#",
)


@st.composite
def extreme_line(draw: st.DrawFn) -> str:
    parts = draw(st.sampled_from(TEMPLATES)).split("#")
    numbers = [draw(number_text) for _ in parts[1:]]
    return parts[0] + "".join(number + part for number, part in zip(numbers, parts[1:], strict=True))


# Each line twice: a metric's values are added up, and a repeated REPORT line is a duplicate invocation.
lines = st.lists(extreme_line(), min_size=1, max_size=4).map(lambda drawn: drawn + drawn)
timestamps = st.one_of(
    st.just(1716222585000),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 253402300800000, -62135596800001]),
)


def assert_meets_contract(events: list[dict[str, Any]]) -> None:
    problems = [problem for event in events for problem in contract_violations(event)]
    assert problems == []


def document(messages: list[str], start_ms: int = 1716222585000, **options: Any) -> dict[str, Any]:
    """A DATA_MESSAGE of `messages` inside an invocation (after its START line)."""
    messages = [f"START RequestId: {REQUEST_ID} Version: $LATEST", *messages]
    return cwl_document(messages, start_ms=start_ms, **options)


def read_ndjson(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines()]


def report_and_registry(events: list[dict[str, Any]]) -> None:
    """The run report (JSON and table) and the Prometheus exposition of `events`, each readable."""
    report = FleetReport()
    report.add(events)
    data = report.to_dict(Prices())
    assert all(math.isfinite(number) for number in numbers_in(data))
    orjson.loads(orjson.dumps(data))
    render(data, Console(file=io.StringIO(), width=200))
    telemetry = Telemetry()
    telemetry.observe_events(events)
    assert_exposition_is_finite(telemetry)


def assert_exposition_is_finite(telemetry: Telemetry) -> None:
    """The registry's exposition parses, and no sample (bucket bounds aside) is an infinity or NaN."""
    families = list(text_string_to_metric_families(generate_latest(telemetry.registry).decode()))
    assert families
    assert [s for family in families for s in family.samples if not math.isfinite(s.value)] == []


@settings(max_examples=100, deadline=None)
@given(lines, timestamps)
def test_every_local_sink_the_report_and_the_registry_take_extreme_numbers(messages, start_ms):
    pipeline = Pipeline()
    outcomes = pipeline.process_records([RawRecord(gz(document(messages, start_ms)), "1", "test")])
    events = [event for outcome in outcomes for event in outcome.events]
    assert_meets_contract(events)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        sinks = [
            "null",
            "stdout",
            f"jsonl:{out / 'e.ndjson'}",
            f"jsonl:{out / 'e.ndjson.gz'} name=gz",
            f"dir:{out / 'dir'}",
        ]
        router = build_router(merge_cli(None, sinks=sinks, dead_letter=f"dir:{out / 'dead'}"))
        report = router.deliver([(outcome.origin, [*outcome.events, *outcome.rejects]) for outcome in outcomes])
        router.close()
        assert set(report.statuses.values()) <= {"delivered", "dead_lettered"}
        written = read_ndjson((out / "e.ndjson").read_bytes())
        assert read_ndjson(gzip.decompress((out / "e.ndjson.gz").read_bytes())) == written
        assert [e for path in sorted((out / "dir").glob("*.ndjson")) for e in read_ndjson(path.read_bytes())] == written
        assert len(written) == len(events)
        assert_meets_contract(written)
    report_and_registry(events)


class Context:
    aws_request_id = "8f6c4d1e-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@settings(max_examples=25, deadline=None)
@given(st.lists(lines, min_size=1, max_size=3))
def test_the_lambda_handler_ships_every_record_of_extreme_numbers(records):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        handler = KinesisHandler.from_env(
            {
                "SHIPPER_SINKS": f"jsonl:{out / 'e.ndjson'}",
                "SHIPPER_DEAD_LETTER": f"dir:{out / 'dead'}",
                "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/log-shipper",
            }
        )
        response = handler(kinesis_event([gz(document(messages)) for messages in records]), Context())
        assert response == {"batchItemFailures": []}
        shipped = read_ndjson((out / "e.ndjson").read_bytes())
        assert shipped and not list(out.glob("dead/*"))
        assert_meets_contract(shipped)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines, lines)
def test_shipper_run_reads_every_file_of_extreme_numbers_and_reports(tmp_path, capsys, first, second):
    paths = []
    for index, messages in enumerate((first, second)):
        path = tmp_path / f"in-{index}.json.gz"
        path.write_bytes(gz(document(messages, log_stream=f"stream-{index}")))
        paths.append(str(path))
    output, report = tmp_path / "events.ndjson", tmp_path / "report.json"
    output.unlink(missing_ok=True)
    capsys.readouterr()
    status = main(["run", *paths, "--sink", f"jsonl:{output}", "--report", str(report)])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    shipped = read_ndjson(output.read_bytes())
    assert_meets_contract(shipped)
    data = orjson.loads(report.read_bytes())
    # Both files were read to their end (a signal in the second may repeat one of the first: shipped once).
    assert data["run"]["inputs"] == 2 and data["run"]["log_events"] == len(first) + len(second) + 2  # + START lines
    assert all(math.isfinite(number) for number in numbers_in(data))
    assert "Cost: billed GB-seconds" in printed.out + printed.err  # the report was printed to the end


@pytest.fixture
def kinesis(aws: str) -> Any:
    return boto3.client("kinesis", endpoint_url=aws)


def test_shipper_consume_moves_past_records_of_extreme_numbers(aws, kinesis, tmp_path):
    stream = "central-logs"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    records = [
        [template.replace("#", number) for template in TEMPLATES]
        for number in ("1" + "0" * 26, "9" * 5000, "inf", "1e308", "-1", "nan")
    ]
    last = None
    for messages in records:
        last = kinesis.put_record(StreamName=stream, Data=gz(document(messages)), PartitionKey="k")["SequenceNumber"]
    output = tmp_path / "events.ndjson"
    stop = threading.Event()
    checkpoints = FileCheckpoints(tmp_path / "cp", stream)
    consumer = make_consumer(aws, [f"jsonl:{output}"], checkpoints, stop)
    with consuming(consumer, stop):
        wait_for(lambda: checkpoints.load() == {"shardId-000000000000": last}, "the checkpoint at the last record")
    shipped = read_ndjson(output.read_bytes())
    assert len({e["event_id"] for e in shipped}) >= len(records)
    assert_meets_contract(shipped)
    assert_exposition_is_finite(consumer.telemetry)


@pytest.mark.parametrize("field", sorted(FIELD_RANGES))
def test_the_contract_refuses_a_number_outside_its_range(field):
    [event] = [e for e in classify_messages([VALID_LINES[field]]) if field in e]
    assert contract_violations(event) == []
    bounds = FIELD_RANGES[field]
    for value in (math.inf, -math.inf, math.nan, bounds.high * 2 + 1, bounds.low * 2 - 1):
        assert contract_violations(event | {field: value}) != [], value
    assert contract_violations(event | {field: 10**5000}) != []


VALID_LINES = {
    "timestamp": "order placed",
    "duration_ms": f"REPORT RequestId: {REQUEST_ID}\tDuration: 1.5 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
    "Max Memory Used: 64 MB\t",
    "timeout_s": f"2024-05-20T16:29:45.120Z {REQUEST_ID} Task timed out after 3.00 seconds",
    "value": "hits:1|c|@0.5",
}
for _name in ("billed_duration_ms", "memory_size_mb", "max_memory_used_mb"):
    VALID_LINES[_name] = VALID_LINES["duration_ms"]
for _name in ("init_duration_ms", "restore_duration_ms", "billed_restore_duration_ms"):
    VALID_LINES[_name] = VALID_LINES["duration_ms"]
VALID_LINES["sample_rate"] = VALID_LINES["value"]
