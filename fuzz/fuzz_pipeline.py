"""Coverage-guided fuzzing of the whole Lambda handler path with atheris (`make fuzz`).

Each input becomes a Kinesis event for the handler (decode -> classify -> router -> every local
sink: null, stdout, jsonl, jsonl.gz, dir, with a dir dead letter), and its events go on to the run
report and the Prometheus registry, which add up across inputs as in a long-lived container. Any
exception is a finding, and so is a failed record, an event that breaks the contract, or a number
in the report or the exposition that is not finite. Inputs are mutated around real shapes: gzip'd
CloudWatch Logs envelopes, KPL aggregates (with a valid digest, so they are taken apart), and log
lines (REPORT, platform JSON, metric lines of every format) whose numeric fields are drawn from
extreme values (EXTREMES, fuzz/numbers.dict) or from the fuzzer's bytes. It refuses to start unless
the compiled hot path is what runs (or SHIPPER_PURE_PYTHON=1 asks for pure Python); `make fuzz`
(fuzz/run.py) runs it on a sanitized build.

    python fuzz/fuzz_pipeline.py [-max_total_time=SECONDS] [-runs=N] [-dict=fuzz/numbers.dict] [corpus dir]
"""

from __future__ import annotations

import base64
import gzip
import importlib
import io
import logging
import math
import os
import shutil
import sys
import tempfile
from typing import Any

import atheris
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

# The tests' helpers, for the check they share with the property tests and the KPL aggregates they build.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
from helpers import EXTREMES, kpl_aggregate, numbers_in

with atheris.instrument_imports():
    import orjson

    from shipper import native
    from shipper.contract import contract_violations
    from shipper.decode import KPL_MAGIC, RawRecord
    from shipper.handler import KinesisHandler
    from shipper.pipeline import Pipeline
    from shipper.report import FleetReport, Prices, render
    from shipper.telemetry import Telemetry

    HOT_PATH = {name: importlib.import_module(name) for name in native.COMPILED}

_TIME = '{"time":"2024-05-20T16:29:45.120Z",'
# Each `#` is replaced by a number.
TEMPLATES = (
    "REPORT RequestId: r\tDuration: # ms\tBilled Duration: # ms\tMemory Size: # MB\tMax Memory Used: # MB\t"
    "Init Duration: # ms\t",
    "REPORT RequestId: r\tDuration: # ms\tBilled Duration: # ms\tMemory Size: # MB\tMax Memory Used: # MB\t"
    "Restore Duration: # ms\tBilled Restore Duration: # ms\tStatus: error\tError Type: Runtime.OutOfMemory\t",
    "REPORT RequestId: r Duration: # ms Billed Duration: # ms Memory Size: # MB Max Memory Used: # MB",
    "INIT_REPORT Init Duration: # ms\tPhase: init\tStatus: error\tError Type: Runtime.Unknown",
    "2024-05-20T16:29:45.120Z r Task timed out after # seconds",
    _TIME + '"type":"platform.report","record":{"requestId":"r","status":"timeout","metrics":{"durationMs":#,'
    '"billedDurationMs":#,"memorySizeMB":#,"maxMemoryUsedMB":#,"initDurationMs":#,"restoreDurationMs":#}}}',
    _TIME + '"type":"platform.initReport","record":{"phase":"init","status":"error","metrics":{"durationMs":#}}}',
    "page.views:#|c|@#|#env:#|T#",
    "hits:#|c",
    "queue.depth:#:#|g",
    "MONITORING|#|#|count|orders|#env:#",
    '{"m":"orders","v":#,"e":#,"t":["env:#"]}',
    "MONITORING|#|Gigabytes|heap|shop|env=#",
    '{"_aws":{"Timestamp":#,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":'
    '[{"Name":"M","Unit":"Gigabytes"},{"Name":"C","Unit":"Count"}]}]},"D":"#","M":[#,#],"C":#}',
    "[ERROR] KeyError: 'x'\nTraceback (most recent call last):\n",
)
_RESET_EVERY = 2000
"""Inputs after which the sinks' files are removed and the handler built again, so the disk does not fill."""
_CHECK_EVERY = 64
"""Inputs between two renderings of the report and the exposition (they add up every input before them)."""


class _Context:
    aws_request_id = "fuzz"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class _Harness:
    def __init__(self) -> None:
        self.directory = ""
        self.handler: KinesisHandler | None = None
        self.inputs = 0
        self.report = FleetReport()
        self.telemetry = Telemetry()

    def reset(self) -> KinesisHandler:
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = tempfile.mkdtemp(prefix="shipper-fuzz-")
        out = self.directory
        sinks = f"null;stdout;jsonl:{out}/e.ndjson;jsonl:{out}/e.ndjson.gz name=gz;dir:{out}/dir"
        self.handler = KinesisHandler.from_env(
            {"SHIPPER_SINKS": sinks, "SHIPPER_DEAD_LETTER": f"dir:{out}/dead", "AWS_LAMBDA_LOG_GROUP_NAME": "/own"}
        )
        return self.handler

    def handler_for_next_input(self) -> KinesisHandler:
        self.inputs += 1
        if self.handler is None or self.inputs % _RESET_EVERY == 0:
            return self.reset()
        return self.handler


