"""Sinks: where structured events go.

A sink is small: it writes one batch of events, says whether a failure is worth retrying, and
closes. Everything around that (batching, retries, deadlines, counters) lives once, outside sinks.
`build_sink` turns a spec string from the command line into a sink.
"""

from __future__ import annotations

from shipper.sinks.base import Sink, SinkError
from shipper.sinks.local import JsonLinesFileSink, NullSink, StdoutSink

__all__ = ["JsonLinesFileSink", "NullSink", "Sink", "SinkError", "StdoutSink", "build_sink"]


def build_sink(spec: str) -> Sink:
    """Build a sink from its spec: `stdout`, `null`, `jsonl:PATH` (`.gz` suffix compresses)."""
    kind, _, target = spec.partition(":")
    if kind == "stdout" and not target:
        return StdoutSink()
    if kind == "null" and not target:
        return NullSink()
    if kind == "jsonl":
        if not target:
            raise ValueError("sink 'jsonl' needs a file: --sink jsonl:PATH")
        return JsonLinesFileSink(target)
    raise ValueError(f"unknown sink {spec!r}: expected stdout, null or jsonl:PATH")
