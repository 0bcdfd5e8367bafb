"""Sinks: where structured events go.

A sink is small: it writes one batch of events, says whether a failure is worth retrying, and
closes. Everything around that (batching, retries, deadlines, counters) lives once, outside sinks,
in shipper.delivery. `build_sink` turns a spec string and its options into a sink.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from shipper.errors import ConfigError
from shipper.sinks.base import Sink, SinkError
from shipper.sinks.local import DirectorySink, JsonLinesFileSink, NullSink, StdoutSink

__all__ = [
    "DirectorySink",
    "JsonLinesFileSink",
    "NullSink",
    "Sink",
    "SinkError",
    "StdoutSink",
    "build_sink",
    "sink_kind",
]

_LOCAL_KINDS = frozenset({"stdout", "null", "jsonl", "dir"})
_HTTP_KINDS = frozenset({"http", "https"})
_AWS_KINDS = frozenset({"s3", "kinesis", "firehose", "cloudwatch"})
_BACKENDS = {
    "otlp": ("shipper.sinks.otlp", "otlp"),
    "prometheus-remote-write": ("shipper.sinks.prometheus_remote_write", "snappy"),
    "loki": ("shipper.sinks.loki", "snappy"),
    "datadog": ("shipper.sinks.datadog", None),
    "splunk-hec": ("shipper.sinks.splunk", None),
}
"""Sinks for observability backends: kind -> (module with a `build(spec, options)`, the extra it needs if any).
Each module is imported only when such a sink is configured: protobuf and snappy stay out of the rest."""
AWS_SPECS = "s3://BUCKET[/PREFIX], kinesis:STREAM, firehose:DELIVERY_STREAM, cloudwatch or cloudwatch:emf"
SPECS = (
    f"stdout, null, jsonl:PATH, dir:PATH, http:URL (or an http:// or https:// URL), {AWS_SPECS}, otlp:URL, "
    "prometheus-remote-write:URL, loki:URL, datadog, splunk-hec:URL"
)
"""Every sink spec, for messages and help."""


def sink_kind(spec: str) -> str:
    """The kind of a sink spec: `stdout`, `jsonl`, `http`, `s3`, ... (`https` URLs are `http`)."""
    kind = spec.partition(":")[0]
    if kind not in _LOCAL_KINDS | _HTTP_KINDS | _AWS_KINDS | _BACKENDS.keys():
        raise ConfigError(f"unknown sink {spec!r}: expected {SPECS}")
    return "http" if kind == "https" else kind


def build_sink(spec: str, options: Mapping[str, Any] | None = None) -> Sink:
    """Build a sink from its spec (see SPECS; a `.gz` jsonl path compresses) and its options.

    AWS sinks are built by shipper.sinks.aws, imported only here: boto3 loads only when a sink that
    calls AWS is configured (`cloudwatch:emf` writes standard output and needs none). Local sinks take no options.
    """
    options = options or {}
    kind = sink_kind(spec)
    if kind in _AWS_KINDS:
        from shipper.sinks.aws import build_aws_sink

        return build_aws_sink(spec, options)
    if kind in _BACKENDS:
        module, extra = _BACKENDS[kind]
        try:
            return importlib.import_module(module).build(spec, options)
        except ImportError as exc:
            if extra is None:
                raise
            raise ConfigError(
                f"sink {spec!r} needs the {extra} extra: pip install 'lambda-shipper[{extra}]' ({exc})"
            ) from exc
    if kind == "http":
        from shipper.sinks.http import build_http_sink

        return build_http_sink(spec, options)
    if options:
        raise ConfigError(f"sink {spec!r} takes no options, got: {', '.join(sorted(options))}")
    target = spec.partition(":")[2]
    if kind in ("stdout", "null"):
        if target:
            raise ConfigError(f"sink {kind!r} takes nothing after it, got {spec!r}")
        return StdoutSink() if kind == "stdout" else NullSink()
    if not target:
        what = "file" if kind == "jsonl" else "directory"
        raise ConfigError(f"sink {kind!r} needs a {what}: {kind}:PATH")
    return JsonLinesFileSink(target) if kind == "jsonl" else DirectorySink(target)
