"""Deterministic generator of realistic shipper input, with its ground truth.

A small fleet of Lambda functions (Python and Node TEXT and JSON log formats, a Java SnapStart
function, two functions sharing a custom log group) writes invocations into log streams; the log
streams are cut into CloudWatch Logs subscription batches, gzip'd into Kinesis records and grouped
into Lambda Kinesis events, all following reference/formats.md. Every count in the
ground truth is recorded while generating, never by parsing the output.

    python examples/generate.py DIR [--events N] [--seed S]

Same arguments, same bytes: one seeded random.Random drives everything and gzip runs with mtime=0.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import math
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Any

import orjson
from aws_kinesis_agg.aggregator import RecordAggregator

BASE_MS = 1716220800000  # 2024-05-20T16:00:00Z, where every corpus starts
REGION = "us-east-1"
ACCOUNT = "123456789012"
SHIPPER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/log-shipper-role"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/central-logs"
SHARDS = ("shardId-000000000000", "shardId-000000000001")
BATCH_SIZE = 100  # records per Lambda Kinesis event (the ESM default)
GROUP_FILTER = "central-logs-to-kinesis"
ACCOUNT_POLICY = "CentralLogsPolicy"
CONTROL_TEXT = "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."

PLATFORM, LOG, METRIC = "platform", "log", "metric"
COUNTERS = (
    "invocations",
    "cold_starts",
    "timeouts",
    "out_of_memory",
    "errors",
    "init_errors",
    "throttles",
    "metric_values",
    "metric_lines",
    "log_lines",
    "platform_lines",
)

# Invocation outcomes and their weights; each function lists the ones it can show.
SCENARIO_WEIGHTS = {
    "ok": 0.976,
    "ok_legacy_report": 0.005,
    "ok_spaced_report": 0.005,
    "timeout": 0.004,
    "oom_killed": 0.002,
    "oom_runtime": 0.002,
    "unhandled": 0.006,
    "unhandled_throttle": 0.002,
    "exit": 0.001,
}
FATAL = frozenset({"timeout", "oom_killed", "oom_runtime", "exit"})  # the environment is gone afterwards
INIT_FAILURE_RATE = 0.005  # per new log stream, for each init failure kind the function can show

LAMBDA_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare "
    "cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, "
    "check the runtime version in the INIT_START log entry to see whether it changed."
)
V8_OOM = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"
NBSP = "\u00a0"

DECOYS = (
    ("WARN", "request to upstream timed out, retrying in {ms} ms"),
    ("INFO", "we throttle uploads to 5/s per tenant"),
    ("INFO", "CustomMemoryErrorHandler registered"),
    ("WARN", "partner API timed out after {ms} ms, serving cached response"),
    ("DEBUG", "memory pressure low: {ms} MB in use"),
)


def iso_ms(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and Z, as Node's toISOString and the Python TEXT formatter write it."""
    seconds, frac = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{frac:03d}Z"


def iso_s(ms: int) -> str:
    """ISO-8601 UTC without milliseconds, as the Python JSON formatter writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def hex_id(rng: Random, bits: int = 128) -> str:
    """Random lowercase hex of bits/4 digits."""
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def request_id(rng: Random) -> str:
    """A version-4 UUID string, like Lambda request ids."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def compact(obj: Any) -> str:
    """Compact JSON (JSON.stringify, Lambda platform records)."""
    return orjson.dumps(obj).decode()


PLACEHOLDERS: dict[str, Callable[[Random], str]] = {
    "n": lambda rng: str(rng.randint(1, 48)),
    "ms": lambda rng: str(rng.randint(2, 950)),
    "ref": lambda rng: f"{rng.getrandbits(24):06x}",
    "amount": lambda rng: f"{rng.randint(100, 99999) / 100:.2f}",
}


class Placeholders(dict[str, str]):
    """Values for a message template, drawn only for the placeholders it uses."""

    def __init__(self, rng: Random) -> None:
        super().__init__()
        self.rng = rng

    def __missing__(self, key: str) -> str:
        return PLACEHOLDERS[key](self.rng)


def fill(rng: Random, template: str) -> str:
    """Fill a message template's placeholders ({n}, {ms}, {ref}, {amount}) with plausible random values."""
    return template.format_map(Placeholders(rng))


def python_traceback(frames: tuple[tuple[str, int, str, str], ...], indent: str) -> str:
    """Traceback frame lines (file, line, function, code), indented with `indent` as the runtime does."""
    return "".join(f'{indent}File "{f}", line {n}, in {fn}\n{indent * 2}{code}\n' for f, n, fn, code in frames)


