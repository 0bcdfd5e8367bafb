"""Building the AWS sinks from a spec: `s3://BUCKET[/PREFIX]`, `kinesis:STREAM`, `firehose:DELIVERY_STREAM`,
`cloudwatch` and `cloudwatch:emf`.

Each destination has its own module (shipper.sinks.s3, .kinesis, .firehose, .cloudwatch, .emf); this one
checks the spec and options and imports only the module asked for. Clients come from shipper.aws_clients;
`cloudwatch:emf` writes standard output and needs no boto3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipper.errors import INSTALL_AWS, ConfigError
from shipper.sinks import AWS_SPECS
from shipper.sinks.backend import Converter, flag, positive, text
from shipper.sinks.base import Sink
from shipper.sinks.cloudwatch_metrics import DEFAULT_NAMESPACE, is_namespace

__all__ = ["build_aws_sink"]

_CONNECTION_OPTIONS = frozenset({"endpoint_url", "region", "timeout"})
_KIND_OPTIONS = {
    "s3": frozenset(),
    "kinesis": frozenset({"partition_key"}),
    "firehose": frozenset({"record_per_event"}),
    "cloudwatch": frozenset({"namespace"}),
    "cloudwatch:emf": frozenset({"namespace"}),
}


def _parse_spec(spec: str) -> tuple[str, str]:
    """(kind, target) of an AWS sink spec."""
    if spec.startswith("s3://"):
        kind, target = "s3", spec.removeprefix("s3://")
    elif spec in ("cloudwatch", "cloudwatch:emf"):
        kind, target = spec, ""
    else:
        kind, _, target = spec.partition(":")
        if kind not in ("kinesis", "firehose"):
            raise ConfigError(f"unknown AWS sink {spec!r}: expected {AWS_SPECS}")
    if kind in ("s3", "kinesis", "firehose") and not target.split("/", 1)[0]:
        raise ConfigError(f"AWS sink {spec!r} names no {'bucket' if kind == 's3' else 'stream'}")
    return kind, target


def _option(options: Mapping[str, Any], name: str, read: Converter, default: Any) -> Any:
    """Option `name` read by `read` (text, flag, positive(...): text from a line is read by its type)."""
    return read(name, options[name]) if name in options else default


def _client(spec: str, service: str, options: Mapping[str, Any]) -> Any:
    """The sink's client, with its endpoint, region and timeout (see shipper.aws_clients for the policy)."""
    try:
        from shipper.aws_clients import DEFAULT_TIMEOUT_S, client
    except ImportError as exc:
        raise ConfigError(f"sink {spec!r} needs boto3: {INSTALL_AWS} ({exc})") from exc
    timeout = _option(options, "timeout", positive(float), DEFAULT_TIMEOUT_S)
    return client(
        service,
        region=_option(options, "region", text, None),
        endpoint_url=_option(options, "endpoint_url", text, None),
        timeout=timeout,
        region_from=f"the 'region' option of sink {spec!r} or AWS_REGION",
    )


def build_aws_sink(spec: str, options: Mapping[str, Any] | None = None) -> Sink:
    """Build an AWS sink from its spec and options.

    Specs: `s3://BUCKET[/PREFIX]`, `kinesis:STREAM` (name or ARN), `firehose:DELIVERY_STREAM`,
    `cloudwatch` (PutMetricData) and `cloudwatch:emf` (EMF on standard output).
    Options: `endpoint_url`, `region`, `timeout` (seconds) for all; `partition_key` ("function" or
    "random") for kinesis; `record_per_event` for firehose; `namespace` for cloudwatch and cloudwatch:emf.
    """
    options = options or {}
    kind, target = _parse_spec(spec)
    unknown = options.keys() - _CONNECTION_OPTIONS - _KIND_OPTIONS[kind]
    if unknown:
        allowed = ", ".join(sorted(_CONNECTION_OPTIONS | _KIND_OPTIONS[kind]))
        raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))} for sink {spec!r}; allowed: {allowed}")
    namespace = _option(options, "namespace", text, DEFAULT_NAMESPACE)
    if not is_namespace(namespace):
        raise ConfigError(f"sink option 'namespace' is not a valid CloudWatch namespace: {namespace!r}")
    if kind == "cloudwatch:emf":
        from shipper.sinks.emf import EmfSink

        return EmfSink(namespace=namespace)
    client = _client(spec, kind, options)
    if kind == "s3":
        from shipper.sinks.s3 import S3Sink

        bucket, _, prefix = target.partition("/")
        return S3Sink(client, bucket, prefix)
    if kind == "kinesis":
        from shipper.sinks.kinesis import KinesisSink

        return KinesisSink(client, target, partition_key=_option(options, "partition_key", text, "function"))
    if kind == "firehose":
        from shipper.sinks.firehose import FirehoseSink

        return FirehoseSink(client, target, record_per_event=_option(options, "record_per_event", flag, False))
    from shipper.sinks.cloudwatch import CloudWatchMetricsSink

    return CloudWatchMetricsSink(client, namespace=namespace)
