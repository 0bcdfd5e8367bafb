"""Throughput of the hot path (decode + classify + NDJSON), as ratios to baselines run in this process.

    python bench/bench_pipeline.py [--events N] [--repeat K]

Three implementations run over the same generated corpus of Lambda Kinesis events, interleaved,
best of K runs each, so machine noise hits them alike:

- floor:   base64 + gunzip + orjson.loads, touching each message and doing nothing else;
- naive:   stdlib json + gzip + one REPORT regex per line + json.dumps per event;
- shipper: the real Pipeline (decode, classify, contract events) + NDJSON encoding;
- handler, null / handler, HTTP gzip: the Lambda handler called once per Kinesis event, as in a deployed
  function (decode, classify, router, delivery, the partial-batch response), with the null sink, and with
  the HTTP sink compressing each batch with gzip, posting to a loopback server in its own process that
  reads the body and answers 200 (its work is not on this process's clock, as it would not be in Lambda);
- dispatch-only: the floor's decode, then one contract-shaped dict per line and NDJSON encoding, with
  no classification at all (no REPORT fields, signals, metrics, request tracking or validation). It
  is the least any pure-Python classifier that emits one dict per event must do, so its ratios bound
  what tuning shipper's Python can reach.

Targets: shipper takes at most 2.5x the floor's time and is at least 2x faster than naive; the handler with
the HTTP sink and gzip at most 3x the floor's time.
KPL-aggregated records (a few in the corpus) are skipped by the two baselines, which cannot read them;
shipper decodes them, so it does slightly more work than the baselines.
"""

from __future__ import annotations

import argparse
import base64
import gc
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from shipper import native  # noqa: E402
from shipper.handler import KinesisHandler, configure_logging  # noqa: E402
from shipper.pipeline import Pipeline  # noqa: E402
from shipper.sinks.base import encode_ndjson  # noqa: E402

from generate import build_corpus  # noqa: E402

_GZIP = b"\x1f\x8b"


def _documents(events: list[dict]) -> Iterator[dict]:
    """base64 + gunzip + orjson.loads of every gzip'd record: the floor's decode, shared with dispatch-only."""
    b64decode, decompress, loads = base64.b64decode, zlib.decompress, orjson.loads
    for event in events:
        for record in event["Records"]:
            data = b64decode(record["kinesis"]["data"])
            if data[:2] == _GZIP:
                yield loads(decompress(data, 47))


def run_floor(events: list[dict]) -> int:
    touched = 0
    for document in _documents(events):
        for log_event in document["logEvents"]:
            touched += len(log_event["message"]) > 0
    return touched


_NAIVE_REPORT = re.compile(
    r"REPORT RequestId: (\S+)\s+Duration: ([\d.]+) ms\s+Billed Duration: (\d+) ms\s+"
    r"Memory Size: (\d+) MB\s+Max Memory Used: (\d+) MB(?:\s+Init Duration: ([\d.]+) ms)?"
)


def run_naive(events: list[dict]) -> int:
    lines = []
    for event in events:
        for record in event["Records"]:
            data = base64.b64decode(record["kinesis"]["data"])
            if data[:2] != _GZIP:
                continue
            document = json.loads(gzip.decompress(data))
            if document["messageType"] != "DATA_MESSAGE":
                continue
            for log_event in document["logEvents"]:
                message = log_event["message"]
                match = _NAIVE_REPORT.match(message)
                out = {
                    "timestamp": log_event["timestamp"],
                    "log_group": document["logGroup"],
                    "log_stream": document["logStream"],
                    "event_id": log_event["id"],
                }
                if match:
                    out["type"] = "invocation"
                    out["request_id"] = match.group(1)
                    out["duration_ms"] = float(match.group(2))
                    out["billed_duration_ms"] = int(match.group(3))
                    out["memory_size_mb"] = int(match.group(4))
                    out["max_memory_used_mb"] = int(match.group(5))
                    out["init_duration_ms"] = float(match.group(6)) if match.group(6) else None
                else:
                    out["type"] = "log"
                    out["message"] = message
                lines.append(json.dumps(out))
    return len("\n".join(lines))


def run_dispatch_only(events: list[dict]) -> int:
    written = 0
    loads, dumps = orjson.loads, orjson.dumps
    for document in _documents(events):
        if document["messageType"] != "DATA_MESSAGE":
            continue
        template = {
            "type": "log",
            "timestamp": 0,
            "function": None,
            "log_group": document["logGroup"],
            "log_stream": document["logStream"],
            "account": document["owner"],
            "request_id": None,
            "event_id": None,
            "level": None,
            "message": None,
            "fields": None,
        }
        out = []
        for log_event in document["logEvents"]:
            message = log_event["message"]
            first = message[:1]
            if (first == "S" and message.startswith("START ")) or (first == "E" and message.startswith("END ")):
                continue
            line = template.copy()
            line["timestamp"] = log_event["timestamp"]
            line["event_id"] = log_event["id"]
            line["message"] = message
            if first == "{":
                line["fields"] = loads(message)
            out.append(line)
        written += len(b"".join([dumps(line, option=orjson.OPT_APPEND_NEWLINE) for line in out]))
    return written


def run_shipper(events: list[dict]) -> int:
    pipeline = Pipeline()
    written = 0
    for event in events:
        for outcome in pipeline.process_kinesis_event(event):
            written += len(encode_ndjson(outcome.events))
    return written