_HARNESS = _Harness()


def _envelope(messages: list[str]) -> bytes:
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": "1",
        "logGroup": "/aws/lambda/fuzz",
        "logStream": "s",
        "logEvents": [{"id": str(i), "timestamp": 1716222585000 + i, "message": m} for i, m in enumerate(messages)],
    }
    return gzip.compress(orjson.dumps(document), mtime=0)


def _number(provider: atheris.FuzzedDataProvider) -> str:
    if provider.ConsumeBool():
        return EXTREMES[provider.ConsumeIntInRange(0, len(EXTREMES) - 1)]
    return provider.ConsumeUnicodeNoSurrogates(24)


def _line(provider: atheris.FuzzedDataProvider) -> str:
    parts = TEMPLATES[provider.ConsumeIntInRange(0, len(TEMPLATES) - 1)].split("#")
    return parts[0] + "".join(_number(provider) + part for part in parts[1:])


def _payload(provider: atheris.FuzzedDataProvider, *, aggregate: bool = True) -> bytes:
    shape = provider.ConsumeIntInRange(0, 4 if aggregate else 3)
    if shape == 4:  # a valid aggregate (its digest right) of payloads of the other shapes
        return kpl_aggregate([_payload(provider, aggregate=False) for _ in range(provider.ConsumeIntInRange(1, 4))])
    if shape == 0:
        return provider.ConsumeBytes(provider.ConsumeIntInRange(0, 4096))
    if shape == 1:
        return gzip.compress(provider.ConsumeBytes(provider.ConsumeIntInRange(0, 4096)), mtime=0)
    if shape == 2:
        return KPL_MAGIC + provider.ConsumeBytes(provider.ConsumeIntInRange(0, 4096))
    lines = [_line(provider) for _ in range(provider.ConsumeIntInRange(1, 4))]
    return _envelope(lines + lines)  # each line twice: sums of repeated values must not overflow


def _kinesis_event(payloads: list[bytes]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "kinesis": {"sequenceNumber": str(1000 + i), "data": base64.b64encode(payload).decode()},
                "eventSource": "aws:kinesis",
                "eventID": f"shardId-000000000000:{1000 + i}",
            }
            for i, payload in enumerate(payloads)
        ]
    }


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    payloads = [_payload(provider) for _ in range(provider.ConsumeIntInRange(1, 3))]
    response = _HARNESS.handler_for_next_input()(_kinesis_event(payloads), _Context())
    if response != {"batchItemFailures": []}:
        raise AssertionError(f"records failed with a dead letter configured: {response}")

    pipeline = Pipeline(max_decompressed_bytes=1 << 20)
    events = []
    for index, payload in enumerate(payloads):
        for outcome in pipeline.process_records([RawRecord(payload, str(index), "fuzz")]):
            events += outcome.events
            for reject in outcome.rejects:
                if not reject.reason or not reject.code:
                    raise AssertionError(f"reject without a reason: {reject!r}")
    for event in events:
        problems = contract_violations(event)
        if problems:
            raise AssertionError(problems)
    _HARNESS.report.add(events)
    _HARNESS.telemetry.observe_events(events)
    if _HARNESS.inputs % _CHECK_EVERY == 1:
        _check_report_and_exposition()


def _check_report_and_exposition() -> None:
    report = _HARNESS.report.to_dict(Prices())
    if not all(math.isfinite(number) for number in numbers_in(report)):
        raise AssertionError(f"a number in the report is not finite: {report}")
    render(report, Console(file=io.StringIO(), width=200))
    exposition = generate_latest(_HARNESS.telemetry.registry).decode()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if not math.isfinite(sample.value):
                raise AssertionError(f"sample not finite: {sample}")


def _check_implementation() -> None:
    """Stop unless every module of the hot path runs compiled, or pure Python was asked for and runs."""
    pure = [name for name, module in HOT_PATH.items() if not str(module.__file__).endswith(".so")]
    wanted_pure = os.environ.get(native.PURE_PYTHON_VARIABLE) == "1"
    if pure != (list(HOT_PATH) if wanted_pure else []):
        raise SystemExit(f"fuzz_pipeline: {native.implementation()}, and these run as pure Python: {pure}")
    print(f"fuzz_pipeline: {native.implementation()} from {native.PACKAGE_DIR}", file=sys.stderr, flush=True)


def main() -> None:
    _check_implementation()
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the stdout sink's output is not the fuzzer's
    logging.disable(logging.CRITICAL)  # rejects and dead letters are logged by the thousand; exceptions are findings
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
