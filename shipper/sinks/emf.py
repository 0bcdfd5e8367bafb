"""CloudWatch embedded metric format (EMF): the one writer of EMF documents.

The `cloudwatch:emf` sink writes the metric model of shipper.sinks.cloudwatch_metrics as EMF on
standard output; the Lambda handler's own telemetry (shipper.telemetry.lambda_push) writes its line
with `emf_document` and `write_documents` too. Standard output only: no boto3.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO

import orjson

from shipper.files import PartialWrite, unbuffered_write, write_all
from shipper.sinks.base import SinkError
from shipper.sinks.cloudwatch_metrics import DEFAULT_NAMESPACE, Samples, Series, collect_metrics
from shipper.sinks.packing import MiB, Outcome

__all__ = ["EmfSink", "emf_document", "emf_documents", "write_documents"]

EMF_MAX_METRICS = 100  # per directive
EMF_MAX_VALUES = 100  # per metric


def emf_documents(series: Mapping[Series, Samples], outcome: Outcome) -> list[dict[str, Any]]:
    """EMF documents for the series: one per namespace, dimension set and minute, split to the EMF limits.

    Metric values and dimension values share the document's top level, so a metric named like one of
    its dimensions cannot be written; its events fail for good.
    """
    groups: dict[tuple[str, tuple[tuple[str, str], ...], int], list[dict[str, tuple[str, list[float]]]]] = {}
    for (namespace, name, unit, dimensions, minute), samples in series.items():
        if name == "_aws" or any(name == key for key, _ in dimensions):
            outcome.fail(samples.events, f"metric {name!r} has the name of a dimension or of _aws", retryable=False)
            continue
        documents = groups.setdefault((namespace, dimensions, minute), [])
        for start in range(0, len(samples.values), EMF_MAX_VALUES):
            values = samples.values[start : start + EMF_MAX_VALUES]
            document = next((d for d in documents if name not in d and len(d) < EMF_MAX_METRICS), None)
            if document is None:
                document = {}
                documents.append(document)
            document[name] = (unit, values)
    return [
        emf_document(namespace, dimensions, metrics, minute)
        for (namespace, dimensions, minute), documents in groups.items()
        for metrics in documents
    ]


def emf_document(
    namespace: str,
    dimensions: Sequence[tuple[str, str]],
    metrics: Mapping[str, tuple[str, float | Sequence[float]]],
    timestamp_ms: int,
) -> dict[str, Any]:
    """One EMF document: `metrics` (name -> (unit, value or values)) with one dimension set, at a time.

    Values and dimension values share the top level: the caller keeps their names apart (and off `_aws`).
    """
    return {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[key for key, _ in dimensions]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (unit, _) in metrics.items()],
                }
            ],
        },
        **dict(dimensions),
        **{name: _value(values) for name, (_, values) in metrics.items()},
    }


def _value(values: float | Sequence[float]) -> float | Sequence[float]:
    """A single value is written as a number, several as an array."""
    if isinstance(values, int | float):
        return values
    return values if len(values) > 1 else values[0]


def write_documents(stream: BinaryIO, documents: Sequence[Mapping[str, Any]]) -> None:
    """Write the documents to `stream`, one JSON line each, all of them or raise PartialWrite."""
    option = orjson.OPT_APPEND_NEWLINE
    write_all(unbuffered_write(stream), b"".join(orjson.dumps(document, option=option) for document in documents))


class EmfSink:
    """The same metrics as `CloudWatchMetricsSink`, as EMF documents on standard output, one per line.

    In Lambda (or anywhere CloudWatch Logs collects standard output) CloudWatch extracts the metrics.
    """

    name = "cloudwatch:emf"
    max_batch_events = 10_000
    max_batch_bytes = 8 * MiB

    def __init__(
        self,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Callable[[], float] = time.time,
        stream: BinaryIO | None = None,
    ) -> None:
        self._namespace = namespace
        self._clock = clock
        self._stream = stream if stream is not None else sys.stdout.buffer

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        outcome = Outcome()
        series = collect_metrics(events, self._namespace, self._clock(), outcome)
        try:
            write_documents(self._stream, emf_documents(series, outcome))
        except PartialWrite as exc:
            # Which documents hold which events is not kept: every event with a data point counts as not
            # delivered (sent again, its documents written before the failure may count twice).
            raise SinkError(
                f"{self.name}: cannot write to standard output: {exc.strerror}",
                retryable=False,
                blocked=True,
                failed=sorted(outcome.failed.union(*(samples.events for samples in series.values()))),
            ) from exc
        outcome.raise_if_failed(self.name, len(events))

    def close(self) -> None:
        return None
