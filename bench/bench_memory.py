"""Peak memory and eviction cost of shipper's bounded state, each case in its own process.

    python bench/bench_memory.py [CASE ...]    (cases: bomb-handler bomb-run short-lines
                                                short-lines-60mib near-estimate requests-300k
                                                requests-600k streams functions eviction)

- bomb-handler / bomb-run: one Kinesis batch of 20 records, 1.4 MB as sent, each record inflating
  to about 50 MB of log events, through the Lambda handler and through `shipper run --sink null`;
- short-lines: a full 6 MB batch, six 1 MiB records of 190,794 20-character lines each (16.7 MB
  inflated), through the Lambda handler; short-lines-60mib: one record of 60 MiB of such lines
  (706,905), which the handler rejects by its estimated cost; near-estimate: six records of 245,000
  such lines each, just under that estimate. Built in a child process, so only the handler is measured;
- requests: 300,000 and 600,000 invocations with a cold start (one request id each) through the classifier;
- streams: 300,000 log streams each left with a request in progress, through the classifier;
- functions: 300,000 functions through the run report, to its JSON and its tables;
- eviction: cost per log line of a new stream once the classifier's memory of streams is full,
  against the same before it is full, at 10,000 and 100,000 streams.

Peak RSS is the process's own high-water mark (ru_maxrss), taken at its end.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
UUID = "8f6c4d1e-{:04x}-4000-8000-{:012x}"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _document(stream: str, messages: list[str]) -> dict[str, Any]:
    events = [{"id": str(i), "timestamp": 1716220800000 + i, "message": m} for i, m in enumerate(messages)]
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/bomb",
        "logStream": stream,
        "subscriptionFilters": ["f"],
        "logEvents": events,
    }


def bomb_event(records: int = 20, inflated: int = 50 * 1024 * 1024) -> dict[str, Any]:
    """A Kinesis batch whose every record is a small gzip of about `inflated` bytes of log events."""
    line = "INFO something happened " + "x" * 900
    return kinesis_batch([line] * (inflated // (len(line) + 60)), records)


def kinesis_batch(messages: list[str], records: int) -> dict[str, Any]:
    """A Kinesis batch of `records` records, each the same gzip'd document of `messages`."""
    document = _document("2024/05/20/[$LATEST]bomb", messages)
    data = base64.b64encode(gzip.compress(json.dumps(document).encode(), compresslevel=9)).decode()
    return {
        "Records": [
            {"eventSource": "aws:kinesis", "kinesis": {"data": data, "sequenceNumber": f"{n:056d}"}}
            for n in range(records)
        ]
    }


class _Context:
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


def case_bomb_handler() -> str:
    from shipper.handler import KinesisHandler

    event = bomb_event()
    sent = sum(len(r["kinesis"]["data"]) for r in event["Records"])
    handler = KinesisHandler.from_env({"SHIPPER_SINKS": "null"})
    response = handler(event, _Context())
    return f"{sent / 1e6:.1f} MB sent, failures {len(response['batchItemFailures'])}"


def case_bomb_run() -> str:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "batch.json"
        path.write_text(json.dumps(bomb_event()))
        command = [sys.executable, "-m", "shipper.cli", "run", str(path), "--sink", "null", "--quiet"]
        code = subprocess.call(command, cwd=ROOT)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return f"shipper run peak {peak:,.0f} MB (exit {code})"


_SHORT_LINES = """
import json, sys
sys.path.insert(0, "bench")
from bench_memory import kinesis_batch
lines, records, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
open(path, "w").write(json.dumps(kinesis_batch(["INFO x " + "x" * 20] * lines, records)))
"""
"""Writes a Kinesis batch of `records` records, each a gzip of `lines` 20-character log lines, to a file."""


def _short_lines_handler(lines: int, records: int) -> str:
    from shipper.handler import KinesisHandler

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "batch.json")
        subprocess.run([sys.executable, "-c", _SHORT_LINES, str(lines), str(records), path], cwd=ROOT, check=True)
        with open(path) as batch:
            event = json.load(batch)
        handler = KinesisHandler.from_env({"SHIPPER_SINKS": "null", "SHIPPER_DEAD_LETTER": f"dir:{scratch}/dl"})
        response = handler(event, _Context())
    sent = handler.router.stats()["sinks"]["null"]["sent_events"]
    return f"{sent:,} events sent, {handler.router.rejects} rejected, failures {len(response['batchItemFailures'])}"


