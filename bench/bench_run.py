"""Throughput and peak memory of `shipper run` over large export-style inputs, written in /tmp.

    python bench/bench_run.py [--size-mb N] [--events N] [--formats filter-log-events,export,firehose,kinesis]
                              [--kinesis-events N] [--rounds K] [--dir DIR]

Builds the simulated fleet's log streams once (examples/exports.py), then writes each format at
about --size-mb by repeating them under new stream names (and, for filter-log-events, as one JSON
document, the way the CLI prints a merged result). Each input runs through `shipper run --sink null`
in its own process; reported: time, log events/s, MB/s of the input as stored, and peak RSS.

`kinesis` writes the core benchmark's generated corpus (--kinesis-events log events, default 300,000)
as saved Lambda Kinesis events and also runs, each in its own process over the same files, the floor
(read each file, base64 + gunzip + orjson.loads, touch each message), the naive script of
bench_pipeline.py and `shipper run --sink null` (no report), --rounds times each, interleaved: the
whole-process ratios, start-up and reading included, in CPU time and in wall time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from exports import copies, event_id, export_objects, firehose_object, fleet, interleaved  # noqa: E402
from generate import Stream, build_corpus  # noqa: E402


def write_filter_log_events(path: Path, streams: list[Stream], size: int) -> int:
    """One merged filter-log-events document of about `size` bytes (pretty-printed like the CLI's)."""
    written = 0
    events = 0
    with path.open("wb") as out:
        out.write(b'{\n    "events": [\n')
        first = True
        for group in copies(streams, 10_000):
            chunk = []
            for s, index in interleaved(group):
                ts, message = s.events[index]
                event = {
                    "logStreamName": s.name,
                    "timestamp": ts,
                    "message": message,
                    "ingestionTime": ts + 112,
                    "eventId": event_id(s, index),
                }
                chunk.append(orjson.dumps(event, option=orjson.OPT_INDENT_2))
            body = b",\n".join(chunk)
            out.write(body if first else b",\n" + body)
            first = False
            written += len(body)
            events += len(chunk)
            if written >= size:
                break
        out.write(b'\n    ],\n    "searchedLogStreams": []\n}\n')
    return events


def write_export(directory: Path, streams: list[Stream], size: int) -> int:
    """CreateExportTask objects of about `size` bytes in total (compressed), under aws/lambda/NAME prefixes."""
    written = events = 0
    for n, group in enumerate(copies(streams, 10_000)):
        for s in group:
            prefix = f"aws/lambda/{s.spec.name}" if not s.spec.log_group else "fleet/shared-logs"
            for key, body in export_objects([s], f"{prefix}/copy{n}", events_per_object=5000).items():
                path = directory / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)
                written += len(body)
            events += len(s.events)
        if written >= size:
            return events
    return events


def write_firehose(directory: Path, streams: list[Stream], size: int) -> int:
    """Firehose objects (concatenated gzip members) of about `size` bytes in total, one per copy of the fleet."""
    written = events = 0
    directory.mkdir(parents=True, exist_ok=True)
    for n, group in enumerate(copies(streams, 10_000)):
        body, _ = firehose_object(group, seed=n)
        (directory / f"central-logs-{n:04d}.gz").write_bytes(body)
        written += len(body)
        events += sum(len(s.events) for s in group)
        if written >= size:
            return events
    return events


def write_kinesis(directory: Path, log_events: int) -> int:
    """The generated corpus as saved Lambda Kinesis events, one file per event; returns the log events."""
    corpus = build_corpus(log_events)
    directory.mkdir(parents=True, exist_ok=True)
    for index, event in enumerate(corpus.kinesis_events):
        (directory / f"kinesis-event-{index:05d}.json").write_bytes(orjson.dumps(event))
    return corpus.truth["log_events"]


_FLOOR = """
import base64, pathlib, sys, zlib
import orjson
touched = 0
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    for record in orjson.loads(path.read_bytes())["Records"]:
        data = base64.b64decode(record["kinesis"]["data"])
        if data[:2] == b"\\x1f\\x8b":
            for log_event in orjson.loads(zlib.decompress(data, 47))["logEvents"]:
                touched += len(log_event["message"]) > 0
"""
_NAIVE = """
import pathlib, sys
import orjson
sys.path.insert(0, "bench")
from bench_pipeline import run_naive
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    run_naive([orjson.loads(path.read_bytes())])
"""


