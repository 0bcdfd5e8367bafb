"""Soak test: the Lambda handler's full path under sustained load, against an HTTP server that fails on purpose.

    python bench/soak.py [--seconds S] [--events N]      (make soak; SOAK_SECONDS sets the time)

Generated Lambda Kinesis events go through KinesisHandler (Pipeline -> Router -> HTTP sink, dead letter
in a JSON-lines file), built from SHIPPER_* settings as in Lambda, over and over until the time is up.
The HTTP server runs in its own process on 127.0.0.1. It fails a small share of requests on purpose
(500, 429 with Retry-After, a connection closed without an answer, and 400, which the shipper dead-letters)
and counts every event it stores.

Reported: sustained events/s, peak RSS, RSS sampled every second, and three checks:
- every event the pipeline emitted was stored by the server or written to the dead letter, none twice;
- no record was left undelivered (no batchItemFailures);
- RSS does not grow after warm-up: the last third's maximum is within 10% of the first third's.
Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from shipper.handler import KinesisHandler, configure_logging  # noqa: E402

from generate import build_corpus  # noqa: E402

FAILURES = (("500", 0.01), ("429", 0.01), ("drop", 0.005), ("400", 0.002))
"""What the server does instead of storing a batch, and the share of requests it does it for."""
GROWTH_LIMIT = 1.10


class _Counting(BaseHTTPRequestHandler):
    """Stores (counts) NDJSON batches, except for the share of requests FAILURES picks."""

    protocol_version = "HTTP/1.1"
    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        state = self.server.state
        with state["lock"]:
            state["requests"] += 1
            roll, behaviour = state["rng"].random(), "ok"
            for name, share in FAILURES:
                if roll < share:
                    behaviour = name
                    break
                roll -= share
            state[behaviour] = state.get(behaviour, 0) + 1
        if behaviour == "drop":  # the connection closes without an answer; nothing was stored
            self.close_connection = True
            return
        if behaviour == "ok":
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            stored = body.count(b"\n")
            with state["lock"]:
                state["stored_events"] += stored
            self._answer(200, b'{"ok":true}')
        else:
            self._answer(int(behaviour), b'{"error":"on purpose"}', {"Retry-After": "0"} if behaviour == "429" else {})

    def do_GET(self) -> None:
        state = self.server.state
        with state["lock"]:
            counts = {key: value for key, value in state.items() if isinstance(value, int)}
        self._answer(200, orjson.dumps(counts))

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve() -> None:
    """The server process: prints its port, serves until standard input closes."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    httpd.daemon_threads = True
    httpd.state = {"lock": threading.Lock(), "rng": random.Random(7), "requests": 0, "stored_events": 0}  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    print(httpd.server_address[1], flush=True)
    sys.stdin.read()
    httpd.shutdown()


class _Context:
    """A Lambda context with plenty of time left: the soak measures throughput, not deadlines."""

    aws_request_id = "soak"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e6


def soak(seconds: float, target_events: int) -> int:
    corpus = build_corpus(target_events).kinesis_events
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory() as scratch:
            dead_letter = Path(scratch) / "dead-letter.ndjson"
            return _drive(corpus, port, dead_letter, seconds)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _drive(corpus: list[dict[str, Any]], port: int, dead_letter: Path, seconds: float) -> int:
    configure_logging("ERROR")
    handler = KinesisHandler.from_env(
        {
            "SHIPPER_SINKS": f"http://127.0.0.1:{port}/ingest read_timeout_s=10",
            "SHIPPER_DEAD_LETTER": f"jsonl:{dead_letter}",
            "SHIPPER_RETRY_BASE_S": "0.02",
            "SHIPPER_RETRY_CAP_S": "0.5",
        }
    )
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            samples.append((time.monotonic() - started, _rss_mb()))

    started = time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    invocations = failed_records = 0
    while time.monotonic() - started < seconds:
        event = corpus[invocations % len(corpus)]
        failed_records += len(handler(event, _Context())["batchItemFailures"])
        invocations += 1
    handler.router.close()
    elapsed = time.monotonic() - started
    done.set()
    sampler.join(5)

    emitted = handler.pipeline.counts.get("events_emitted", 0)
    log_events = handler.pipeline.counts.get("log_events_received", 0)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/stats")
        server = orjson.loads(connection.getresponse().read())
    finally:
        connection.close()
    entries = [orjson.loads(line) for line in dead_letter.read_bytes().splitlines()] if dead_letter.exists() else []
    dead_lettered = sum(len(entry.get("events", ())) for entry in entries)
    sink = handler.router.stats()["sinks"]["http"]
    third = max(1, len(samples) // 3)
    first, last = max(rss for _, rss in samples[:third]), max(rss for _, rss in samples[-third:])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"soak: {elapsed:.0f} s, {invocations:,} invocations, {log_events:,} log events, {emitted:,} events")
    print(f"sustained: {emitted / elapsed:,.0f} events/s ({log_events / elapsed:,.0f} log events/s)")
    print(
        f"server: {server['requests']:,} requests, failed on purpose: "
        + ", ".join(f"{name} {server.get(name, 0):,}" for name, _ in FAILURES)
    )
    print(
        f"events: {emitted:,} in = {server['stored_events']:,} stored by the server + {dead_lettered:,} dead-lettered; "
        f"sink counters: {sink['sent_events']:,} sent, {sink['retries']:,} retries, "
        f"{sink['dead_lettered_events']:,} dead-lettered, {sink['not_delivered_events']:,} not delivered"
    )
    print(f"peak RSS {peak_mb:.0f} MB; RSS max first third {first:.0f} MB, last third {last:.0f} MB")
    print(
        "RSS over time (s: MB): "
        + ", ".join(f"{t:.0f}: {rss:.0f}" for t, rss in samples[:: max(1, len(samples) // 12)])
    )
    checks = {
        "every event stored or dead-lettered, none twice": emitted == server["stored_events"] + dead_lettered,
        "the server stored what the sink counted as sent": server["stored_events"] == sink["sent_events"],
        "no record left undelivered": failed_records == 0 and sink["not_delivered_events"] == 0,
        f"RSS after warm-up within {GROWTH_LIMIT - 1:.0%} of the first third": last <= first * GROWTH_LIMIT,
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--events", type=int, default=60_000, help="log events in the generated corpus, replayed")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    if args.seconds < 3:
        parser.error("--seconds: at least 3, for RSS samples in each third of the run")
    return soak(args.seconds, args.events)


if __name__ == "__main__":
    sys.exit(main())