def case_short_lines() -> str:
    return _short_lines_handler(190_794, 6)


def case_short_lines_60mib() -> str:
    return _short_lines_handler(706_905, 1)


def case_near_estimate() -> str:
    return _short_lines_handler(245_000, 6)


def _classify_many(count: int, per_document: int, make: Any) -> None:
    from shipper.classify import Classifier

    classifier = Classifier()
    for start in range(0, count, per_document):
        for document in make(start, min(count, start + per_document)):
            classifier.classify(document, [], [])


def _request_documents(start: int, stop: int) -> list[dict[str, Any]]:
    lines = [
        f"REPORT RequestId: {UUID.format(n >> 48, n)}\tDuration: 1.00 ms\tBilled Duration: 2 ms\t"
        f"Memory Size: 128 MB\tMax Memory Used: 60 MB\tInit Duration: 100.00 ms\t"
        for n in range(start, stop)
    ]
    return [_document("2024/05/20/[$LATEST]s", lines)]


def _stream_documents(start: int, stop: int) -> list[dict[str, Any]]:
    return [
        _document(f"2024/05/20/[$LATEST]{n:032x}", [f"START RequestId: {UUID.format(0, n)} Version: $LATEST"])
        for n in range(start, stop)
    ]


def case_requests_300k() -> str:
    _classify_many(300_000, 1000, _request_documents)
    return "300,000 request ids"


def case_requests_600k() -> str:
    _classify_many(600_000, 1000, _request_documents)
    return "600,000 request ids"


def case_streams() -> str:
    _classify_many(300_000, 1000, _stream_documents)
    return "300,000 streams"


def case_functions() -> str:
    from rich.console import Console

    from shipper.report import FleetReport, Prices, render

    report = FleetReport()
    for n in range(300_000):
        report.add(
            [
                {
                    "type": "invocation",
                    "function": f"function-{n:06d}",
                    "log_group": f"/aws/lambda/function-{n:06d}",
                    "duration_ms": 10.0 + n % 100,
                    "billed_duration_ms": 11 + n % 100,
                    "memory_size_mb": 128,
                    "max_memory_used_mb": 60 + n % 7,
                    "cold_start": n % 3 == 0,
                    "init_duration_ms": 100.0,
                }
            ]
        )
    data = report.to_dict(Prices())
    render(data, Console(file=io.StringIO(), width=160))
    return f"{len(data['functions']):,} rows"


def case_eviction() -> str:
    import shipper.classify as classify

    out = []
    for capacity in (10_000, 100_000):
        classify._MAX_TRACKED_STREAMS = capacity
        classifier = classify.Classifier()
        docs = _stream_documents(0, 3 * capacity)
        started = time.perf_counter()
        for document in docs[:capacity]:
            classifier.classify(document, [], [])
        filling = (time.perf_counter() - started) / capacity
        started = time.perf_counter()
        for document in docs[capacity:]:
            classifier.classify(document, [], [])
        full = (time.perf_counter() - started) / (2 * capacity)
        out.append(
            f"{capacity:,}: {filling * 1e6:.2f} us/line filling, {full * 1e6:.2f} us/line full ({full / filling:.1f}x)"
        )
    return "; ".join(out)


CASES = {
    "bomb-handler": case_bomb_handler,
    "bomb-run": case_bomb_run,
    "short-lines": case_short_lines,
    "short-lines-60mib": case_short_lines_60mib,
    "near-estimate": case_near_estimate,
    "requests-300k": case_requests_300k,
    "requests-600k": case_requests_600k,
    "streams": case_streams,
    "functions": case_functions,
    "eviction": case_eviction,
}


def main() -> None:
    names = sys.argv[1:] or list(CASES)
    if os.environ.get("_BENCH_MEMORY_CASE"):
        result = CASES[os.environ["_BENCH_MEMORY_CASE"]]()
        print(f"{result}; peak RSS {_rss_mb():,.0f} MB")
        return
    for name in names:
        environ = {**os.environ, "_BENCH_MEMORY_CASE": name, "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, __file__], env=environ, capture_output=True, text=True, check=False)
        print(f"{name:13} {(result.stdout.strip() or result.stderr.strip()[-500:])}", flush=True)


if __name__ == "__main__":
    main()
