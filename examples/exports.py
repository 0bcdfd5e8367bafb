"""The generator's log streams written in the formats people export CloudWatch Logs in, with the truth.

reference/formats.md section 7 says what each looks like; this module writes them from the same
simulated fleet as `generate.py`, so the ground truth (`generate.stream_truth`) holds for every
format that keeps log streams and message text:

    filter_log_events  aws logs filter-log-events --output json (events of a log group, interleaved)
    get_log_events     aws logs get-log-events (one stream)
    tail               aws logs tail, --format detailed | short | json, optionally with ANSI colours
    export_objects     CreateExportTask objects: PREFIX/TASK/STREAM/000000.gz and the permission probe
    firehose_object    a Firehose-to-S3 object: the subscription payloads' gzip members, optionally gzip'd again
    ndjson             one CloudWatch log event a line
    insights_results   Logs Insights GetQueryResults JSON (`sort @timestamp asc`), insights_csv its CSV
    sam_logs           `sam logs` text: `STREAM TIME message`, JSON messages indented

    python examples/exports.py DIR [--events N] [--seed S]

writes every format under DIR, one directory each. Same arguments, same bytes.

    python examples/exports.py examples/sample-text --sample-text

writes the bundled sample (`generate.py examples/sample`: the same log streams, the direct subscription
event's included) as `aws logs tail` text, one file per log group, for people to read.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import gzip
import hashlib
import heapq
import io
import json
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import orjson

from generate import (
    ACCOUNT,
    FLEET,
    FunctionSim,
    Stream,
    build_corpus,
    build_streams,
    control_payload,
    data_payloads,
    iso_ms,
    stream_truth,
)

PROBE = "aws-logs-write-test"
PROBE_TEXT = b"Permission Check Successful"
_INGESTION_DELAY_MS = 112
_GREEN, _CYAN, _RESET = "\x1b[32m", "\x1b[36m", "\x1b[0m"


def fleet(target_events: int, seed: int = 1) -> tuple[list[Stream], dict[str, Any]]:
    """Log streams of the simulated fleet (at least target_events log events) and their ground truth."""
    rng = Random(seed)
    sims = [FunctionSim(spec, rng) for spec in FLEET]
    streams = build_streams(rng, sims, target_events)
    return streams, stream_truth(streams)


def by_log_group(streams: Iterable[Stream]) -> dict[str, list[Stream]]:
    """Streams per log group, in the order given."""
    groups: dict[str, list[Stream]] = {}
    for s in streams:
        groups.setdefault(s.spec.group, []).append(s)
    return groups


def copies(streams: list[Stream], count: int) -> Iterator[list[Stream]]:
    """`count` copies of the streams under new stream names (more input of the same shape, for load tests)."""
    for number in range(count):
        yield [dataclasses.replace(s, name=f"{s.name}-{number}") for s in streams]


def event_id(s: Stream, index: int) -> str:
    """The 56-digit id of a stream's index-th event: its time in the high bits, like CloudWatch's."""
    salt = int.from_bytes(hashlib.sha256(s.name.encode()).digest()[:12], "big")
    return str((s.events[index][0] << 144) + salt + index)


def interleaved(streams: Iterable[Stream]) -> Iterator[tuple[Stream, int]]:
    """(stream, event index) of several streams merged by time, each stream's own order kept."""
    runs = [_timed(n, s) for n, s in enumerate(streams)]
    for _, _, index, s in heapq.merge(*runs, key=lambda item: item[:2]):
        yield s, index


def _timed(number: int, s: Stream) -> Iterator[tuple[int, int, int, Stream]]:
    for index, (ts, _) in enumerate(s.events):
        yield ts, number, index, s


def _cli_event(s: Stream, index: int, *, stream_name: bool = True, group: bool = False) -> dict[str, Any]:
    ts, message = s.events[index]
    event: dict[str, Any] = {"logStreamName": s.name} if stream_name else {}
    if group:
        event = {"logGroupName": s.spec.group, **event}
    event.update(timestamp=ts, message=message, ingestionTime=ts + _INGESTION_DELAY_MS)
    if stream_name:
        event["eventId"] = event_id(s, index)
    return event


