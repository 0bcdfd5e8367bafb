"""Metrics from the Lambda function at the end of each invocation: a Pushgateway push and/or an EMF line.

Lambda cannot be scraped, so the handler reports after each batch: `invocation` is the BatchObserver
of one invocation, which takes each record's events as they go (no batch is held whole for its
metrics) and reports when the batch is done:

- Pushgateway (SHIPPER_PUSHGATEWAY_URL): the metrics of `Telemetry`, one push group per shipper
  function and shard (`job`, `shipper_function`, `shard`); the group is replaced at each push. Each
  shard has its own counters in the container, so one group never mixes shards. prometheus_client is
  imported only when a gateway is configured.
- EMF (SHIPPER_METRICS_EMF=true): one CloudWatch embedded-metric-format line on standard output with
  what this invocation did (records, events, rejects, per-sink totals, batch time), dimensions
  ShipperFunction and Shard. CloudWatch adds them up, whichever container wrote them. (Lambda health
  and custom metrics as CloudWatch metrics come from the `cloudwatch:emf` sink.)

Telemetry never fails the invocation (whose events are delivered by then: an exception would make
Lambda send the batch again): whatever goes wrong in it is logged, with what a server answered
redacted and escaped, and counted in `failures`. A push has one time budget for all of it (connect,
request, answer), PUSH_TIMEOUT_S and never more than the invocation's time left less _PUSH_MARGIN_S,
and reads at most shipper.httpio.QUOTE_BYTES of the gateway's answer.
"""

from __future__ import annotations

import base64
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from shipper.delivery import DeliveryReport, Origin, Status
from shipper.errors import ConfigError
from shipper.names import REJECTED_PREFIX, Count, SinkCounter
from shipper.pipeline import RecordOutcome
from shipper.shipping import BatchObserver, BatchResult
from shipper.sinks.cloudwatch_metrics import DEFAULT_NAMESPACE
from shipper.sinks.emf import emf_document, write_documents
from shipper.telemetry.config import TelemetryConfig, telemetry_config_from_env
from shipper.telemetry.totals import DEAD_LETTER_SINK, Increments, router_totals

if TYPE_CHECKING:
    from shipper.telemetry.registry import Telemetry

log = logging.getLogger(__name__)

DEFAULT_JOB = "shipper"
PUSH_TIMEOUT_S = 2.0
_PUSH_MARGIN_S = 0.5
"""Time left to the function after a push, at the least: a push never eats the invocation's deadline."""


def shard_of(event: Mapping[str, Any]) -> str:
    """The shard of a Lambda Kinesis event (from its first record's eventID `shardId-...:sequence`)."""
    records = event.get("Records")
    first = records[0] if isinstance(records, list) and records and isinstance(records[0], dict) else {}
    event_id = first.get("eventID")
    return event_id.partition(":")[0] if isinstance(event_id, str) and event_id else "unknown"