def whole_processes(directory: Path, rounds: int) -> dict[str, list[Launched]]:
    """The floor, the naive script and `shipper run --sink null` as whole processes over saved Kinesis events,
    `rounds` times each, interleaved so that the machine's noise hits them alike."""
    commands = {
        "floor": [sys.executable, "-c", _FLOOR, str(directory)],
        "naive": [sys.executable, "-c", _NAIVE, str(directory)],
        "shipper": shipper_run(directory),
    }
    runs: dict[str, list[Launched]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            runs[name].append(launch(command))
    return runs


class Launched(NamedTuple):
    """A command's wall time, its CPU time (user + system), peak RSS in MB and exit status."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    status: int


_LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(usage.ru_utime + usage.ru_stime, usage.ru_maxrss); sys.exit(code)"
)
"""Runs the command from a small process, so the peak RSS and CPU time are the command's own (a child forked
from this big process would start with its memory counted), and the launcher's own start-up is not."""


def launch(command: list[str]) -> Launched:
    started = time.perf_counter()
    launched = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], cwd=ROOT, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    cpu, rss = launched.stdout.split()[-2:]
    return Launched(elapsed, float(cpu), int(rss) / 1024, launched.returncode)


def bytecode() -> None:
    """Compile shipper's modules (and the naive script's) to bytecode, as installing a package does: a run
    measured without it would also measure compiling them from source, which a machine with
    PYTHONDONTWRITEBYTECODE set does on every run."""
    folders = [str(ROOT / name) for name in ("shipper", "bench", "examples")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True)


def shipper_run(path: Path) -> list[str]:
    """`shipper run PATH --sink null --quiet`, as this benchmark runs it."""
    return [sys.executable, "-m", "shipper.cli", "run", str(path), "--sink", "null", "--quiet"]


def measure(path: Path) -> dict[str, float]:
    """Run shipper on `path` in its own process: seconds, peak RSS in MB, log events and bytes read."""
    report = path.with_name(path.name + ".report.json")
    launched = launch([*shipper_run(path), "--report", str(report)])
    facts = orjson.loads(report.read_bytes())["run"]
    report.unlink()
    return {
        "seconds": launched.seconds,
        "peak_rss_mb": launched.peak_rss_mb,
        "log_events": facts["log_events"],
        "bytes": facts["bytes_read"],
        "status": launched.status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--events", type=int, default=100_000, help="log events of the fleet before copies")
    parser.add_argument("--formats", default="filter-log-events,export,firehose,kinesis")
    parser.add_argument("--kinesis-events", type=int, default=300_000, help="log events of the kinesis input")
    parser.add_argument("--dir", help="where to write the inputs (default: a temporary directory in /tmp)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each whole process over the kinesis input")
    args = parser.parse_args()
    streams, _ = fleet(args.events)
    size = args.size_mb * 1_000_000
    bytecode()
    with tempfile.TemporaryDirectory(dir=args.dir or "/tmp", prefix="shipper-bench-") as scratch:
        for name in args.formats.split(","):
            target = Path(scratch) / name
            started = time.perf_counter()
            if name == "filter-log-events":
                target = target.with_suffix(".json")
                written = write_filter_log_events(target, streams, size)
            elif name == "export":
                written = write_export(target, streams, size)
            elif name == "kinesis":
                written = write_kinesis(target, args.kinesis_events)
            else:
                written = write_firehose(target, streams, size)
            built = time.perf_counter() - started
            result = measure(target)
            mb = result["bytes"] / 1e6
            print(
                f"{name:18} {mb:8,.0f} MB as stored, {result['log_events']:>11,.0f} log events "
                f"(written {written:,} in {built:.0f} s): {result['seconds']:6.1f} s, "
                f"{result['log_events'] / result['seconds']:>9,.0f} events/s, {mb / result['seconds']:6.1f} MB/s, "
                f"peak RSS {result['peak_rss_mb']:,.0f} MB, exit {result['status']}",
                flush=True,
            )
            if name == "kinesis":
                compare(whole_processes(target, args.rounds))


def compare(runs: dict[str, list[Launched]]) -> None:
    """Each command's CPU and wall time (best, and the range over rounds), and shipper's against the baselines."""
    for name, launched in runs.items():
        cpu, wall = sorted(r.cpu_seconds for r in launched), sorted(r.seconds for r in launched)
        print(
            f"{'':18} {name:8} CPU {cpu[0]:.2f} s (up to {cpu[-1]:.2f}), wall {wall[0]:.2f} s (up to {wall[-1]:.2f}), "
            f"peak RSS {max(r.peak_rss_mb for r in launched):,.0f} MB",
            flush=True,
        )
    for clock in ("cpu_seconds", "seconds"):
        best = {name: min(getattr(r, clock) for r in launched) for name, launched in runs.items()}
        print(
            f"{'':18} best {'CPU' if clock == 'cpu_seconds' else 'wall'} time: shipper run takes "
            f"{best['shipper'] / best['floor']:.2f}x the floor's and is {best['naive'] / best['shipper']:.2f}x faster "
            "than naive (whole processes)",
            flush=True,
        )


if __name__ == "__main__":
    main()