def filter_log_events(streams: Iterable[Stream], *, indent: bool = True) -> bytes:
    """The CLI's merged filter-log-events output for streams of one log group (indent=4, as the CLI prints)."""
    events = [_cli_event(s, i) for s, i in interleaved(streams)]
    return _cli_json({"events": events, "searchedLogStreams": []}, indent)


def get_log_events(s: Stream, *, indent: bool = True) -> bytes:
    """get-log-events output for one stream: no stream name, no event ids."""
    events = [_cli_event(s, i, stream_name=False) for i in range(len(s.events))]
    first, last = event_id(s, 0), event_id(s, len(s.events) - 1)
    return _cli_json({"events": events, "nextForwardToken": f"f/{last}", "nextBackwardToken": f"b/{first}"}, indent)


def _cli_json(document: dict[str, Any], indent: bool) -> bytes:
    # The AWS CLI prints with json.dumps(indent=4, ensure_ascii=False).
    return (json.dumps(document, indent=4, ensure_ascii=False) if indent else json.dumps(document)).encode() + b"\n"


def tail(streams: Iterable[Stream], style: str = "detailed", *, color: bool = False) -> bytes:
    """`aws logs tail` output: one event a line (message rstripped), continuation lines unmarked."""
    out = io.StringIO()
    for s, index in interleaved(streams):
        ts, message = s.events[index]
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1000))
        if style == "short":
            head = _paint(moment, _GREEN, color)
        else:
            micros = f".{ts % 1000 * 1000:06d}" if style == "detailed" or ts % 1000 else ""
            head = f"{_paint(moment + micros + '+00:00', _GREEN, color)} {_paint(s.name, _CYAN, color)}"
        if style == "json":
            message = _pretty_json(message)
        out.write(f"{head} {message}".rstrip() + "\n")
    return out.getvalue().encode()


def _paint(text: str, colour: str, on: bool) -> str:
    return f"{colour}{text}{_RESET}" if on else text


def _pretty_json(message: str) -> str:
    try:
        return "\n" + json.dumps(json.loads(message), indent=4)
    except json.JSONDecodeError:
        return message


def sam_logs(streams: Iterable[Stream]) -> bytes:
    """`sam logs` output: `<stream> <time, local ISO, microseconds unless whole seconds> <message>`, no colours.

    SAM prints a message that is a JSON object indented by 2 and keeps every other message as it is."""
    out = io.StringIO()
    for s, index in interleaved(streams):
        ts, message = s.events[index]
        moment = datetime.fromtimestamp(ts / 1000, UTC).replace(tzinfo=None).isoformat()
        if message.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                message = json.dumps(json.loads(message), indent=2)
        out.write(f"{s.name} {moment} {message}" + ("" if message.endswith("\n") else "\n"))
    return out.getvalue().encode()


def export_objects(
    streams: Iterable[Stream],
    prefix: str,
    *,
    task_id: str | None = None,
    epoch_ms: bool = False,
    dashed: bool = False,
    events_per_object: int = 1000,
) -> dict[str, bytes]:
    """CreateExportTask output for streams of one log group: key -> object bytes, the probe object included.

    Keys are PREFIX/TASK/STREAM/000000.gz (STREAM with `-` for `/` when `dashed`, as moto writes them);
    each line is `<time> <message>` with the time ISO-8601 (ms, Z) or epoch ms.
    """
    streams = list(streams)
    task = task_id or str(uuid.UUID(bytes=hashlib.md5(prefix.encode()).digest(), version=4))
    objects = {f"{prefix}/{PROBE}": PROBE_TEXT}
    for s in streams:
        name = s.name.replace("/", "-") if dashed else s.name
        for number, start in enumerate(range(0, len(s.events), events_per_object)):
            lines = []
            for ts, message in s.events[start : start + events_per_object]:
                moment = str(ts) if epoch_ms else iso_ms(ts)
                lines.append(f"{moment} {message.removesuffix(chr(10))}\n")
            body = "".join(lines).encode()
            objects[f"{prefix}/{task}/{name}/{number:06d}.gz"] = gzip.compress(body, mtime=0)
    return objects