class _Context:
    """A Lambda context with plenty of time left: the benchmark measures throughput, not deadlines."""

    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def handler_run(sinks: str) -> Callable[[list[dict]], int]:
    """The Lambda handler with SHIPPER_SINKS=`sinks`, one call per Kinesis event; events written are counted."""

    def run(events: list[dict]) -> int:
        handler = KinesisHandler.from_env({"SHIPPER_SINKS": sinks})
        failed = sum(len(handler(event, _Context())["batchItemFailures"]) for event in events)
        handler.router.close()
        if failed:
            raise RuntimeError(f"{failed} records failed with SHIPPER_SINKS={sinks}")
        return int(handler.router.stats()["sinks"][sinks.split(":")[0]]["sent_events"])

    return run


SERVER = """
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
DELAY_S = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
class Discard(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(DELAY_S)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Discard)
print(server.server_address[1], flush=True)
server.serve_forever()
"""
"""An HTTP server that reads each body and answers 200 (after the seconds of its one argument, if given),
printing its port: the HTTP variant's destination."""


def _run_time(function: Callable[[list[dict]], int], events: list[dict]) -> float:
    started = time.perf_counter()
    function(events)
    return time.perf_counter() - started


def import_cost() -> str:
    """`python -X importtime` for the modules the hot path needs, summarised to the top-level imports.

    Measured with bytecode already compiled, as an installed package (and the Lambda zip) has it: the
    second of two runs that cache it in a temporary directory.
    """
    with tempfile.TemporaryDirectory(prefix="shipper-pyc-") as cache:
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        environment["PYTHONPYCACHEPREFIX"] = cache
        command = [sys.executable, "-X", "importtime", "-c", "import shipper.pipeline, shipper.sinks"]
        for _ in range(2):
            completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True, env=environment)
    rows = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if (
            cumulative.isdigit()
            and not name.startswith(" ")
            and (name.startswith("shipper") or name in ("orjson", "zlib", "re", "binascii", "hashlib"))
        ):
            rows.append((int(cumulative), name))
    total = sum(cost for cost, name in rows if name in ("shipper.pipeline", "shipper.sinks"))
    listing = ", ".join(f"{name} {cost / 1000:.1f} ms" for cost, name in sorted(rows, reverse=True)[:8])
    return f"import shipper.pipeline + shipper.sinks: {total / 1000:.1f} ms cumulative ({listing})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="log events in the corpus (default 200000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each implementation; the best counts")
    args = parser.parse_args()

    started = time.perf_counter()
    corpus = build_corpus(args.events)
    events = corpus.kinesis_events
    log_events = corpus.truth["log_events"]
    input_bytes = sum(len(r["kinesis"]["data"]) for e in events for r in e["Records"]) * 3 // 4
    print(
        f"corpus: {log_events:,} log events in {corpus.truth['records']:,} records, "
        f"{input_bytes / 1e6:.1f} MB compressed (built in {time.perf_counter() - started:.1f} s); "
        f"shipper's hot path: {native.implementation()}"
    )

    configure_logging("ERROR")
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        # The corpus is alive for the whole run; keep the collector from rescanning it on behalf of all of them.
        gc.collect()
        gc.freeze()
        implementations = {
            "floor": run_floor,
            "naive": run_naive,
            "shipper": run_shipper,
            "handler, null": handler_run("null"),
            "handler, HTTP gzip": handler_run(f"http://127.0.0.1:{port}/ gzip=true"),
            "dispatch-only": run_dispatch_only,
        }
        best = dict.fromkeys(implementations, float("inf"))
        for _ in range(args.repeat):
            for name, function in implementations.items():
                best[name] = min(best[name], _run_time(function, events))
    finally:
        server.kill()
        server.wait()

    print(f"{'':18s} {'time':>11s}  {'events/s':>12s}  {'MB/s in':>7s}  {'x floor':>7s}  {'vs naive':>8s}")
    for name, seconds in best.items():
        print(
            f"{name:18s} {seconds * 1000:8.1f} ms  {log_events / seconds:12,.0f}  {input_bytes / seconds / 1e6:7.1f}  "
            f"{seconds / best['floor']:6.2f}x  {best['naive'] / seconds:7.2f}x"
        )
    floor_ratio = best["shipper"] / best["floor"]
    naive_speedup = best["naive"] / best["shipper"]
    print(f"shipper / floor time:  {floor_ratio:.2f}x  (target <= 2.5x: {'met' if floor_ratio <= 2.5 else 'NOT met'})")
    print(f"naive / shipper time:  {naive_speedup:.2f}x  (target >= 2x: {'met' if naive_speedup >= 2 else 'NOT met'})")
    handler_ratio = best["handler, HTTP gzip"] / best["floor"]
    verdict = "met" if handler_ratio <= 3 else "NOT met"
    print(f"handler, HTTP gzip / floor time:  {handler_ratio:.2f}x  (target <= 3x: {verdict})")
    bound_floor = best["dispatch-only"] / best["floor"]
    bound_naive = best["naive"] / best["dispatch-only"]
    print(
        f"dispatch-only, the bound for a pure-Python classifier: {bound_floor:.2f}x the floor, "
        f"{bound_naive:.2f}x faster than naive"
    )
    print(import_cost())


if __name__ == "__main__":
    main()
