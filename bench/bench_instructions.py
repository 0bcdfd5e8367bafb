"""The hot-path benchmark counted in CPU instructions under valgrind, which machine noise does not move.

    python bench/bench_instructions.py [--events N]

`bench_pipeline.py` times the implementations, and on a shared machine its ratios drift by 10-20%
from one run to the next. This script runs each implementation once over the same pickled corpus
under `valgrind --tool=cachegrind --cache-sim=no` and prints the instructions it executed (the run's
total less that of a run that only loads the corpus). Every run first passes one Kinesis event that
holds a KPL aggregate through shipper, so that what shipper imports on first use (the protobuf
runtime, about 65 M instructions) is loaded before counting, as in a long-running process.

The counts repeat to within about 1%, so a change that saves a few percent shows here when the
timings cannot show it. Instructions are not time: C code such as zlib and orjson does more per
cycle than the interpreter, so shipper's time ratios are somewhat worse than these.

Needs valgrind (`apt-get install valgrind`); each run takes a few seconds.
"""

from __future__ import annotations

import argparse
import base64
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_pipeline  # noqa: E402

from shipper import native  # noqa: E402
from shipper.decode import KPL_MAGIC  # noqa: E402
from shipper.handler import KinesisHandler  # noqa: E402

_PORT = "SHIPPER_BENCH_PORT"
IMPLEMENTATIONS: dict[str, Callable[[list[dict]], int]] = {
    "floor": bench_pipeline.run_floor,
    "naive": bench_pipeline.run_naive,
    "shipper": bench_pipeline.run_shipper,
    "handler, null": bench_pipeline.handler_run("null"),
    "handler, HTTP gzip": bench_pipeline.handler_run(f"http://127.0.0.1:{os.environ.get(_PORT, 0)}/ gzip=true"),
    "dispatch-only": bench_pipeline.run_dispatch_only,
}
"""The handler's HTTP sink posts to bench_pipeline's loopback server, started outside valgrind on port $_PORT."""
_INSTRUCTIONS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _with_aggregate(events: list[dict]) -> dict:
    """The first Kinesis event holding a KPL-aggregated record, else the first event."""
    for event in events:
        for record in event["Records"]:
            if base64.b64decode(record["kinesis"]["data"][:8])[:4] == KPL_MAGIC:
                return event
    return events[0]


def count(corpus: Path, name: str, port: int) -> int:
    """Instructions executed by one process that loads the corpus and runs `name` over it ("none": nothing)."""
    completed = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--run",
            name,
            "--corpus",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, _PORT: str(port)},
    )
    found = _INSTRUCTIONS.search(completed.stderr)
    if found is None:
        raise SystemExit(f"valgrind printed no instruction count:\n{completed.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="log events in the corpus (default 20000)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run is not None:  # a child under valgrind
        events = pickle.loads(Path(args.corpus).read_bytes())
        bench_pipeline.run_shipper([_with_aggregate(events)])
        bench_pipeline.configure_logging("ERROR")
        KinesisHandler.from_env({"SHIPPER_SINKS": "http://127.0.0.1:1/ gzip=true"})  # its imports, in every run
        if args.run != "none":
            IMPLEMENTATIONS[args.run](events)
        return

    if shutil.which("valgrind") is None:
        raise SystemExit("bench_instructions needs valgrind: apt-get install valgrind")
    corpus = bench_pipeline.build_corpus(args.events)
    server = subprocess.Popen([sys.executable, "-c", bench_pipeline.SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory(prefix="shipper-bench-") as scratch:
            path = Path(scratch) / "corpus.pickle"
            path.write_bytes(pickle.dumps(corpus.kinesis_events))
            baseline = count(path, "none", port)
            counts = {name: count(path, name, port) - baseline for name in IMPLEMENTATIONS}
    finally:
        server.kill()
        server.wait()
    print(
        f"corpus: {corpus.truth['log_events']:,} log events in {corpus.truth['records']:,} records; "
        f"shipper's hot path: {native.implementation()}"
    )
    for name, instructions in counts.items():
        print(
            f"{name:18s} {instructions / 1e6:8,.0f} M instructions  {instructions / counts['floor']:5.2f}x the floor  "
            f"{counts['naive'] / instructions:5.2f}x fewer than naive"
        )
    print(
        f"shipper: {counts['shipper'] / counts['floor']:.2f}x the floor, "
        f"{counts['naive'] / counts['shipper']:.2f}x fewer than naive "
        f"(targets, in time: <= 2.5x and >= 2x); the handler with the HTTP sink and gzip: "
        f"{counts['handler, HTTP gzip'] / counts['floor']:.2f}x the floor (target, in time: <= 3x)"
    )


if __name__ == "__main__":
    main()