def firehose_object(streams: Iterable[Stream], seed: int = 1, *, double_gzip: bool = False) -> tuple[bytes, int]:
    """A Firehose-to-S3 object of the streams' subscription payloads, and how many control messages it holds."""
    rng = Random(seed)
    payloads = sorted((p for s in streams for p in data_payloads(rng, s)), key=lambda p: p.arrival_ms)
    controls = [control_payload(rng, payloads[len(payloads) // 2].arrival_ms)] if payloads else []
    body = b"".join(p.data for p in sorted(payloads + controls, key=lambda p: p.arrival_ms))
    return (gzip.compress(body, mtime=0) if double_gzip else body), len(controls)


def ndjson(streams: Iterable[Stream]) -> bytes:
    """One CloudWatch log event a line, with its log group and stream."""
    return b"".join(orjson.dumps(_cli_event(s, i, group=True)) + b"\n" for s, i in interleaved(streams))


def _insights_rows(streams: Iterable[Stream]) -> Iterator[dict[str, str]]:
    for s, index in interleaved(streams):
        ts, message = s.events[index]
        yield {
            "@timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts // 1000)) + f".{ts % 1000:03d}",
            "@message": message,
            "@logStream": s.name,
            "@log": f"{s.spec.owner or ACCOUNT}:{s.spec.group}",
        }


def insights_results(streams: Iterable[Stream]) -> bytes:
    """GetQueryResults of `fields @timestamp, @message, @logStream, @log | sort @timestamp asc`."""
    results = [[{"field": k, "value": v} for k, v in row.items()] for row in _insights_rows(streams)]
    document = {"results": results, "statistics": {"recordsMatched": len(results)}, "status": "Complete"}
    return _cli_json(document, indent=True)


def insights_csv(streams: Iterable[Stream]) -> bytes:
    """The same results downloaded as CSV (RFC 4180: messages with newlines quoted)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["@timestamp", "@message", "@logStream", "@log"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(_insights_rows(streams))
    return out.getvalue().encode()


def write_exports(directory: str, target_events: int = 3000, seed: int = 1) -> dict[str, Any]:
    """Every format under DIRECTORY/<format>/, laid out so that paths name the log groups; returns the truth."""
    streams, truth = fleet(target_events, seed)
    out = Path(directory)
    files: dict[str, bytes] = {}
    for group, members in by_log_group(streams).items():
        place = group.strip("/")
        files[f"filter-log-events/{place}.json"] = filter_log_events(members)
        files[f"tail/{place}.log"] = tail(members, color=True)
        files[f"ndjson/{place}.ndjson"] = ndjson(members)
        files[f"insights/{place}.json"] = insights_results(members)
        files[f"insights-csv/{place}.csv"] = insights_csv(members)
        for s in members:
            files[f"get-log-events/{place}/{s.name}.json"] = get_log_events(s)
        for key, body in export_objects(members, f"export/{place}").items():
            files[key] = body
    files["firehose/central-logs-1-2024-05-20-16-00-00.gz"] = firehose_object(streams, seed)[0]
    for name, body in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return truth


def write_sample_text(directory: str, target_events: int = 3000, seed: int = 1) -> list[str]:
    """The logs of `generate.write_sample` (same arguments) as `aws logs tail` text, without colours:
    DIRECTORY/<log group>.log, so the path names the log group. Returns the paths written."""
    corpus = build_corpus(target_events, seed)
    out = Path(directory)
    paths = []
    for group, members in by_log_group(corpus.streams).items():
        path = out / f"{group.strip('/')}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tail(members))
        paths.append(str(path))
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command line: python examples/exports.py DIR [--events N] [--seed S] [--sample-text]."""
    parser = argparse.ArgumentParser(description="Write the simulated fleet's logs in every export format.")
    parser.add_argument("directory")
    parser.add_argument("--events", type=int, default=3000, help="target number of CloudWatch log events")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--sample-text", action="store_true", help="only the bundled sample's logs, as `aws logs tail` text"
    )
    args = parser.parse_args(argv)
    if args.sample_text:
        paths = write_sample_text(args.directory, args.events, args.seed)
        print(f"wrote {len(paths)} files of `aws logs tail` text to {args.directory}", file=sys.stderr)
        return
    truth = write_exports(args.directory, args.events, args.seed)
    print(f"wrote {truth['log_events']:,} log events in every export format to {args.directory}", file=sys.stderr)


if __name__ == "__main__":
    main()
