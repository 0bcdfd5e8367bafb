"""CloudWatch metrics: PutMetricData of the metric model in shipper.sinks.cloudwatch_metrics."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from shipper.sinks.cloudwatch_metrics import DEFAULT_NAMESPACE, Samples, Series, collect_metrics
from shipper.sinks.packing import MiB, Outcome, Packed, chunks, deliver

__all__ = ["CloudWatchMetricsSink"]

# PutMetricData limits: 1,000 data items and 1 MB per call, 150 distinct values per item.
CLOUDWATCH_MAX_DATUMS = 1000
CLOUDWATCH_MAX_CALL_BYTES = 1_000_000
CLOUDWATCH_MAX_VALUES = 150


def _datums(series: Series, samples: Samples) -> Iterator[Packed]:
    """PutMetricData items for one series: each distinct value once, with how many times it occurred."""
    counted = list(Counter(samples.values).items())
    dimensions = [{"Name": name, "Value": value} for name, value in series.dimensions]
    timestamp = datetime.fromtimestamp(series.minute / 1000, UTC)
    for start in range(0, len(counted), CLOUDWATCH_MAX_VALUES):
        part = counted[start : start + CLOUDWATCH_MAX_VALUES]
        datum = {
            "MetricName": series.name,
            "Dimensions": dimensions,
            "Timestamp": timestamp,
            "Unit": series.unit,
            "Values": [value for value, _ in part],
            "Counts": [float(count) for _, count in part],
        }
        # The JSON size overstates the wire size a little (the client sends CBOR): a safe estimate.
        yield Packed(datum, samples.events, len(orjson.dumps(datum)), series.namespace)


class CloudWatchMetricsSink:
    """Invocation statistics, signal counts and custom metrics as CloudWatch metrics (PutMetricData).

    Data points with the same metric, dimensions and minute go out as one item (Values and Counts).
    A retried batch may count again what an earlier call of the same batch already stored.
    """

    name = "cloudwatch"
    max_batch_events = 10_000
    max_batch_bytes = 8 * MiB

    def __init__(
        self, client: Any, *, namespace: str = DEFAULT_NAMESPACE, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._clock = clock

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        by_namespace: dict[str, list[Packed]] = {}
        for series, samples in collect_metrics(events, self._namespace, self._clock(), outcome).items():
            by_namespace.setdefault(series.namespace, []).extend(_datums(series, samples))
        calls = [
            call
            for datums in by_namespace.values()
            for call in chunks(datums, CLOUDWATCH_MAX_DATUMS, CLOUDWATCH_MAX_CALL_BYTES)
        ]
        deliver(calls, self._put, outcome)
        outcome.raise_if_failed(self.name, len(events))

    def _put(self, call: list[Packed]) -> Sequence[Mapping[str, Any]]:
        self._client.put_metric_data(Namespace=call[0].key, MetricData=[unit.payload for unit in call])
        return ()

    def close(self) -> None:
        self._client.close()