# --- function specs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the simulated fleet."""

    name: str
    runtime: str  # python | node | java
    log_format: str  # text | json
    runtime_version: str
    memory_mb: int
    timeout_s: int
    median_ms: float
    init_ms: tuple[float, float]
    weight: float
    messages: tuple[tuple[str, str], ...]  # (level, template)
    metrics: tuple[str, ...]
    scenarios: tuple[str, ...]
    init_failures: tuple[str, ...] = ()
    prints: tuple[str, ...] = ()
    extensions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (EXTENSION|TELEMETRY, name, events/types)
    log_group: str = ""  # custom log group; empty means /aws/lambda/<name>
    owner: str = ACCOUNT
    account_policy: bool = False  # batches arrive through the account-level subscription policy
    version: str = "$LATEST"
    snapstart: bool = False
    tracing: bool = False
    namespace: str = "Fleet"
    logger: str = "root"

    @property
    def group(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"

    @property
    def runtime_arn(self) -> str:
        digest = hashlib.sha256(self.runtime_version.encode()).hexdigest()
        return f"arn:aws:lambda:{REGION}::runtime:{digest}"


FLEET = (
    FunctionSpec(
        name="orders-api",
        runtime="python",
        log_format="text",
        runtime_version="python:3.12.v27",
        memory_mb=512,
        timeout_s=30,
        median_ms=45,
        init_ms=(350, 720),
        weight=0.22,
        tracing=True,
        namespace="Orders",
        messages=(
            ("INFO", "received {n} records from API Gateway"),
            ("INFO", "order A-{ref} accepted, total {amount} USD"),
            ("INFO", "published order event A-{ref}"),
            ("DEBUG", "cache hit for customer c-{ref}"),
            ("DEBUG", "fetched pricing in {ms} ms"),
            ("WARN", "inventory service slow: {ms} ms for sku-{ref}"),
            ("ERROR", "payment provider returned HTTP 502 for order A-{ref}, will retry"),
        ),
        prints=("handler start: {n} records", "validated payload in {ms} ms"),
        metrics=("emf", "datadog_json", "statsd"),
        scenarios=(
            "ok",
            "ok_legacy_report",
            "ok_spaced_report",
            "timeout",
            "oom_killed",
            "oom_runtime",
            "unhandled",
            "unhandled_throttle",
        ),
        init_failures=("init_error", "init_timeout"),
        extensions=(
            ("EXTENSION", "AWSParametersAndSecretsLambdaExtension", ("SHUTDOWN", "INVOKE")),
            ("TELEMETRY", "datadog-agent", ("Platform", "Function", "Extension")),
        ),
    ),
    FunctionSpec(
        name="checkout-web",
        runtime="node",
        log_format="text",
        runtime_version="nodejs:20.v22",
        memory_mb=1024,
        timeout_s=15,
        median_ms=80,
        init_ms=(190, 420),
        weight=0.2,
        tracing=True,
        namespace="Checkout",
        messages=(
            ("INFO", "GET /cart/{ref} 200 {ms}ms"),
            ("INFO", "POST /checkout 201 {ms}ms session={ref}"),
            ("DEBUG", "loaded {n} cart items"),
            ("WARN", "coupon SAVE{n} expired, ignoring"),
            ("ERROR", "address validation failed for session {ref}: postcode missing"),
        ),
        metrics=("lumigo_node", "emf_node", "lumigo"),
        scenarios=("ok", "ok_spaced_report", "timeout", "oom_runtime", "unhandled", "exit"),
        init_failures=("init_error",),
        extensions=(("EXTENSION", "lumigo-extension", ("INVOKE", "SHUTDOWN")),),
    ),
    FunctionSpec(
        name="billing-worker",
        runtime="python",
        log_format="json",
        runtime_version="python:3.12.v27",
        memory_mb=1536,
        timeout_s=60,
        median_ms=380,
        init_ms=(800, 1400),
        weight=0.15,
        account_policy=True,
        tracing=True,
        logger="billing",
        messages=(
            ("INFO", "invoice INV-{ref} issued for {amount} EUR"),
            ("INFO", "processed {n} usage records"),
            ("DEBUG", "tax rate lookup took {ms} ms"),
            ("WARN", "customer c-{ref} has no billing address, using account default"),
            ("ERROR", "charge failed for INV-{ref}: card_declined"),
        ),
        prints=("billing batch {n} done",),
        metrics=("statsd", "dogstatsd", "datadog_text"),
        scenarios=("ok", "timeout", "oom_killed", "unhandled"),
        init_failures=("init_error", "init_timeout"),
    ),
    FunctionSpec(
        name="notify-sender",
        runtime="node",
        log_format="json",
        runtime_version="nodejs:22.mainline.v122",
        memory_mb=256,
        timeout_s=10,
        median_ms=25,
        init_ms=(150, 300),
        weight=0.13,
        account_policy=True,
        messages=(
            ("INFO", "sent sms to +1555{ref}"),
            ("INFO", "template welcome_v{n} rendered in {ms} ms"),
            ("DEBUG", "dedupe key n-{ref} not seen before"),
            ("WARN", "email bounced for user u-{ref}"),
            ("ERROR", "push provider rejected token t-{ref}"),
        ),
        metrics=("dogstatsd", "datadog_json", "lumigo"),
        scenarios=("ok", "timeout", "oom_runtime", "unhandled"),
        init_failures=("init_error",),
        extensions=(
            ("EXTENSION", "datadog-agent", ("INVOKE", "SHUTDOWN")),
            ("TELEMETRY", "datadog-agent", ("Platform", "Function", "Extension")),
        ),
    ),
    FunctionSpec(
        name="ledger-sync",
        runtime="java",
        log_format="text",
        runtime_version="java:21.v17",
        memory_mb=2048,
        timeout_s=60,
        median_ms=120,
        init_ms=(300, 620),
        weight=0.1,
        version="7",
        snapstart=True,
        tracing=True,
        namespace="Ledger",
        logger="LedgerHandler",
        messages=(
            ("INFO", "synced {n} ledger entries for account acct-{ref}"),
            ("INFO", "checkpoint written at offset {ms}"),
            ("DEBUG", "connection pool: {n} idle"),
            ("WARN", "clock skew of {ms} ms against ledger primary"),
            ("ERROR", "entry {ref} rejected by ledger: duplicate key"),
        ),
        prints=("Ledger batch {n} committed",),
        metrics=("emf",),
        scenarios=("ok", "timeout", "unhandled"),
    ),
    FunctionSpec(
        name="image-resizer",
        runtime="python",
        log_format="text",
        runtime_version="python:3.11.v36",
        memory_mb=3008,
        timeout_s=120,
        median_ms=1800,
        init_ms=(900, 1600),
        weight=0.1,
        log_group="/fleet/shared-logs",
        owner="210987654321",
        namespace="Media",
        messages=(
            ("INFO", "resized img-{ref}.jpg to {n} variants"),
            ("INFO", "fetched source object in {ms} ms"),
            ("DEBUG", "EXIF orientation {n} applied"),
            ("WARN", "source image img-{ref}.png is larger than 20 MB"),
            ("ERROR", "unsupported format for img-{ref}.heic"),
        ),
        prints=("resize job {ref} started",),
        metrics=("dogstatsd", "statsd"),
        scenarios=("ok", "ok_legacy_report", "timeout", "oom_killed", "oom_runtime", "unhandled"),
    ),
    FunctionSpec(
        name="webhook-relay",
        runtime="node",
        log_format="text",
        runtime_version="nodejs:20.v22",
        memory_mb=128,
        timeout_s=6,
        median_ms=35,
        init_ms=(180, 350),
        weight=0.1,
        log_group="/fleet/shared-logs",
        owner="210987654321",
        namespace="Webhooks",
        messages=(
            ("INFO", "delivered webhook wh-{ref} to partner in {ms}ms"),
            ("INFO", "accepted {n} webhooks"),
            ("DEBUG", "signature verified for wh-{ref}"),
            ("WARN", "partner endpoint returned 410 for wh-{ref}, disabling"),
            ("ERROR", "partner endpoint returned 500 for wh-{ref}"),
        ),
        metrics=("lumigo_node", "emf_node", "datadog_text"),
        scenarios=("ok", "timeout", "unhandled", "exit"),
    ),
)


# --- custom metric lines (formats.md §6): each returns (event message, number of metric values) ---------------------


def statsd_line(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """Etsy StatsD: count, sampled timer, gauge (absolute or delta) or set."""
    prefix = spec.name.replace("-", "_")
    choice = rng.randrange(5)
    if choice == 0:
        return f"{prefix}.processed:{rng.randint(1, 5)}|c\n", 1
    if choice == 1:
        return f"{prefix}.latency:{rng.randint(3, 900)}|ms|@0.1\n", 1
    if choice == 2:
        return f"{prefix}.queue_depth:{rng.choice('+-')}{rng.randint(1, 20)}|g\n", 1
    if choice == 3:
        return f"{prefix}.pool_size:{rng.randint(4, 32)}|g\n", 1
    return f"{prefix}.unique_customers:{rng.randint(100, 999)}|s\n", 1


def dogstatsd_line(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """DogStatsD: tags (one bare), packed values with a sample rate, container id and timestamp fields."""
    name = spec.name
    choice = rng.randrange(4)
    if choice == 0:
        return f"{name}.requests:1|c|#env:prod,service:{name}\n", 1
    if choice == 1:
        values = [str(rng.randint(20, 900)) for _ in range(rng.randint(2, 4))]
        return f"{name}.payload_kb:{':'.join(values)}|h|@0.5|#env:prod,canary\n", len(values)
    if choice == 2:
        latency = rng.randint(10, 9000) / 10
        return f"{name}.latency:{latency}|d|#env:prod|c:ci-{hex_id(rng, 32)}|T{ts // 1000}\n", 1
    return f"{name}.inflight:{rng.randint(0, 12)}|g|#env:prod,service:{name}\n", 1


def datadog_text_line(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """Datadog's deprecated MONITORING|epoch|value|type|name|#tags form."""
    kind = rng.choice(("count", "gauge", "histogram"))
    value = rng.randint(1, 40) if kind == "count" else rng.randint(10, 5000) / 10
    return f"MONITORING|{ts // 1000}|{value}|{kind}|{spec.name}.jobs_{kind}|#env:prod,service:{spec.name}\n", 1


def datadog_json_line(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """Datadog's DD_FLUSH_TO_LOG JSON form, printed bare."""
    layer = "datadog-python312_6.96.0" if spec.runtime == "python" else "datadog-node20_11.118.0"
    tags = ["env:prod", f"service:{spec.name}", f"dd_lambda_layer:{layer}"]
    return compact({"m": f"{spec.name}.items", "v": rng.randint(1, 12), "e": ts // 1000, "t": tags}) + "\n", 1


def lumigo_payload(rng: Random, spec: FunctionSpec) -> str:
    """Lumigo async-custom-metrics MONITORING|value|unit|name|namespace|dimensions."""
    dimensions = f"service={spec.name},region={REGION}"
    if rng.random() < 0.5:
        return f"MONITORING|1|Count|request_count|fleet.example|{dimensions}"
    return f"MONITORING|{rng.randint(10, 9000) / 10}|Milliseconds|latency|fleet.example|{dimensions}"


def lumigo_line(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """Lumigo metric written bare to stdout."""
    return lumigo_payload(rng, spec) + "\n", 1


def lumigo_node_line(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """Lumigo metric logged with console.log, so after the Node TEXT prefix."""
    return node_prefixed(ts, req, lumigo_payload(rng, spec)), 1


def emf_payload(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """CloudWatch EMF with two metrics (Latency often an array) and two dimension sets.

    Values are counted once each: the dimension sets do not multiply them.
    """
    latencies = [rng.randint(10, 9000) / 10 for _ in range(rng.randint(1, 3))]
    doc = {
        "_aws": {
            "Timestamp": ts,
            "CloudWatchMetrics": [
                {
                    "Namespace": spec.namespace,
                    "Dimensions": [["Service", "Operation"], ["Service"]],
                    "Metrics": [
                        {"Name": "Latency", "Unit": "Milliseconds", "StorageResolution": 60},
                        {"Name": "Processed", "Unit": "Count"},
                    ],
                }
            ],
        },
        "Service": spec.name,
        "Operation": rng.choice(("Create", "Update", "Sync")),
        "Latency": latencies if len(latencies) > 1 else latencies[0],
        "Processed": rng.randint(1, 25),
        "requestId": req,
    }
    return compact(doc), len(latencies) + 1


def emf_line(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """EMF printed bare (Powertools Metrics, aws-embedded-metrics)."""
    text, values = emf_payload(rng, spec, ts, req)
    return text + "\n", values


def emf_node_line(rng: Random, spec: FunctionSpec, ts: int, req: str) -> tuple[str, int]:
    """EMF logged with console.log, so after the Node TEXT prefix."""
    text, values = emf_payload(rng, spec, ts, req)
    return node_prefixed(ts, req, text), values


def node_prefixed(ts: int, req: str, text: str) -> str:
    """A payload logged at INFO through console.log in the Node TEXT format."""
    return f"{iso_ms(ts)}\t{req}\tINFO\t{text}\n"


MetricMaker = Callable[[Random, FunctionSpec, int, str], tuple[str, int]]
METRIC_MAKERS: dict[str, MetricMaker] = {
    "statsd": statsd_line,
    "dogstatsd": dogstatsd_line,
    "datadog_text": datadog_text_line,
    "datadog_json": datadog_json_line,
    "lumigo": lumigo_line,
    "lumigo_node": lumigo_node_line,
    "emf": emf_line,
    "emf_node": emf_node_line,
}


# --- runtime line shapes (formats.md §3.5-3.6, §4.2, §5) ------------------------------------------------------------


class RuntimeStyle:
    """How one runtime in one log format writes application lines. Subclasses fill in the shapes."""

    def __init__(self, spec: FunctionSpec, rng: Random) -> None:
        self.spec = spec
        self.rng = rng

    def log(self, ts: int, req: str, level: str, text: str) -> str:
        """An application log line at level DEBUG, INFO, WARN or ERROR."""
        raise NotImplementedError

    def init_log(self, ts: int) -> str | None:
        """A line logged during init, outside any invocation, or None."""
        return None

    def throttles(self) -> tuple[Callable[[int, str], str], ...]:
        """Line makers for application lines that carry an AWS throttling error."""
        raise NotImplementedError

    def unhandled(self, ts: int, req: str, throttled: bool = False) -> tuple[list[str], str]:
        """Lines the runtime writes for an unhandled handler error, and the error type."""
        raise NotImplementedError

    def oom(self) -> str:
        """The runtime's own out-of-memory line."""
        raise NotImplementedError

    def init_failure(self, ts: int) -> str:
        """The line the runtime writes when the handler module cannot be loaded."""
        raise NotImplementedError

    def crash(self, ts: int, req: str) -> str:
        """The line logged just before the runtime process exits."""
        raise NotImplementedError


PY_UNHANDLED = (
    ("KeyError", "'order_id'", (("/var/task/app.py", 12, "handler", "order = event['order_id']"),)),
    (
        "ValueError",
        "invalid literal for int() with base 10: 'abc'",
        (
            ("/var/task/app.py", 31, "handler", "quantity = parse_quantity(body)"),
            ("/var/task/validation.py", 8, "parse_quantity", "return int(body['quantity'])"),
        ),
    ),
)
PY_THROTTLE_UNHANDLED = (
    "TooManyRequestsException",
    "An error occurred (TooManyRequestsException) when calling the Invoke operation (reached max retries: 4): "
    "Rate Exceeded.",
    (("/var/task/app.py", 21, "handler", "lambda_client.invoke(FunctionName='pricing-engine', Payload=body)"),),
)
BOTOCORE_FRAME = (
    "/var/lang/lib/python3.12/site-packages/botocore/client.py",
    1021,
    "_make_api_call",
    "raise error_class(parsed_response, operation_name)",
)
DYNAMODB_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)
DYNAMODB_THROTTLE = (
    "An error occurred (ProvisionedThroughputExceededException) when calling the PutItem operation "
    f"(reached max retries: 9): {DYNAMODB_MESSAGE}"
)


class PythonText(RuntimeStyle):
    """awslambdaric TEXT format: [LEVEL]\\tISO\\tREQUEST_ID\\tmessage."""

    def log(self, ts: int, req: str, level: str, text: str) -> str:
        level = "WARNING" if level == "WARN" else level
        return f"[{level}]\t{iso_ms(ts)}\t{req}\t{text}\n"

    def init_log(self, ts: int) -> str:
        return f"[INFO]\t{iso_ms(ts)}\t\tFound credentials in environment variables.\n"

    def throttles(self) -> tuple[Callable[[int, str], str], ...]:
        return (self.kinesis_throttle, self.dynamodb_throttle, self.s3_slowdown)

    def kinesis_throttle(self, ts: int, req: str) -> str:
        """logger.exception() of a Kinesis throttle: traceback inside the event, no final newline."""
        shard = f"shardId-{self.rng.randint(0, 3):012d}"
        frames = (
            ("/var/task/app.py", 88, "publish", "kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey=pk)"),
        )
        return (
            f"[ERROR]\t{iso_ms(ts)}\t{req}\tput_record failed\nTraceback (most recent call last):\n"
            + python_traceback((*frames, BOTOCORE_FRAME), "  ")
            + "botocore.errorfactory.ProvisionedThroughputExceededException: An error occurred "
            "(ProvisionedThroughputExceededException) when calling the PutRecord operation (reached max retries: 4): "
            f"Rate exceeded for shard {shard} in stream {self.spec.name}-events under account {ACCOUNT}."
        )

    def dynamodb_throttle(self, ts: int, req: str) -> str:
        return self.log(ts, req, "WARN", f"order write deferred: {DYNAMODB_THROTTLE}")

    def s3_slowdown(self, ts: int, req: str) -> str:
        key = f"thumbnails/{fill(self.rng, '{ref}')}.jpg"
        return self.log(
            ts,
            req,
            "ERROR",
            f"upload of {key} failed: An error occurred (SlowDown) when calling the PutObject operation "
            "(reached max retries: 4): Please reduce your request rate.",
        )

    def unhandled(self, ts: int, req: str, throttled: bool = False) -> tuple[list[str], str]:
        error_type, message, frames = PY_THROTTLE_UNHANDLED if throttled else self.rng.choice(PY_UNHANDLED)
        warning = f"[WARNING]\t{iso_ms(ts)}\t\t{LAMBDA_WARNING}\n"
        error = f"[ERROR] {error_type}: {message}\nTraceback (most recent call last):\n" + python_traceback(
            frames, NBSP * 2
        )
        return [warning, error], error_type

    def oom(self) -> str:
        frames = (("/var/task/app.py", 57, "handler", "buffer = bytearray(source_size * 4)"),)
        return "[ERROR] MemoryError\nTraceback (most recent call last):\n" + python_traceback(frames, NBSP * 2)

    def init_failure(self, ts: int) -> str:
        return (
            "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named 'pandas'\n"
            "Traceback (most recent call last):\n"
        )


NODE_ERRORS = (
    (
        "TypeError",
        "Cannot read properties of undefined (reading 'id')",
        "at Runtime.handler (file:///var/task/index.mjs:3:25)",
    ),
    ("Error", "cart service unavailable", "at fetchCart (file:///var/task/cart.mjs:41:11)"),
)
NODE_SDK_FRAME = (
    "at de_ThrottlingExceptionRes (/var/runtime/node_modules/@aws-sdk/client-sqs/dist-cjs/index.js:1244:21)"
)


class NodeText(RuntimeStyle):
    """Node RIC TEXT format: ISO\\tREQUEST_ID\\tLEVEL\\tmessage."""

    def log(self, ts: int, req: str, level: str, text: str) -> str:
        return f"{iso_ms(ts)}\t{req}\t{level}\t{text}\n"

    def init_log(self, ts: int) -> str:
        return self.log(ts, "undefined", "INFO", f"config loaded from SSM in {self.rng.randint(20, 90)}ms")

    def throttles(self) -> tuple[Callable[[int, str], str], ...]:
        return (self.sdk_throttle, self.invoke_throttle)

    def sdk_throttle(self, ts: int, req: str) -> str:
        stack = f"    {NODE_SDK_FRAME}\n    at async publishEvent (file:///var/task/events.mjs:18:5)"
        return self.log(ts, req, "ERROR", f"ThrottlingException: Rate exceeded\n{stack}")

    def invoke_throttle(self, ts: int, req: str) -> str:
        return self.log(ts, req, "WARN", "pricing-engine invoke rejected: TooManyRequestsException: Rate Exceeded.")

    def unhandled(self, ts: int, req: str, throttled: bool = False) -> tuple[list[str], str]:
        error_type, message, frame = self.rng.choice(NODE_ERRORS)
        blob = compact(
            {"errorType": error_type, "errorMessage": message, "stack": [f"{error_type}: {message}", f"    {frame}"]}
        )
        return [self.log(ts, req, "ERROR", f"Invoke Error \t{blob}")], error_type

    def oom(self) -> str:
        return V8_OOM

    def init_failure(self, ts: int) -> str:
        message = "Error: Cannot find module 'index'\nRequire stack:\n- /var/runtime/index.mjs"
        blob = compact(
            {
                "errorType": "Runtime.ImportModuleError",
                "errorMessage": message,
                "stack": [
                    "Runtime.ImportModuleError: Error: Cannot find module 'index'",
                    "Require stack:",
                    "- /var/runtime/index.mjs",
                ],
            }
        )
        return self.log(ts, "undefined", "ERROR", f"Uncaught Exception \t{blob}")

    def crash(self, ts: int, req: str) -> str:
        blob = compact(
            {
                "errorType": "Runtime.UnhandledPromiseRejection",
                "errorMessage": "Error: socket hang up",
                "reason": {"errorType": "Error", "errorMessage": "socket hang up", "code": "ECONNRESET"},
                "promise": {},
                "stack": [
                    "Runtime.UnhandledPromiseRejection: Error: socket hang up",
                    "    at process.<anonymous> (file:///var/runtime/index.mjs:1276:17)",
                ],
            }
        )
        return self.log(ts, req, "ERROR", f"Unhandled Promise Rejection \t{blob}")


class PythonJson(RuntimeStyle):
    """awslambdaric JSON format: Python json.dumps separators, no milliseconds, extras merged at top level."""

    def record(self, ts: int, req: str, level: str, text: str, **extra: Any) -> str:
        level = "WARNING" if level == "WARN" else level
        doc = {"timestamp": iso_s(ts), "level": level, "message": text, "logger": self.spec.logger}
        if req:
            doc["requestId"] = req
        return json.dumps({**doc, **extra}, ensure_ascii=False)

    def log(self, ts: int, req: str, level: str, text: str) -> str:
        if self.rng.random() < 0.3:
            return self.record(ts, req, level, text, customer_id=f"c-{self.rng.getrandbits(24):06x}")
        return self.record(ts, req, level, text)

    def init_log(self, ts: int) -> str:
        doc = {
            "timestamp": iso_s(ts),
            "level": "INFO",
            "message": "Found credentials in environment variables.",
            "logger": "botocore.credentials",
        }
        return json.dumps(doc, ensure_ascii=False)

    def throttles(self) -> tuple[Callable[[int, str], str], ...]:
        return (self.dynamodb_throttle,)

    def dynamodb_throttle(self, ts: int, req: str) -> str:
        doc = {
            "timestamp": iso_s(ts),
            "level": "ERROR",
            "message": "failed to store invoice",
            "logger": self.spec.logger,
            "stackTrace": ['  File "/var/task/app.py", line 30, in handler\n    table.put_item(Item=item)\n'],
            "errorType": "ProvisionedThroughputExceededException",
            "errorMessage": DYNAMODB_THROTTLE,
            "requestId": req,
            "location": "/var/task/app.py:handler:33",
            "invoice_id": f"INV-{self.rng.getrandbits(24):06x}",
        }
        return json.dumps(doc, ensure_ascii=False)

    def unhandled(self, ts: int, req: str, throttled: bool = False) -> tuple[list[str], str]:
        error_type, message, frames = self.rng.choice(PY_UNHANDLED)
        doc = {
            "timestamp": iso_s(ts),
            "log_level": "ERROR",
            "errorMessage": message,
            "errorType": error_type,
            "requestId": req,
            "stackTrace": [python_traceback((frame,), "  ") for frame in frames],
        }
        return [json.dumps(doc, ensure_ascii=False)], error_type

    def init_failure(self, ts: int) -> str:
        doc = {
            "timestamp": iso_s(ts),
            "log_level": "ERROR",
            "errorMessage": "Unable to import module 'app': No module named 'stripe'",
            "errorType": "Runtime.ImportModuleError",
            "requestId": "",
            "stackTrace": [],
        }
        return json.dumps(doc, ensure_ascii=False)


class NodeJson(RuntimeStyle):
    """Node RIC JSON format: compact, message may be any JSON value."""

    def log(self, ts: int, req: str, level: str, text: str) -> str:
        message: Any = text
        if level == "INFO" and self.rng.random() < 0.2:
            message = {
                "event": "notification.sent",
                "channel": self.rng.choice(("sms", "email", "push")),
                "latencyMs": self.rng.randint(5, 400),
            }
        return compact({"timestamp": iso_ms(ts), "level": level, "requestId": req, "message": message})

    def init_log(self, ts: int) -> str:
        return compact({"timestamp": iso_ms(ts), "level": "INFO", "message": "templates cached"})

    def throttles(self) -> tuple[Callable[[int, str], str], ...]:
        return (self.sdk_throttle,)

    def sdk_throttle(self, ts: int, req: str) -> str:
        error = {
            "errorType": "ThrottlingException",
            "errorMessage": "Rate exceeded",
            "stackTrace": ["ThrottlingException: Rate exceeded", f"    {NODE_SDK_FRAME}"],
        }
        return compact({"timestamp": iso_ms(ts), "level": "ERROR", "requestId": req, "message": error})

    def unhandled(self, ts: int, req: str, throttled: bool = False) -> tuple[list[str], str]:
        error_type, message, frame = self.rng.choice(NODE_ERRORS)
        doc = {
            "timestamp": iso_ms(ts),
            "level": "ERROR",
            "requestId": req,
            "message": "Invoke Error",
            "errorType": error_type,
            "errorMessage": message,
            "stackTrace": [f"{error_type}: {message}", f"    {frame}"],
        }
        return [compact(doc)], error_type

    def oom(self) -> str:
        return V8_OOM  # V8 writes to stderr: plain text even in JSON log format

    def init_failure(self, ts: int) -> str:
        doc = {
            "timestamp": iso_ms(ts),
            "level": "ERROR",
            "message": "Uncaught Exception",
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": "Error: Cannot find module 'handler'",
            "stackTrace": ["Runtime.ImportModuleError: Error: Cannot find module 'handler'"],
        }
        return compact(doc)


class JavaText(RuntimeStyle):
    """aws-lambda-java-log4j2 pattern layout: date time REQUEST_ID LEVEL logger - message."""

    def log(self, ts: int, req: str, level: str, text: str) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts // 1000))
        return f"{stamp} {req} {level:<5} {self.spec.logger} - {text}\n"

    def throttles(self) -> tuple[Callable[[int, str], str], ...]:
        return (self.dynamodb_throttle,)

    def dynamodb_throttle(self, ts: int, req: str) -> str:
        aws_request = hex_id(self.rng, 96).upper()
        return self.log(
            ts,
            req,
            "ERROR",
            "ledger write failed: software.amazon.awssdk.services.dynamodb.model."
            f"ProvisionedThroughputExceededException: {DYNAMODB_MESSAGE} "
            f"(Service: DynamoDb, Status Code: 400, Request ID: {aws_request})",
        )

    def unhandled(self, ts: int, req: str, throttled: bool = False) -> tuple[list[str], str]:
        error_type = "java.lang.IllegalStateException"
        message = f"Ledger entry {fill(self.rng, '{ref}')} out of balance"
        text = (
            f"{message}: {error_type}\n{error_type}: {message}\n"
            "\tat com.example.ledger.LedgerHandler.handleRequest(LedgerHandler.java:57)\n"
            "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(Unknown Source)\n"
        )
        return [text], error_type


STYLES: dict[tuple[str, str], type[RuntimeStyle]] = {
    ("python", "text"): PythonText,
    ("node", "text"): NodeText,
    ("python", "json"): PythonJson,
    ("node", "json"): NodeJson,
    ("java", "text"): JavaText,
}


# --- Lambda platform lines (formats.md §3.1-3.4 TEXT, §4.1 JSON) ---------------------------------------------------


@dataclass
class Trace:
    """An X-Ray trace header of one invocation."""

    root: str
    segment: str
    sampled: bool


@dataclass
class Report:
    """What the REPORT line (or platform.report record) of one invocation says."""

    request_id: str
    memory: int
    max_used: int = 0
    duration: float = 0.0
    status: str = "success"  # success | timeout | error
    error_type: str | None = None
    init_ms: float | None = None
    restore_ms: float | None = None
    billed_restore: int = 0
    trace: Trace | None = None

    @property
    def billed(self) -> int:
        return max(1, math.ceil(self.duration))


class TextPlatform:
    """Platform lines of the TEXT log format."""

    precision = 2

    def init_start(self, ts: int, spec: FunctionSpec) -> str:
        return f"INIT_START Runtime Version: {spec.runtime_version}\tRuntime Version ARN: {spec.runtime_arn}\n"

    def reinit_start(self, ts: int, spec: FunctionSpec) -> None:
        """TEXT logs show no second INIT_START when init is retried inside the first invoke."""

    def extension(self, ts: int, kind: str, name: str, items: tuple[str, ...]) -> str:
        if kind == "TELEMETRY":
            return f"TELEMETRY\tName: {name}\tState: Subscribed\tTypes: [{', '.join(items)}]\n"
        return f"EXTENSION\tName: {name}\tState: Ready\tEvents: [{', '.join(items)}]\n"

    def init_done(self, ts: int, init_ms: float) -> None:
        """A successful on-demand init prints no INIT_REPORT in TEXT format."""

    def init_report(self, ts: int, phase: str, status: str, error_type: str | None, duration: float) -> str:
        line = f"INIT_REPORT Init Duration: {duration:.2f} ms\tPhase: {phase}\tStatus: {status}"
        return line + (f"\tError Type: {error_type}\n" if error_type else "\n")

    def restore_start(self, ts: int, spec: FunctionSpec) -> str:
        return f"RESTORE_START Runtime Version: {spec.runtime_version}\tRuntime Version ARN: {spec.runtime_arn}\n"

    def restore_report(self, ts: int, duration: float) -> str:
        return f"RESTORE_REPORT Restore Duration: {duration:.2f} ms\n"

    def start(self, ts: int, req: str, version: str, trace: Trace | None) -> str:
        return f"START RequestId: {req} Version: {version}\n"

    def timed_out(self, ts: int, req: str, duration: float) -> str:
        return f"{iso_ms(ts)} {req} Task timed out after {duration / 1000:.2f} seconds\n\n"

    def runtime_exit(self, ts: int, req: str, reason: str) -> str:
        return f"RequestId: {req} Error: Runtime exited with error: {reason}\nRuntime.ExitError\n"

    def end(self, ts: int, r: Report) -> str:
        return f"END RequestId: {r.request_id}\n"

    def report(self, ts: int, r: Report, variant: str = "") -> str:
        """REPORT, optional fields, X-Ray trailer; variant `legacy` is the pre-2021 spacing, `spaced` a console copy."""
        billed = f"Billed Duration: {r.billed} ms"
        if variant == "legacy":
            billed = f"Billed Duration: {math.ceil(r.duration / 100) * 100} ms "
        parts = [
            f"REPORT RequestId: {r.request_id}",
            f"Duration: {r.duration:.2f} ms",
            billed,
            f"Memory Size: {r.memory} MB",
            f"Max Memory Used: {r.max_used} MB",
        ]
        if r.init_ms is not None:
            parts.append(f"Init Duration: {r.init_ms:.2f} ms")
        if r.restore_ms is not None:
            parts += [f"Restore Duration: {r.restore_ms:.2f} ms", f"Billed Restore Duration: {r.billed_restore} ms"]
        if r.status == "success":
            line = "\t".join(parts) + "\t\n"
        else:
            parts.append(f"Status: {r.status}")
            if r.error_type:
                parts.append(f"Error Type: {r.error_type}")
            line = "\t".join(parts) + "\n"
        if r.trace:
            sampled = "true" if r.trace.sampled else "false"
            line += f"XRAY TraceId: {r.trace.root}\tSegmentId: {r.trace.segment}\tSampled: {sampled}\t\n"
        return line.replace("\t", "    ") if variant == "spaced" else line


class JsonPlatform:
    """Platform records of the JSON log format: {"time","type","record"}."""

    precision = 3

    @staticmethod
    def event(ts: int, kind: str, record: dict[str, Any]) -> str:
        return compact({"time": iso_ms(ts), "type": f"platform.{kind}", "record": record})

    def init_start(self, ts: int, spec: FunctionSpec, phase: str = "init") -> str:
        record = {
            "initializationType": "on-demand",
            "phase": phase,
            "runtimeVersion": spec.runtime_version,
            "runtimeVersionArn": spec.runtime_arn,
            "functionName": spec.name,
            "functionVersion": spec.version,
        }
        return self.event(ts, "initStart", record)

    def reinit_start(self, ts: int, spec: FunctionSpec) -> str:
        return self.init_start(ts, spec, "invoke")

    def extension(self, ts: int, kind: str, name: str, items: tuple[str, ...]) -> str:
        if kind == "TELEMETRY":
            return self.event(ts, "telemetrySubscription", {"name": name, "state": "Subscribed", "types": list(items)})
        return self.event(ts, "extension", {"name": name, "state": "Ready", "events": list(items)})

    def init_done(self, ts: int, init_ms: float) -> str:
        record = {
            "initializationType": "on-demand",
            "phase": "init",
            "status": "success",
            "metrics": {"durationMs": init_ms},
        }
        return self.event(ts, "initReport", record)

    def init_report(self, ts: int, phase: str, status: str, error_type: str | None, duration: float) -> str:
        record: dict[str, Any] = {"initializationType": "on-demand", "phase": phase, "status": status}
        if error_type:
            record["errorType"] = error_type
        record["metrics"] = {"durationMs": duration}
        return self.event(ts, "initReport", record)

    def start(self, ts: int, req: str, version: str, trace: Trace | None) -> str:
        record: dict[str, Any] = {"requestId": req, "version": version}
        if trace:
            record["tracing"] = self.tracing(trace)
        return self.event(ts, "start", record)

    def timed_out(self, ts: int, req: str, duration: float) -> None:
        """JSON format relies on status "timeout" in the platform records."""

    def runtime_exit(self, ts: int, req: str, reason: str) -> None:
        """JSON format reports runtime exits through the platform records' errorType."""

    def end(self, ts: int, r: Report) -> str:
        record: dict[str, Any] = {"requestId": r.request_id, "status": r.status}
        if r.error_type:
            record["errorType"] = r.error_type
        record["metrics"] = {"durationMs": round(r.duration * 0.97, 3), "producedBytes": 0 if r.error_type else 212}
        return self.event(ts, "runtimeDone", record)

    def report(self, ts: int, r: Report, variant: str = "") -> str:
        metrics: dict[str, Any] = {
            "durationMs": r.duration,
            "billedDurationMs": r.billed,
            "memorySizeMB": r.memory,
            "maxMemoryUsedMB": r.max_used,
        }
        if r.init_ms is not None:
            metrics["initDurationMs"] = r.init_ms
        record: dict[str, Any] = {"requestId": r.request_id, "metrics": metrics}
        if r.trace:
            record["tracing"] = self.tracing(r.trace)
        record["status"] = r.status
        if r.error_type:
            record["errorType"] = r.error_type
        return self.event(ts, "report", record)

    @staticmethod
    def tracing(trace: Trace) -> dict[str, str]:
        value = f"Root={trace.root};Parent={trace.segment};Sampled={int(trace.sampled)}"
        return {"spanId": trace.segment, "type": "X-Amzn-Trace-Id", "value": value}


# --- simulation: functions write invocations into log streams -------------------------------------------------------


@dataclass
class Stream:
    """One log stream (one execution environment) and the truth counted while writing it."""

    spec: FunctionSpec
    name: str
    partition_key: str
    events: list[tuple[int, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)
    clock: int = 0

    def emit(self, ts: int, message: str, kind: str) -> None:
        """Append one CloudWatch log event; kind is platform, log or metric."""
        self.events.append((ts, message))
        self.counts[f"{kind}_lines"] += 1

    def emit_platform(self, ts: int, message: str | None) -> None:
        """Append a platform line the log format may not have (None)."""
        if message is not None:
            self.emit(ts, message, PLATFORM)

    def count_report(self, r: Report) -> None:
        """Count the invocation a REPORT closes: one signal at most, whatever else showed it."""
        counts = self.counts
        counts["invocations"] += 1
        if r.init_ms is not None or r.restore_ms is not None:
            counts["cold_starts"] += 1
        if r.status == "timeout":
            counts["timeouts"] += 1
        elif r.error_type == "Runtime.OutOfMemory":
            counts["out_of_memory"] += 1
        elif r.status == "error":
            counts["errors"] += 1
        self.durations.append(r.duration)


LineMaker = Callable[[Stream, int, str], None]


class FunctionSim:
    """Writes log streams for one function.

    Until every line shape, outcome and init failure the function can show has appeared once (the showcase), they are
    forced early; afterwards everything is drawn at the rates in SCENARIO_WEIGHTS and the line weights below.
    """

    def __init__(self, spec: FunctionSpec, rng: Random) -> None:
        self.spec = spec
        self.rng = rng
        self.style = STYLES[(spec.runtime, spec.log_format)](spec, rng)
        self.platform = JsonPlatform() if spec.log_format == "json" else TextPlatform()
        weighted: list[tuple[float, LineMaker]] = [(70.0, self.plain_line), (2.0, self.decoy_line)]
        if spec.prints:
            weighted.append((5.0, self.print_line))
        throttles = self.style.throttles()
        weighted += [(1.2 / len(throttles), partial(self.throttle_line, make)) for make in throttles]
        weighted += [(16.0 / len(spec.metrics), partial(self.metric_line, METRIC_MAKERS[m])) for m in spec.metrics]
        self.makers = [maker for _, maker in weighted]
        self.maker_weights = list(accumulate(weight for weight, _ in weighted))
        self.scenario_weights = list(accumulate(SCENARIO_WEIGHTS[s] for s in spec.scenarios))
        self.pending_lines = deque(self.makers)
        self.pending_scenarios = deque(s for s in spec.scenarios if s != "ok")
        self.pending_inits = deque(spec.init_failures)
        self.streams = 0

    @property
    def showing(self) -> bool:
        """Whether some shape of this function has not appeared yet."""
        return bool(self.pending_lines or self.pending_scenarios or self.pending_inits)

    # application lines: each maker writes exactly one log event

    def plain_line(self, s: Stream, ts: int, req: str) -> None:
        level, template = self.rng.choice(self.spec.messages)
        s.emit(ts, self.style.log(ts, req, level, fill(self.rng, template)), LOG)

    def print_line(self, s: Stream, ts: int, req: str) -> None:
        s.emit(ts, fill(self.rng, self.rng.choice(self.spec.prints)) + "\n", LOG)

    def decoy_line(self, s: Stream, ts: int, req: str) -> None:
        level, template = self.rng.choice(DECOYS)
        s.emit(ts, self.style.log(ts, req, level, fill(self.rng, template)), LOG)

    def throttle_line(self, make: Callable[[int, str], str], s: Stream, ts: int, req: str) -> None:
        s.emit(ts, make(ts, req), LOG)
        s.counts["throttles"] += 1

    def metric_line(self, make: MetricMaker, s: Stream, ts: int, req: str) -> None:
        text, values = make(self.rng, self.spec, ts, req)
        s.emit(ts, text, METRIC)
        s.counts["metric_values"] += values

    def slots(self, n: int) -> list[LineMaker]:
        """n line makers for one invocation; up to two come from the showcase queue."""
        chosen: list[LineMaker] = []
        while self.pending_lines and len(chosen) < min(n, 2):
            chosen.append(self.pending_lines.popleft())
        return chosen + self.rng.choices(self.makers, cum_weights=self.maker_weights, k=n - len(chosen))

    # streams and invocations

    def stream(self, start_ms: int, invocations: int) -> Stream:
        """One log stream: a cold start, then up to `invocations` invocations (fewer if the environment dies)."""
        rng, spec = self.rng, self.spec
        day = time.strftime("%Y/%m/%d", time.gmtime(start_ms // 1000))
        prefix = spec.name if spec.log_group else ""
        name = f"{day}/{prefix}[{spec.version}]{hex_id(rng)}"
        s = Stream(spec=spec, name=name, partition_key=hex_id(rng), clock=start_ms)
        failure = self.pick_init_failure()
        self.streams += 1
        if failure:
            self.failed_init(s, failure)
            return s
        for i in range(invocations):
            scenario = self.pick_scenario(i)
            self.invoke(s, scenario, cold=i == 0)
            if scenario in FATAL:
                break
        return s

    def pick_init_failure(self) -> str | None:
        if self.pending_inits and self.streams:
            return self.pending_inits.popleft()
        for kind in self.spec.init_failures:
            if self.rng.random() < INIT_FAILURE_RATE:
                return kind
        return None

    def pick_scenario(self, i: int) -> str:
        if self.pending_scenarios and i % 2:
            return self.pending_scenarios.popleft()
        return self.rng.choices(self.spec.scenarios, cum_weights=self.scenario_weights)[0]

    def duration(self, scenario: str) -> float:
        """Invocation duration in ms: log-normal around the median, pinned to the timeout on timeouts."""
        limit = self.spec.timeout_s * 1000
        if scenario == "timeout":
            return limit + self.rng.uniform(3, 40)
        if scenario.startswith("oom"):
            return min(limit * 0.95, self.spec.median_ms * self.rng.uniform(3, 20))
        return max(0.8, min(limit * 0.9, self.spec.median_ms * math.exp(self.rng.gauss(0, 0.7))))

    def max_memory(self) -> int:
        low = min(self.spec.memory_mb - 1, 30 + self.spec.memory_mb // 10)
        return self.rng.randint(low, max(low, int(self.spec.memory_mb * 0.75)))

    def trace(self, ts: int) -> Trace | None:
        if not self.spec.tracing or self.rng.random() < 0.2:
            return None
        return Trace(f"1-{ts // 1000:08x}-{hex_id(self.rng, 96)}", hex_id(self.rng, 64), self.rng.random() < 0.9)

    def cold_init(self, s: Stream, t: int) -> tuple[int, float]:
        """INIT_START, extensions and init-time logs; returns the START time and the init duration."""
        pf, rng = self.platform, self.rng
        init_ms = round(rng.uniform(*self.spec.init_ms), pf.precision)
        s.emit(t, pf.init_start(t, self.spec), PLATFORM)
        for i, (kind, name, items) in enumerate(self.spec.extensions, start=1):
            s.emit(t + i, pf.extension(t + i, kind, name, items), PLATFORM)
        line = self.style.init_log(t + 20)
        if line and rng.random() < 0.7:
            s.emit(t + 20, line, LOG)
        done = t + int(init_ms)
        s.emit_platform(done, pf.init_done(done, init_ms))
        return done + 1, init_ms

    def restore(self, s: Stream, t: int) -> tuple[int, float]:
        """SnapStart RESTORE_START and RESTORE_REPORT; returns the START time and the restore duration."""
        restore_ms = round(self.rng.uniform(*self.spec.init_ms), 2)
        s.emit(t, self.platform.restore_start(t, self.spec), PLATFORM)
        done = t + int(restore_ms)
        s.emit(done, self.platform.restore_report(done, restore_ms), PLATFORM)
        return done + 1, restore_ms

    def invoke(self, s: Stream, scenario: str, cold: bool) -> None:
        """START, 1-6 application lines, the outcome's own lines, END (or runtimeDone) and REPORT."""
        rng, spec, pf = self.rng, self.spec, self.platform
        r = Report(request_id(rng), spec.memory_mb, self.max_memory())
        t = s.clock
        if cold and spec.snapstart:
            t, r.restore_ms = self.restore(s, t)
            r.billed_restore = int(r.restore_ms * rng.uniform(0.4, 0.8))
        elif cold:
            t, r.init_ms = self.cold_init(s, t)
        r.trace = self.trace(t)
        s.emit(t, pf.start(t, r.request_id, spec.version, r.trace), PLATFORM)
        duration = self.duration(scenario)
        end = t + 1 + int(duration)
        makers = self.slots(rng.randint(1, 6))
        span = max(1, int(duration * 0.9))
        for offset, maker in zip(sorted(rng.randrange(span) for _ in makers), makers, strict=True):
            maker(s, t + 1 + offset, r.request_id)
        r.duration = round(duration, pf.precision)
        self.outcome(s, scenario, end, r)
        s.emit(end, pf.end(end, r), PLATFORM)
        variant = {"ok_legacy_report": "legacy", "ok_spaced_report": "spaced"}.get(scenario, "")
        s.emit(end, pf.report(end, r, variant), PLATFORM)
        s.count_report(r)
        s.clock = end + 1 + int(rng.expovariate(1 / 1500))

    def outcome(self, s: Stream, scenario: str, ts: int, r: Report) -> None:
        """Lines an unsuccessful invocation writes before END, and its REPORT status."""
        pf, style, req = self.platform, self.style, r.request_id
        if scenario == "timeout":
            r.status = "timeout"
            s.emit_platform(ts, pf.timed_out(ts, req, r.duration))
        elif scenario.startswith("oom"):
            r.status, r.error_type, r.max_used = "error", "Runtime.OutOfMemory", self.spec.memory_mb
            if scenario == "oom_killed":
                s.emit_platform(ts, pf.runtime_exit(ts, req, "signal: killed"))
            else:
                s.emit(ts, style.oom(), LOG)
                if self.spec.runtime == "node":
                    s.emit_platform(ts, pf.runtime_exit(ts, req, "signal: aborted"))
        elif scenario in ("unhandled", "unhandled_throttle"):
            lines, r.error_type = style.unhandled(ts, req, throttled=scenario == "unhandled_throttle")
            for line in lines:
                s.emit(ts, line, LOG)
            if scenario == "unhandled_throttle":
                s.counts["throttles"] += 1
            r.status = "error"
        elif scenario == "exit":
            s.emit(ts, style.crash(ts, req), LOG)
            s.emit_platform(ts, pf.runtime_exit(ts, req, "exit status 128"))
            r.status, r.error_type = "error", "Runtime.ExitError"

    def failed_init(self, s: Stream, kind: str) -> None:
        """Init fails (error) or times out, is retried inside the first invoke and fails again; that invoke fails."""
        rng, spec, pf, style = self.rng, self.spec, self.platform, self.style
        error_type = "Runtime.ImportModuleError" if kind == "init_error" else None
        status = "error" if error_type else "timeout"
        r = Report(request_id(rng), spec.memory_mb, self.max_memory(), status=status, error_type=error_type)
        t = s.clock
        s.emit(t, pf.init_start(t, spec), PLATFORM)
        for phase in ("init", "invoke"):
            if phase == "invoke":
                t += rng.randint(5, 40)
                s.emit_platform(t, pf.reinit_start(t, spec))
            if error_type:
                duration = round(rng.uniform(80, 400), pf.precision)
                s.emit(t + int(duration) - 1, style.init_failure(t + int(duration) - 1), LOG)
            else:
                limit = 10_000 if phase == "init" else spec.timeout_s * 1000
                duration = round(limit + rng.uniform(0.5, 12), pf.precision)
            t += int(duration)
            s.emit(t, pf.init_report(t, phase, status, error_type, duration), PLATFORM)
            s.counts["init_errors"] += 1
        s.emit(t, pf.start(t, r.request_id, spec.version, None), PLATFORM)
        if error_type:
            r.duration = round(duration + rng.uniform(1, 5), pf.precision)
        else:
            r.duration = duration
            s.emit_platform(t, pf.timed_out(t, r.request_id, duration))
        s.emit(t + 1, pf.end(t + 1, r), PLATFORM)
        s.emit(t + 1, pf.report(t + 1, r), PLATFORM)
        s.count_report(r)


# --- delivery: log streams -> CloudWatch Logs batches -> Kinesis records -> Lambda Kinesis events --------------------


@dataclass
class Payload:
    """One Kinesis record's data before wrapping: a gzip'd CWL document, or a KPL aggregate of several."""

    arrival_ms: int
    partition_key: str
    data: bytes
    documents: int = 1  # CWL documents inside (more than one only for KPL aggregates)


def batch_sizes(rng: Random, total: int) -> list[int]:
    """Cut a stream of `total` events into subscription batches of 5 to 100 events (short streams stay whole)."""
    sizes = []
    while total > 0:
        size = int(rng.triangular(5, 100, 20))
        if total - size < 5:
            size = total if total <= 100 else total - 5
        sizes.append(size)
        total -= size
    return sizes


def gzip_json(doc: dict[str, Any]) -> bytes:
    """Compact JSON, gzip'd like CloudWatch Logs payloads (maximum compression, header H4sIAAAAAAACA; no mtime)."""
    return gzip.compress(orjson.dumps(doc), compresslevel=9, mtime=0)


def document(s: Stream, start: int, stop: int, salt: int) -> dict[str, Any]:
    """The DATA_MESSAGE for events[start:stop] of a stream; ids carry the event time in their high bits."""
    spec = s.spec
    doc: dict[str, Any] = {
        "messageType": "DATA_MESSAGE",
        "owner": spec.owner,
        "logGroup": spec.group,
        "logStream": s.name,
        "subscriptionFilters": [ACCOUNT_POLICY if spec.account_policy else GROUP_FILTER],
        "logEvents": [
            {"id": str((ts << 144) + salt + i), "timestamp": ts, "message": message}
            for i, (ts, message) in enumerate(s.events[start:stop], start=start)
        ],
    }
    if spec.account_policy:
        doc["policyLevel"] = "ACCOUNT_LEVEL_POLICY"
    return doc


def data_payloads(rng: Random, s: Stream) -> list[Payload]:
    """The stream's subscription batches as Kinesis payloads, arriving shortly after their last event.

    CloudWatch Logs delivers one log stream's batches in order, so arrivals never go backwards.
    """
    salt = rng.getrandbits(100)
    payloads, start, arrival = [], 0, 0
    for size in batch_sizes(rng, len(s.events)):
        stop = start + size
        arrival = max(arrival + 1, s.events[stop - 1][0] + rng.randint(300, 2500))
        payloads.append(Payload(arrival, s.partition_key, gzip_json(document(s, start, stop, salt))))
        start = stop
    return payloads


def control_payload(rng: Random, ts: int) -> Payload:
    """A CONTROL_MESSAGE health check."""
    doc = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": ts, "message": CONTROL_TEXT}],
    }
    return Payload(ts + rng.randint(100, 900), hex_id(rng), gzip_json(doc))


def kpl_aggregate(group: list[Payload]) -> Payload:
    """Several gzip'd CWL documents re-published by a KPL producer as one aggregated record."""
    aggregator = RecordAggregator()
    for payload in group:
        aggregator.add_user_record(payload.partition_key, payload.data)
    partition_key, _, data = aggregator.clear_and_get().get_contents()
    return Payload(max(p.arrival_ms for p in group), partition_key, data, documents=len(group))


def with_kpl_aggregates(rng: Random, payloads: list[Payload]) -> list[Payload]:
    """Replace a few runs of 2-3 consecutive payloads (about one in 300) by KPL aggregates."""
    groups = len(payloads) // 300 or (1 if len(payloads) >= 4 else 0)
    if not groups:
        return payloads
    segment = len(payloads) // groups
    out: list[Payload] = []
    for g in range(groups):
        part = payloads[g * segment : (g + 1) * segment if g < groups - 1 else len(payloads)]
        at, size = rng.randrange(len(part) - 3), rng.randint(2, 3)
        out += [*part[:at], kpl_aggregate(part[at : at + size]), *part[at + size :]]
    return out


def shard_of(partition_key: str) -> int:
    """Kinesis routes by the MD5 of the partition key over equal hash-key ranges."""
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big") * len(SHARDS) >> 128


def kinesis_events(rng: Random, payloads: list[Payload]) -> list[dict[str, Any]]:
    """Lambda Kinesis events: per shard, records in sequence order, BATCH_SIZE at a time."""
    per_shard: list[list[dict[str, Any]]] = [[] for _ in SHARDS]
    sequence = [49 * 10**54 + rng.randrange(10**54) for _ in SHARDS]
    for p in sorted(payloads, key=lambda p: p.arrival_ms):
        shard = shard_of(p.partition_key)
        sequence[shard] += rng.randrange(10**20, 10**22)
        number = str(sequence[shard])
        record = {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": p.partition_key,
                "sequenceNumber": number,
                "data": base64.b64encode(p.data).decode(),
                "approximateArrivalTimestamp": p.arrival_ms / 1000,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{SHARDS[shard]}:{number}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": SHIPPER_ROLE,
            "awsRegion": REGION,
            "eventSourceARN": STREAM_ARN,
        }
        per_shard[shard].append(record)
    batches = [
        (records[i]["kinesis"]["approximateArrivalTimestamp"], shard, records[i : i + BATCH_SIZE])
        for shard, records in enumerate(per_shard)
        for i in range(0, len(records), BATCH_SIZE)
    ]
    return [{"Records": records} for _, _, records in sorted(batches, key=lambda b: b[:2])]


# --- ground truth ----------------------------------------------------------------------------------------------------


def stream_truth(streams: list[Stream], **totals: int) -> dict[str, Any]:
    """Truth for a set of streams: per-function counters, their sums, and the delivery totals given."""
    functions: dict[str, dict[str, Any]] = {}
    for s in streams:
        spec = s.spec
        entry = functions.setdefault(
            spec.name,
            {
                "log_group": spec.group,
                "runtime": spec.runtime,
                "log_format": spec.log_format,
                "memory_size_mb": spec.memory_mb,
                **dict.fromkeys(COUNTERS, 0),
                "durations_ms": [],
            },
        )
        for key in COUNTERS:
            entry[key] += s.counts[key]
        entry["durations_ms"] += s.durations
    truth: dict[str, Any] = {key: sum(f[key] for f in functions.values()) for key in COUNTERS}
    truth["log_events"] = sum(len(s.events) for s in streams)
    truth.update(totals)
    truth["functions"] = dict(sorted(functions.items()))
    return truth


def merge_truth(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Truth of two inputs taken together (counters add up, durations concatenate)."""
    merged = {key: value + b.get(key, 0) for key, value in a.items() if key != "functions"}
    functions = {name: dict(entry, durations_ms=list(entry["durations_ms"])) for name, entry in a["functions"].items()}
    for name, entry in b["functions"].items():
        if name not in functions:
            functions[name] = dict(entry, durations_ms=list(entry["durations_ms"]))
            continue
        for key in (*COUNTERS, "durations_ms"):
            functions[name][key] = functions[name][key] + entry[key]
    merged["functions"] = dict(sorted(functions.items()))
    return merged


# --- public API ------------------------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """Generated input and its ground truth.

    kinesis_events: Lambda Kinesis events ({"Records": [...]}) as the event source mapping delivers them.
    truth: what kinesis_events contain, counted while generating them. Per function (truth["functions"][name]):
        invocations (REPORT lines and platform.report records), cold_starts (invocations with Init or Restore
        Duration), timeouts, out_of_memory, errors (failed for another reason) - one per invocation however many
        lines show it -, init_errors (INIT_REPORT / platform.initReport with a non-success status), throttles
        (application lines carrying an AWS throttling error; decoys excluded), metric_values (packed and array
        values counted separately, EMF dimension sets not multiplying), metric_lines, log_lines (application lines
        that are neither platform nor metric lines; runtime error lines included), platform_lines (START, END,
        REPORT, INIT_*, RESTORE_*, EXTENSION, TELEMETRY, "Task timed out", "Runtime exited" and platform.* records),
        durations_ms (REPORT durations as printed, in generation order), memory_size_mb, log_group, runtime,
        log_format. Top level: the sums of the per-function counters, and log_events (CloudWatch log events in
        DATA_MESSAGEs), data_messages, records (Kinesis records), control_messages, kpl_records (aggregated Kinesis
        records) and kpl_user_records (the CWL documents inside them).
    awslogs_event: one direct subscription event {"awslogs": {"data": ...}}, not part of kinesis_events.
    awslogs_truth: the same truth for awslogs_event alone.
    streams: the log streams of kinesis_events and then of awslogs_event, for writing them in other formats.
    """

    kinesis_events: list[dict[str, Any]]
    truth: dict[str, Any]
    awslogs_event: dict[str, Any]
    awslogs_truth: dict[str, Any]
    streams: list[Stream]

    @property
    def sample_truth(self) -> dict[str, Any]:
        """Truth for the sample directory: the Kinesis events and the direct subscription event together."""
        return merge_truth(self.truth, self.awslogs_truth)


def build_streams(rng: Random, sims: list[FunctionSim], target_events: int) -> list[Stream]:
    """Log streams until at least target_events log events: first the showcase round-robin, then weighted picks."""
    window_ms = 600_000 + target_events * 20
    streams: list[Stream] = []
    total = 0
    while any(sim.showing for sim in sims):
        for sim in sims:
            if sim.showing:
                streams.append(sim.stream(BASE_MS + rng.randrange(window_ms), rng.randint(6, 15)))
                total += len(streams[-1].events)
    weights = list(accumulate(sim.spec.weight for sim in sims))
    while total < target_events:
        sim = rng.choices(sims, cum_weights=weights)[0]
        streams.append(sim.stream(BASE_MS + rng.randrange(window_ms), rng.randint(3, 60)))
        total += len(streams[-1].events)
    return streams


def build_corpus(target_events: int, seed: int = 1) -> Corpus:
    """Generate at least target_events CloudWatch log events, delivered as Lambda Kinesis events."""
    rng = Random(seed)
    sims = [FunctionSim(spec, rng) for spec in FLEET]
    streams = build_streams(rng, sims, target_events)
    data = sorted((p for s in streams for p in data_payloads(rng, s)), key=lambda p: p.arrival_ms)
    payloads = with_kpl_aggregates(rng, data)
    controls = [
        control_payload(rng, rng.randint(data[0].arrival_ms, data[-1].arrival_ms)) for _ in range(len(data) // 500 or 1)
    ]
    aggregates = [p for p in payloads if p.documents > 1]
    truth = stream_truth(
        streams,
        data_messages=len(data),
        records=len(payloads) + len(controls),
        control_messages=len(controls),
        kpl_records=len(aggregates),
        kpl_user_records=sum(p.documents for p in aggregates),
    )
    direct = sims[0].stream(BASE_MS + rng.randrange(600_000), 3)
    awslogs = {"awslogs": {"data": base64.b64encode(gzip_json(document(direct, 0, len(direct.events), 0))).decode()}}
    awslogs_truth = stream_truth(
        [direct], data_messages=1, records=0, control_messages=0, kpl_records=0, kpl_user_records=0
    )
    return Corpus(kinesis_events(rng, payloads + controls), truth, awslogs, awslogs_truth, [*streams, direct])


def write_sample(directory: str, target_events: int = 3000, seed: int = 1) -> list[str]:
    """Write the corpus as one JSON file per Lambda Kinesis event plus the direct subscription event; return paths.

    Files this function wrote before (kinesis-event-*.json) are replaced, so the directory matches the arguments.
    """
    corpus = build_corpus(target_events, seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("kinesis-event-*.json"):
        stale.unlink()
    files = {f"kinesis-event-{i:03d}.json": event for i, event in enumerate(corpus.kinesis_events, start=1)}
    files["awslogs-event.json"] = corpus.awslogs_event
    paths = []
    for name, event in files.items():
        path = out / name
        path.write_bytes(orjson.dumps(event, option=orjson.OPT_INDENT_2) + b"\n")
        paths.append(str(path))
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command line: python examples/generate.py DIR [--events N] [--seed S]."""
    parser = argparse.ArgumentParser(description="Write a deterministic sample of shipper input.")
    parser.add_argument("directory")
    parser.add_argument("--events", type=int, default=3000, help="target number of CloudWatch log events")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    paths = write_sample(args.directory, args.events, args.seed)
    size = sum(Path(p).stat().st_size for p in paths)
    print(f"wrote {len(paths)} files ({size:,} bytes) to {args.directory}", file=sys.stderr)


if __name__ == "__main__":
    main()
