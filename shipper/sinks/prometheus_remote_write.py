"""Prometheus remote write 1.0 sink (`prometheus-remote-write:URL`): the Lambda metrics shipper serves,
pushed to Prometheus, Mimir, Thanos, VictoriaMetrics or Grafana Cloud.

Events are counted into the same families `shipper consume` and `shipper run --metrics-port` serve
(shipper_lambda_invocations_total, shipper_lambda_duration_seconds, ..., shipper_events_emitted_total,
the custom metrics, shipper_metric_samples_dropped_total), with the same cardinality limits and the
same SHIPPER_METRICS_* settings. Each send writes every series once, with its cumulative value at
that moment: samples are aggregated per batch, not one per event. Every series carries `job` and
`instance` (default: the Lambda log stream of this container, else host:pid), so the cumulative
counters of two containers never mix.

The body is a protobuf WriteRequest, snappy-compressed (block format), at most `max_series_per_request`
series per request. 429, 408 and 5xx answers are retried (Retry-After honoured), other 4xx are not (413
included: a request does not grow with the batch, so the batch is not split). A batch sent again after
a failure is not counted twice. A batch refused for good is dead-lettered,
but what it counted stays in the cumulative series and is written by the next send.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shipper.errors import ConfigError
from shipper.sinks.backend import flag, positive, text, transport
from shipper.sinks.http import HttpSink
from shipper.sinks.protos import Label, Sample, TimeSeries, WriteRequest, snappy_compress
from shipper.telemetry.config import TelemetryConfig, telemetry_config_from_env
from shipper.telemetry.registry import Telemetry

__all__ = ["RemoteWriteSink", "build"]

HEADERS = {"Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"}
DEFAULT_SERIES_PER_REQUEST = 5000
_OWN_FAMILIES = ("shipper_lambda_", "shipper_events_emitted", "shipper_metric_samples_dropped")
"""The shipper_* families events feed; the shipper's own health is the handler's Pushgateway push."""


class RemoteWriteSink:
    """Counts events into a Telemetry and writes all its event-fed series at each send."""

    name = "prometheus-remote-write"

    def __init__(
        self,
        target: HttpSink,
        *,
        job: str = "shipper",
        instance: str | None = None,
        config: TelemetryConfig | None = None,
        max_series_per_request: int = DEFAULT_SERIES_PER_REQUEST,
    ) -> None:
        self._target = target
        self.job = job
        self.instance = instance or default_instance()
        self.telemetry = Telemetry(config)
        self.max_batch_events = target.max_batch_events
        self.max_batch_bytes = target.max_batch_bytes
        self._per_request = max_series_per_request
        self._unsent: list[dict[str, Any]] = []
        """The events of the last send that failed: a retry of them is not counted again."""
        self._last_ms = 0

    def __repr__(self) -> str:
        return f"RemoteWriteSink({self._target.url!r}, job={self.job!r}, instance={self.instance!r})"

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        unsent = self._unsent
        if not (len(events) == len(unsent) and all(a is b for a, b in zip(events, unsent, strict=True))):
            self.telemetry.observe_events(events)
        self._unsent = list(events)
        # Strictly increasing: two writes in one millisecond would be a duplicate sample to the server.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        series = list(self.series(self._last_ms))
        for start in range(0, len(series), self._per_request):
            request = WriteRequest(timeseries=series[start : start + self._per_request])
            reply = self._target.post(snappy_compress(request.SerializeToString()), "application/x-protobuf", HEADERS)
            if not reply.ok:
                # Each request holds series, at most max_series_per_request, not this batch's events: a smaller
                # batch would make no smaller request, and its events would be counted again.
                raise self._target.refusal(reply, splits=False)
        self._unsent = []

    def close(self) -> None:
        self._target.close()

    def series(self, timestamp_ms: int) -> Iterator[Any]:
        """Every event-fed series of the Telemetry as remote-write TimeSeries, labels sorted by name."""
        extra = {"job": self.job, "instance": self.instance}
        for family in self.telemetry.registry.collect():
            if family.name.startswith("shipper_") and not family.name.startswith(_OWN_FAMILIES):
                continue
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = {**extra, **sample.labels, "__name__": sample.name}
                yield TimeSeries(
                    labels=[Label(name=name, value=labels[name]) for name in sorted(labels) if labels[name] != ""],
                    samples=[Sample(value=sample.value, timestamp=timestamp_ms)],
                )


def default_instance() -> str:
    """This container's Lambda log stream (unique per execution environment), else host:pid."""
    return os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME") or f"{socket.gethostname()}:{os.getpid()}"


def build(spec: str, options: Mapping[str, Any]) -> RemoteWriteSink:
    """A RemoteWriteSink from `prometheus-remote-write:URL` and options: job, instance,
    max_series_per_request, and those of the HTTP sink but gzip (the body is snappy-compressed)."""
    url = spec.removeprefix("prometheus-remote-write:")
    if "gzip" in options and flag("gzip", options["gzip"]):
        raise ConfigError("prometheus-remote-write sink: the body is snappy-compressed; gzip cannot be set")
    own = {"job": text, "instance": text, "max_series_per_request": positive(int)}
    target, values = transport("prometheus-remote-write", url, options, own, {"max_batch_events": 10_000})
    return RemoteWriteSink(target, config=telemetry_config_from_env(os.environ), **values)
