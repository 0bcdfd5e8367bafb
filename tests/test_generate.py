"""Tests for examples/generate.py.

The records are decoded here with the standard library only (base64, gzip, json, a few lines of protobuf for the KPL
aggregates) and counted independently of the generator, then compared with the generator's ground truth.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import generate

ROOT = Path(__file__).resolve().parents[1]
KPL_MAGIC = bytes.fromhex("f3899ac2")


# --- decoding, independent of the generator ------------------------------------------------------------------------


def varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        shift += 7
        if byte < 0x80:
            return value, i


def proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message holding varint and length-delimited fields only."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        if key & 7 == 0:
            value, i = varint(buf, i)
            yield key >> 3, value
        else:
            assert key & 7 == 2, f"unexpected wire type {key & 7}"
            size, i = varint(buf, i)
            yield key >> 3, buf[i : i + size]
            i += size


def kpl_user_records(raw: bytes) -> list[bytes]:
    """The data of every user record in a KPL aggregate, after checking its MD5."""
    body, digest = raw[4:-16], raw[-16:]
    assert hashlib.md5(body).digest() == digest
    records = [value for number, value in proto_fields(body) if number == 3]
    return [value for record in records for number, value in proto_fields(record) if number == 3]  # type: ignore[arg-type]


@dataclass
class Decoded:
    """Everything inside a list of Lambda Kinesis events."""

    records: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    kpl_records: int = 0
    kpl_user_records: int = 0


def decode(events: list[dict[str, Any]]) -> Decoded:
    out = Decoded()
    for event in events:
        for record in event["Records"]:
            out.records.append(record)
            raw = base64.b64decode(record["kinesis"]["data"])
            if raw[:4] == KPL_MAGIC:
                out.kpl_records += 1
                payloads = kpl_user_records(raw)
                out.kpl_user_records += len(payloads)
            else:
                payloads = [raw]
            for payload in payloads:
                assert payload[:4] == b"\x1f\x8b\x08\x00" and payload[4:8] == b"\0\0\0\0"  # gzip, mtime 0
                out.documents.append(json.loads(gzip.decompress(payload)))
    return out


def decode_awslogs(event: dict[str, Any]) -> dict[str, Any]:
    return json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))


def function_of(doc: dict[str, Any]) -> str:
    if doc["logGroup"].startswith("/aws/lambda/"):
        return doc["logGroup"].removeprefix("/aws/lambda/")
    match = re.match(r"\d{4}/\d\d/\d\d/(.+)\[", doc["logStream"])
    assert match, doc["logStream"]
    return match.group(1)


def messages(docs: list[dict[str, Any]]) -> list[str]:
    return [event["message"] for doc in docs if doc["messageType"] == "DATA_MESSAGE" for event in doc["logEvents"]]


# --- an independent count of what the decoded messages show --------------------------------------------------------

PLATFORM_PREFIXES = (
    "START RequestId: ",
    "END RequestId: ",
    "REPORT RequestId: ",
    "INIT_START ",
    "INIT_REPORT ",
    "RESTORE_START ",
    "RESTORE_REPORT ",
    "EXTENSION\t",
    "TELEMETRY\t",
    "RequestId: ",
)
TIMED_OUT = re.compile(r"\S+Z \S+ Task timed out after [\d.]+ seconds\n")
NODE_INFO = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z\t[\w-]+\tINFO\t")
STATSD = re.compile(r"[\w.-]+:([-+]?[\d.]+(?::[\d.]+)*)\|(?:c|ms|g|s|h|d)(?:\|[^\n]*)?\n")
THROTTLE = re.compile(
    r"\b(?:ProvisionedThroughputExceededException|ThrottlingException|TooManyRequestsException|SlowDown)\b"
)


def platform_record(message: str) -> dict[str, Any] | None:
    if not message.startswith('{"time"'):
        return None
    doc = json.loads(message)
    return doc if doc["type"].startswith("platform.") else None


def metric_values(message: str) -> int | None:
    """Number of metric values a metric line carries, None for other lines."""
    body = message[NODE_INFO.match(message).end() :] if NODE_INFO.match(message) else message
    if body.startswith(("MONITORING|", '{"m":')):
        return 1
    if body.startswith('{"_aws":'):
        doc = json.loads(body)
        names = [m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
        return sum(len(doc[n]) if isinstance(doc[n], list) else 1 for n in names)
    match = STATSD.fullmatch(body)
    return len(match.group(1).split(":")) if match else None


def report_fields(line: str) -> dict[str, str]:
    """Key/value pairs of a REPORT or INIT_REPORT first line, tab- or space-separated."""
    fields = {}
    for part in re.split(r"\t| {2,}", line):
        if ": " in part:
            key, value = part.split(": ", 1)
            fields[key.removeprefix("REPORT ").removeprefix("INIT_REPORT ")] = value.split()[0] if value.split() else ""
    return fields


def count_invocation(counts: Counter[str], durations: list[float], status: str, error_type: str | None) -> None:
    counts["invocations"] += 1
    if status == "timeout":
        counts["timeouts"] += 1
    elif error_type == "Runtime.OutOfMemory":
        counts["out_of_memory"] += 1
    elif status == "error":
        counts["errors"] += 1


def observe(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-function counters, durations and memory sizes as the decoded messages show them."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, list[float]] = defaultdict(list)
    memory: dict[str, set[int]] = defaultdict(set)
    for doc in docs:
        if doc["messageType"] != "DATA_MESSAGE":
            continue
        name = function_of(doc)
        c = counts[name]
        for event in doc["logEvents"]:
            message = event["message"]
            record = platform_record(message)
            if record is not None:
                c["platform_lines"] += 1
                body = record["record"]
                if record["type"] == "platform.report":
                    count_invocation(c, durations[name], body["status"], body.get("errorType"))
                    metrics = body["metrics"]
                    c["cold_starts"] += "initDurationMs" in metrics or "restoreDurationMs" in metrics
                    durations[name].append(metrics["durationMs"])
                    memory[name].add(metrics["memorySizeMB"])
                elif record["type"] == "platform.initReport" and body["status"] != "success":
                    c["init_errors"] += 1
                continue
            if message.startswith(PLATFORM_PREFIXES) or TIMED_OUT.match(message):
                c["platform_lines"] += 1
                first = message.split("\n", 1)[0]
                fields = report_fields(first)
                if first.startswith("REPORT "):
                    count_invocation(c, durations[name], fields.get("Status", "success"), fields.get("Error Type"))
                    c["cold_starts"] += "Init Duration" in fields or "Restore Duration" in fields
                    durations[name].append(float(fields["Duration"]))
                    memory[name].add(int(fields["Memory Size"]))
                elif first.startswith("INIT_REPORT ") and fields.get("Status", "success") != "success":
                    c["init_errors"] += 1
                continue
            values = metric_values(message)
            if values is not None:
                c["metric_lines"] += 1
                c["metric_values"] += values
                continue
            c["log_lines"] += 1
            c["throttles"] += bool(THROTTLE.search(message))
    return {name: {**counts[name], "durations_ms": durations[name], "memory": memory[name]} for name in counts}


def assert_truth_matches(truth: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    observed = observe(docs)
    assert sorted(observed) == sorted(truth["functions"])
    for name, expected in truth["functions"].items():
        got = observed[name]
        for key in generate.COUNTERS:
            assert got.get(key, 0) == expected[key], (name, key)
        assert sorted(got["durations_ms"]) == sorted(expected["durations_ms"]), name
        assert got["memory"] == {expected["memory_size_mb"]}, name
    for key in generate.COUNTERS:
        assert truth[key] == sum(f[key] for f in truth["functions"].values()), key
    assert truth["log_events"] == len(messages(docs))
    assert truth["log_events"] == sum(truth[k] for k in ("platform_lines", "log_lines", "metric_lines"))


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> Any:
    return generate.build_corpus(20_000, seed=7)


@pytest.fixture(scope="module")
def decoded(corpus: Any) -> Decoded:
    return decode(corpus.kinesis_events)


# --- determinism ---------------------------------------------------------------------------------------------------


def test_same_arguments_same_bytes(tmp_path: Path) -> None:
    first = generate.write_sample(str(tmp_path / "a"), 3000, seed=3)
    second = generate.write_sample(str(tmp_path / "b"), 3000, seed=3)
    assert [Path(p).name for p in first] == [Path(p).name for p in second]
    assert [Path(p).read_bytes() for p in first] == [Path(p).read_bytes() for p in second]
    other = generate.write_sample(str(tmp_path / "c"), 3000, seed=4)
    assert Path(first[0]).read_bytes() != Path(other[0]).read_bytes()


def test_build_corpus_is_deterministic() -> None:
    a, b = generate.build_corpus(2000, seed=11), generate.build_corpus(2000, seed=11)
    assert json.dumps(a.kinesis_events) == json.dumps(b.kinesis_events)
    assert a.truth == b.truth and a.awslogs_event == b.awslogs_event


def test_rewriting_a_sample_removes_stale_event_files(tmp_path: Path) -> None:
    big = generate.write_sample(str(tmp_path), 12_000)
    small = generate.write_sample(str(tmp_path), 500)
    assert len(big) > len(small)
    assert sorted(str(p) for p in tmp_path.iterdir()) == sorted(small)


# --- the wire formats ----------------------------------------------------------------------------------------------


def test_kinesis_envelopes(corpus: Any, decoded: Decoded) -> None:
    last_sequence: dict[str, int] = {}
    last_arrival: dict[str, float] = {}
    for event in corpus.kinesis_events:
        records = event["Records"]
        assert 1 <= len(records) <= 100
        shards = {record["eventID"].split(":")[0] for record in records}
        assert len(shards) == 1, "a Lambda Kinesis event comes from one shard"
        shard = shards.pop()
        for record in records:
            kinesis = record["kinesis"]
            assert list(record) == [
                "kinesis",
                "eventSource",
                "eventVersion",
                "eventID",
                "eventName",
                "invokeIdentityArn",
                "awsRegion",
                "eventSourceARN",
            ]
            assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
            assert record["eventSourceARN"].startswith("arn:aws:kinesis:") and ":stream/" in record["eventSourceARN"]
            assert re.fullmatch(r"[0-9a-f]{32}", kinesis["partitionKey"])
            assert re.fullmatch(r"\d{56}", kinesis["sequenceNumber"])
            assert record["eventID"] == f"{shard}:{kinesis['sequenceNumber']}"
            assert int(kinesis["sequenceNumber"]) > last_sequence.get(shard, 0)
            assert isinstance(kinesis["approximateArrivalTimestamp"], float)
            assert kinesis["approximateArrivalTimestamp"] >= last_arrival.get(shard, 0.0)
            assert kinesis["data"].startswith(("H4sIAAAAAAACA", "84mawg"))
            last_sequence[shard] = int(kinesis["sequenceNumber"])
            last_arrival[shard] = kinesis["approximateArrivalTimestamp"]
    assert len(last_sequence) == 2
    assert Counter(len(e["Records"]) for e in corpus.kinesis_events).most_common(1)[0][0] == 100


def test_cloudwatch_documents(decoded: Decoded) -> None:
    seen_ids = set()
    for doc in decoded.documents:
        assert list(doc)[:6] == ["messageType", "owner", "logGroup", "logStream", "subscriptionFilters", "logEvents"]
        if doc["messageType"] == "CONTROL_MESSAGE":
            assert doc["owner"] == "CloudwatchLogs" and doc["logEvents"][0]["id"] == ""
            continue
        assert doc["messageType"] == "DATA_MESSAGE"
        assert re.fullmatch(r"\d{12}", doc["owner"])
        events = doc["logEvents"]
        assert 5 <= len(events) <= 100
        ids = [int(e["id"]) for e in events]
        assert all(re.fullmatch(r"\d{56}", e["id"]) for e in events)
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all(int(e["id"]) >> 144 == e["timestamp"] for e in events)
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps)
        seen_ids.update((doc["logGroup"], doc["logStream"], e["id"]) for e in events)
        if doc.get("policyLevel"):
            assert doc["policyLevel"] == "ACCOUNT_LEVEL_POLICY" and list(doc)[-1] == "policyLevel"
    assert len(seen_ids) == len(messages(decoded.documents)), "event ids are unique per stream"


def test_delivery_variants_present(decoded: Decoded) -> None:
    data = [d for d in decoded.documents if d["messageType"] == "DATA_MESSAGE"]
    assert any(d["messageType"] == "CONTROL_MESSAGE" for d in decoded.documents)
    assert any("policyLevel" in d for d in data) and any("policyLevel" not in d for d in data)
    assert decoded.kpl_records >= 1 and decoded.kpl_user_records >= 2
    custom = {function_of(d) for d in data if d["logGroup"] == "/fleet/shared-logs"}
    assert len(custom) >= 2, "several functions share the custom log group"
    for doc in data:
        if doc["logGroup"].startswith("/aws/lambda/"):
            assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[(\$LATEST|\d+)\][0-9a-f]{32}", doc["logStream"])
        else:
            assert re.fullmatch(r"\d{4}/\d\d/\d\d/[a-z-]+\[\$LATEST\][0-9a-f]{32}", doc["logStream"])
    assert len({d["owner"] for d in data}) >= 2, "a cross-account sender is mixed in"


ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
SHAPES = {
    # runtime line formats
    "python text": rf"\[INFO\]\t{ISO}\t{UUID}\t[^\n]+\n",
    "python text, outside an invocation": rf"\[INFO\]\t{ISO}\t\t[^\n]+\n",
    "python print": r"handler start: \d+ records\n",
    "node text": rf"{ISO}\t{UUID}\t(INFO|DEBUG|WARN|ERROR)\t[^\n]+\n",
    "node text, init": rf"{ISO}\tundefined\tINFO\t[^\n]+\n",
    "python json": r'\{"timestamp": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "level": "INFO", "message": .+\}',
    "node json": rf'\{{"timestamp":"{ISO}","level":"INFO","requestId":"{UUID}","message":.+\}}',
    "node json, object message": r'\{"timestamp":[^{]+"message":\{.+\}\}',
    "java log4j": rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {UUID} INFO  LedgerHandler - [^\n]+\n",
    # platform lines
    "INIT_START": r"INIT_START Runtime Version: [a-z]+:[\w.]+\tRuntime Version ARN: arn:aws:lambda:[\w-]+::runtime:[0-9a-f]{64}\n",
    "EXTENSION": r"EXTENSION\tName: \S+\tState: Ready\tEvents: \[[A-Z, ]+\]\n",
    "TELEMETRY": r"TELEMETRY\tName: \S+\tState: Subscribed\tTypes: \[[A-Za-z, ]+\]\n",
    "START": rf"START RequestId: {UUID} Version: \$LATEST\n",
    "END": rf"END RequestId: {UUID}\n",
    "REPORT cold with XRAY": rf"REPORT RequestId: {UUID}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: \d+ MB"
    r"\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms\t\nXRAY TraceId: 1-[0-9a-f]{8}-[0-9a-f]{24}\t"
    r"SegmentId: [0-9a-f]{16}\tSampled: (true|false)\t\n",
    "REPORT warm": r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: \d+ MB"
    r"\tMax Memory Used: \d+ MB\t\n",
    "REPORT old spacing": r"REPORT .*\tBilled Duration: \d*00 ms \tMemory Size: .*\n",
    "REPORT tabs as spaces": rf"REPORT RequestId: {UUID} {{4}}Duration: [\d.]+ ms {{4}}Billed Duration: [^\t]+",
    "RESTORE_START": r"RESTORE_START Runtime Version: java:[\w.]+\tRuntime Version ARN: \S+\n",
    "RESTORE_REPORT": r"RESTORE_REPORT Restore Duration: \d+\.\d\d ms\n",
    "START SnapStart version": rf"START RequestId: {UUID} Version: \d+\n",
    "REPORT SnapStart": r"REPORT .*\tRestore Duration: \d+\.\d\d ms\tBilled Restore Duration: \d+ ms\t(\n|Status).*",
    # failures
    "timeout line": rf"{ISO} {UUID} Task timed out after \d+\.\d\d seconds\n\n",
    "REPORT timeout": r"REPORT .*\tStatus: timeout\n(XRAY .*)?",
    "REPORT out of memory": r"REPORT .*\tMax Memory Used: (\d+) MB\tStatus: error\tError Type: Runtime.OutOfMemory\n(XRAY .*)?",
    "runtime killed": rf"RequestId: {UUID} Error: Runtime exited with error: signal: killed\nRuntime.ExitError\n",
    "runtime exit": rf"RequestId: {UUID} Error: Runtime exited with error: exit status \d+\nRuntime.ExitError\n",
    "python MemoryError": r"\[ERROR\] MemoryError\nTraceback \(most recent call last\):\n\u00a0\u00a0File .*",
    "node heap": r"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n",
    "LAMBDA_WARNING": rf"\[WARNING\]\t{ISO}\t\tLAMBDA_WARNING: Unhandled exception\. .*\n",
    "python unhandled": r"\[ERROR\] KeyError: 'order_id'\nTraceback \(most recent call last\):\n"
    r"\u00a0\u00a0File \"/var/task/app.py\", line \d+, in handler\n\u00a0{4}order = event\['order_id'\]\n",
    "node Invoke Error": rf"{ISO}\t{UUID}\tERROR\tInvoke Error \t\{{\"errorType\":\"\w+\",\"errorMessage\".*\}}\n",
    "node Unhandled Promise Rejection": rf"{ISO}\t{UUID}\tERROR\tUnhandled Promise Rejection \t\{{.*\}}\n",
    "python json unhandled": r'\{"timestamp": "[^"]+", "log_level": "ERROR", "errorMessage": .*"stackTrace": \[.*\]\}',
    "REPORT error": r"REPORT .*\tStatus: error\tError Type: (KeyError|ValueError|TypeError|Error)\n(XRAY .*)?",
    "init error, init phase": r"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: init\tStatus: error\tError Type: \S+\n",
    "init timeout, init phase": r"INIT_REPORT Init Duration: 100\d\d\.\d\d ms\tPhase: init\tStatus: timeout\n",
    "init failure, invoke phase": r"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: invoke\tStatus: (error|timeout).*\n",
    "python init failure": r"\[ERROR\] Runtime.ImportModuleError: Unable to import module .*\nTraceback .*\n",
    "node init failure": rf"{ISO}\tundefined\tERROR\tUncaught Exception \t\{{\"errorType\":\"Runtime.ImportModuleError\".*\n",
    # throttling and decoys
    "botocore kinesis throttle": r"\[ERROR\]\t.*\nTraceback .*botocore.errorfactory.ProvisionedThroughputExceededException: "
    r"An error occurred \(ProvisionedThroughputExceededException\) when calling the PutRecord operation "
    r"\(reached max retries: 4\): Rate exceeded for shard shardId-\d{12} in stream \S+ under account \d{12}\.",
    "node ThrottlingException": rf"{ISO}\t{UUID}\tERROR\tThrottlingException: Rate exceeded\n    at .*\n",
    "S3 SlowDown": r".*An error occurred \(SlowDown\) when calling the PutObject operation.*\n",
    "TooManyRequestsException": r".*TooManyRequestsException.*",
    "decoy timed out": r".*request to upstream timed out, retrying.*",
    "decoy throttle": r".*we throttle uploads to 5/s.*",
    "decoy memory": r".*CustomMemoryErrorHandler registered.*",
    # custom metrics
    "statsd count": r"[\w.]+:\d+\|c\n",
    "statsd sampled timer": r"[\w.]+:\d+\|ms\|@0\.1\n",
    "statsd gauge delta": r"[\w.]+:[-+]\d+\|g\n",
    "statsd set": r"[\w.]+:\d+\|s\n",
    "dogstatsd tags": r"[\w.-]+:\d+\|c\|#env:prod,service:[\w-]+\n",
    "dogstatsd packed, bare tag": r"[\w.-]+:\d+(:\d+)+\|h\|@0\.5\|#env:prod,canary\n",
    "dogstatsd container and timestamp": r"[\w.-]+:[\d.]+\|d\|#env:prod\|c:ci-[0-9a-f]{8}\|T\d{10}\n",
    "datadog MONITORING": r"MONITORING\|\d{10}\|[\d.]+\|(count|gauge|histogram)\|[\w.-]+\|#env:prod,service:[\w-]+\n",
    "datadog json": r'\{"m":"[\w.-]+","v":\d+,"e":\d{10},"t":\["env:prod",.*\]\}\n',
    "lumigo bare": r"MONITORING\|[\d.]+\|(Count|Milliseconds)\|\w+\|[\w.]+\|service=[\w-]+,region=[\w-]+\n",
    "lumigo after node prefix": rf"{ISO}\t{UUID}\tINFO\tMONITORING\|[\d.]+\|(Count|Milliseconds)\|.*\n",
    "emf bare with array": r'\{"_aws":\{"Timestamp":\d{13},.*"Dimensions":\[\["Service","Operation"\],\["Service"\]\].*'
    r'"Latency":\[[\d.,]+\].*\}\n',
    "emf after node prefix": rf'{ISO}\t{UUID}\tINFO\t\{{"_aws":.*\}}\n',
}
JSON_PLATFORM_SHAPES = {
    ("platform.initStart", "init"),
    ("platform.initStart", "invoke"),
    ("platform.extension", None),
    ("platform.telemetrySubscription", None),
    ("platform.initReport", "success"),
    ("platform.initReport", "error"),
    ("platform.initReport", "timeout"),
    ("platform.start", None),
    ("platform.runtimeDone", "success"),
    ("platform.report", "success"),
    ("platform.report", "timeout"),
    ("platform.report", "error"),
}


def test_every_shape_is_present(decoded: Decoded) -> None:
    texts = messages(decoded.documents)
    missing = [name for name, shape in SHAPES.items() if not any(re.fullmatch(shape, t, re.DOTALL) for t in texts)]
    assert not missing, missing
    oom = [re.fullmatch(SHAPES["REPORT out of memory"], t, re.DOTALL) for t in texts]
    assert all(f"Memory Size: {m.group(1)} MB" in m.group(0) for m in oom if m), "OOM uses all the memory"
    seen = set()
    for text in texts:
        record = platform_record(text)
        if record:
            body = record["record"]
            seen.add(
                (record["type"], body.get("phase") if record["type"] == "platform.initStart" else body.get("status"))
            )
            if record["type"] == "platform.report" and body["status"] == "error":
                seen.add(("platform.report errorType", body["errorType"]))
    assert seen >= JSON_PLATFORM_SHAPES, JSON_PLATFORM_SHAPES - seen
    assert ("platform.report errorType", "Runtime.OutOfMemory") in seen


def test_decoys_are_not_throttles(decoded: Decoded) -> None:
    for text in messages(decoded.documents):
        if "throttle uploads" in text or "CustomMemoryErrorHandler" in text or "timed out, retrying" in text:
            assert not THROTTLE.search(text) and "Task timed out" not in text


# --- ground truth ----------------------------------------------------------------------------------------------------


def test_truth_matches_decoded_records(corpus: Any, decoded: Decoded) -> None:
    truth = corpus.truth
    assert_truth_matches(truth, decoded.documents)
    data = [d for d in decoded.documents if d["messageType"] == "DATA_MESSAGE"]
    assert truth["data_messages"] == len(data)
    assert truth["records"] == len(decoded.records)
    assert truth["control_messages"] == len(decoded.documents) - len(data)
    assert truth["kpl_records"] == decoded.kpl_records
    assert truth["kpl_user_records"] == decoded.kpl_user_records
    assert truth["log_events"] >= 20_000


def test_truth_rates_are_realistic(corpus: Any) -> None:
    truth = corpus.truth
    invocations = truth["invocations"]
    assert 0.01 < truth["cold_starts"] / invocations < 0.12
    for signal in ("timeouts", "out_of_memory", "errors"):
        assert 0 < truth[signal] / invocations < 0.05, signal
    assert 0 < truth["throttles"] / truth["log_lines"] < 0.05
    assert len(truth["functions"]) >= 6


def test_awslogs_event_and_its_truth(corpus: Any) -> None:
    doc = decode_awslogs(corpus.awslogs_event)
    assert doc["messageType"] == "DATA_MESSAGE"
    assert_truth_matches(corpus.awslogs_truth, [doc])
    merged = corpus.sample_truth
    assert merged["log_events"] == corpus.truth["log_events"] + corpus.awslogs_truth["log_events"]
    name = function_of(doc)
    assert merged["functions"][name]["invocations"] == (
        corpus.truth["functions"][name]["invocations"] + corpus.awslogs_truth["functions"][name]["invocations"]
    )


def test_sample_directory_matches_sample_truth(tmp_path: Path) -> None:
    paths = [Path(p) for p in generate.write_sample(str(tmp_path), 3000, seed=1)]
    assert sum(p.stat().st_size for p in paths) < 1_500_000
    events = [json.loads(p.read_bytes()) for p in paths]
    kinesis = [e for e in events if "Records" in e]
    direct = [e for e in events if "awslogs" in e]
    assert len(direct) == 1 and len(kinesis) == len(events) - 1
    docs = [*decode(kinesis).documents, decode_awslogs(direct[0])]
    assert_truth_matches(generate.build_corpus(3000, seed=1).sample_truth, docs)


def test_bundled_sample_is_current(tmp_path: Path) -> None:
    """examples/sample is what `make sample` writes; regenerate it after changing the generator."""
    bundled = ROOT / "examples" / "sample"
    fresh = [Path(p) for p in generate.write_sample(str(tmp_path), 3000, seed=1)]
    assert sorted(p.name for p in bundled.glob("*.json")) == sorted(p.name for p in fresh)
    for path in fresh:
        assert (bundled / path.name).read_bytes() == path.read_bytes(), path.name


def test_build_time_for_200k_events() -> None:
    started = time.perf_counter()
    corpus = generate.build_corpus(200_000)
    elapsed = time.perf_counter() - started
    records = sum(len(e["Records"]) for e in corpus.kinesis_events)
    print(f"\nbuild_corpus(200_000): {elapsed:.2f} s, {corpus.truth['log_events']} log events, {records} records")
    assert corpus.truth["log_events"] >= 200_000
    assert records == corpus.truth["records"]
    assert elapsed < 20