class LambdaTelemetry:
    """What the handler calls once per invocation; see the module docstring."""

    def __init__(
        self,
        config: TelemetryConfig,
        *,
        function_name: str,
        gateway: str | None = None,
        job: str = DEFAULT_JOB,
        emf_namespace: str | None = None,
        push_timeout_s: float = PUSH_TIMEOUT_S,
        stream: BinaryIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.function_name = function_name
        self.gateway = gateway
        self.job = job
        self.emf_namespace = emf_namespace
        self._push_timeout_s = push_timeout_s
        self._stream = stream
        self._clock = clock
        self._shards: dict[str, Telemetry] = {}
        self._pipeline = Increments()
        self._router = Increments()
        self.failures: Counter[str] = Counter()
        """Pushes (`push`) and EMF lines (`emf`) that failed, since the container started."""

    def invocation(self, event: Mapping[str, Any], remaining_s: Callable[[], float]) -> BatchObserver:
        """The observer of one invocation of the Kinesis `event`; `remaining_s` gives the function's time left."""
        return _Invocation(self, shard_of(event), remaining_s)

    def after_invocation(self, shard: str, result: BatchResult, remaining_s: float | None = None) -> None:
        """Report one invocation of `shard`: its result (with the cumulative pipeline counts and router
        stats) and the time the function has left."""
        pipeline = self._pipeline.since_last(result.pipeline_counts)
        router = self._router.since_last(router_totals(result.router_stats))
        report = result.report
        seconds = result.seconds or 0.0
        if self.gateway is not None:
            try:
                self._push(self.gateway, shard, report, pipeline, router, seconds, remaining_s)
            except Exception as exc:  # telemetry never fails an invocation
                self._failed("push", shard, exc)
        if self.emf_namespace is not None:
            try:
                self._write_emf(self.emf_namespace, shard, result.events, report, pipeline, router, seconds)
            except Exception as exc:
                self._failed("emf", shard, exc)

    def _failed(self, what: str, shard: str, exc: Exception) -> None:
        from shipper.httpio import quote

        self.failures[what] += 1
        where = f"pushgateway {_shown(self.gateway or '')}: push" if what == "push" else "EMF line"
        log.warning(
            "%s for shard %s failed: %s (%d so far)",
            where,
            shard,
            quote(f"{type(exc).__name__}: {exc}", _gateway_secrets(self.gateway)),
            self.failures[what],
        )

    def grouping_key(self, shard: str) -> dict[str, str]:
        return {"shipper_function": self.function_name, "shard": shard}

    def telemetry(self, shard: str) -> Telemetry:
        """The shard's `Telemetry` (created on first use), whose registry is pushed for that shard."""
        telemetry = self._shards.get(shard)
        if telemetry is None:
            from shipper.telemetry.registry import Telemetry  # imports prometheus_client: only when pushing

            telemetry = self._shards[shard] = Telemetry(self.config)
        return telemetry

    def _push(
        self,
        gateway: str,
        shard: str,
        report: DeliveryReport,
        pipeline: Mapping[str, float],
        router: Mapping[tuple[str, str], float],
        seconds: float,
        remaining_s: float | None,
    ) -> None:
        from prometheus_client import push_to_gateway

        telemetry = self.telemetry(shard)
        telemetry.observe_report(report)
        telemetry.add_pipeline_counts(pipeline)
        telemetry.add_router_increments(router)
        telemetry.observe_batch_seconds(seconds)
        timeout = self._push_timeout_s
        if remaining_s is not None:
            timeout = min(timeout, remaining_s - _PUSH_MARGIN_S)
            if timeout <= 0:
                log.warning("pushgateway: no time left in the invocation to push shard %s", shard)
                return
        push_to_gateway(
            gateway,
            job=self.job,
            registry=telemetry.registry,
            grouping_key=self.grouping_key(shard),
            timeout=timeout,
            handler=_push_handler,
        )

    def _write_emf(
        self,
        namespace: str,
        shard: str,
        events_emitted: int,
        report: DeliveryReport,
        pipeline: Mapping[str, float],
        router: Mapping[tuple[str, str], float],
        seconds: float,
    ) -> None:
        def sinks(counter: str) -> float:
            return sum(v for (sink, name), v in router.items() if name == counter and sink != DEAD_LETTER_SINK)

        records = report.counts()
        values = {
            "RecordsReceived": pipeline.get(Count.RECORDS_RECEIVED, 0),
            "LogEventsReceived": pipeline.get(Count.LOG_EVENTS_RECEIVED, 0),
            "EventsEmitted": events_emitted,
            "Rejects": sum(v for name, v in pipeline.items() if name.startswith(REJECTED_PREFIX)),
            "RecordsDeadLettered": records[Status.DEAD_LETTERED],
            "RecordsNotDelivered": records[Status.NOT_DELIVERED],
            "EventsSent": sinks(SinkCounter.SENT),
            "EventsDeadLettered": sinks(SinkCounter.DEAD_LETTERED),
            "EventsFailed": sinks(SinkCounter.NOT_DELIVERED),  # not delivered: a published name, kept
            "SinkRetries": sinks(SinkCounter.RETRIES),
        }
        metrics: dict[str, tuple[str, float]] = {name: ("Count", value) for name, value in values.items()}
        metrics["BatchDuration"] = ("Milliseconds", round(seconds * 1000, 3))
        dimensions = (("ShipperFunction", self.function_name), ("Shard", shard))
        document = emf_document(namespace, dimensions, metrics, int(self._clock() * 1000))
        write_documents(self._stream if self._stream is not None else sys.stdout.buffer, [document])


class _Invocation(BatchObserver):
    """One invocation as a BatchObserver: each record's events go to the shard's metrics as they pass
    (nothing of the batch is held for them); the rest is reported once the batch is done."""

    def __init__(self, telemetry: LambdaTelemetry, shard: str, remaining_s: Callable[[], float]) -> None:
        self._telemetry = telemetry
        self._shard = shard
        self._remaining_s = remaining_s

    def outcome(self, origin: Origin, outcome: RecordOutcome) -> None:
        if self._telemetry.gateway is not None:
            self._telemetry.telemetry(self._shard).observe_outcomes([outcome])

    def batch_done(self, result: BatchResult) -> None:
        self._telemetry.after_invocation(self._shard, result, self._remaining_s())


def _push_handler(
    url: str, method: str, timeout: float | None, headers: Sequence[tuple[str, str]], data: bytes
) -> Callable[[], None]:
    """prometheus_client's push over shipper.httpio: `timeout` is the budget of the whole push.

    Credentials in the gateway URL (`http://user:password@host:9091`) are sent as Basic authorization.
    """

    def handle() -> None:
        import ssl

        from shipper.httpio import QUOTE_BYTES, Connection, quote

        parts = urlsplit(url)
        seconds = timeout or PUSH_TIMEOUT_S
        tls = ssl.create_default_context() if parts.scheme == "https" else None
        connection = Connection(
            parts.hostname or "", parts.port, tls=tls, connect_timeout_s=seconds, read_timeout_s=seconds
        )
        sent = dict(headers)
        credentials = _credentials(url)
        if credentials is not None:
            sent["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            answer = connection.exchange(method, target, data, sent, seconds=seconds, max_body=QUOTE_BYTES)
        finally:
            connection.close()
        if not 200 <= answer.status < 300:
            reason = quote(answer.body, _gateway_secrets(url), cut=answer.truncated)
            raise OSError(f"HTTP {answer.status}: {reason}")

    return handle


def _credentials(url: str) -> str | None:
    parts = urlsplit(url)
    return None if parts.username is None else f"{unquote(parts.username)}:{unquote(parts.password or '')}"


def _gateway_secrets(url: str | None) -> list[str]:
    credentials = _credentials(url or "")
    return [] if credentials is None else [credentials]


def _shown(url: str) -> str:
    """The gateway URL without credentials."""
    parts = urlsplit(url)
    return url if parts.username is None else url.replace(parts.netloc, parts.netloc.rpartition("@")[2], 1)


def lambda_telemetry_from_env(environ: Mapping[str, str]) -> LambdaTelemetry | None:
    """The LambdaTelemetry the environment asks for, or None when it asks for neither push nor EMF.

    SHIPPER_PUSHGATEWAY_URL        http(s)://host:port of a Pushgateway
    SHIPPER_PUSHGATEWAY_JOB        the push's job label (default shipper)
    SHIPPER_METRICS_EMF            true: write the EMF line
    SHIPPER_METRICS_EMF_NAMESPACE  its CloudWatch namespace (default Shipper)
    SHIPPER_METRICS_*              prefix, label allow-list and limits (see shipper.telemetry.config)
    """
    gateway = environ.get("SHIPPER_PUSHGATEWAY_URL", "").strip() or None
    emf = environ.get("SHIPPER_METRICS_EMF", "").strip().lower()
    if emf not in ("", "true", "false", "1", "0"):
        raise ConfigError(f"SHIPPER_METRICS_EMF: {emf!r} is not true or false")
    if gateway is None and emf not in ("true", "1"):
        return None
    if gateway is not None and not gateway.startswith(("http://", "https://")):
        raise ConfigError(f"SHIPPER_PUSHGATEWAY_URL: {gateway!r} is not an http:// or https:// URL")
    return LambdaTelemetry(
        telemetry_config_from_env(environ),
        function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", "") or "unknown",
        gateway=gateway,
        job=environ.get("SHIPPER_PUSHGATEWAY_JOB", "").strip() or DEFAULT_JOB,
        emf_namespace=(environ.get("SHIPPER_METRICS_EMF_NAMESPACE", "").strip() or DEFAULT_NAMESPACE)
        if emf in ("true", "1")
        else None,
    )
