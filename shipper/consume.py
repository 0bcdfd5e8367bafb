"""`shipper consume`: a long-running Kinesis consumer in one process, for users who do not run the Lambda.

    shipper consume --stream NAME [--endpoint-url URL] [--region REGION]
                    [--checkpoint-dir DIR | --checkpoint-table TABLE]
                    [--starting-position TRIM_HORIZON | LATEST | TIME]
                    [--metrics-port PORT [--metrics-address ADDRESS]]
                    [--sink SPEC]... [--route NAME=TYPES]... [--dead-letter SPEC] [--config FILE]
                    [--max-records N] [--idle-s SECONDS] [--metrics-prefix P] [--metrics-label TAG]...

One loop reads every shard of the stream in turn with GetRecords, within the per-shard read limits
(at most 5 calls and 2 MiB a second per shard; a shard that is throttled backs off exponentially),
and hands each response, as one batch, to the same Pipeline and Router as `shipper run`. Only once
the Router says every record of the batch was delivered or dead-lettered is the shard checkpointed
at the batch's last record. So a restart, even after SIGKILL, loses nothing and repeats only the
last uncheckpointed batch of each shard.

A record that is not delivered stops its shard there, as the Lambda event source mapping does with
BisectBatchOnFunctionError: the records before it are checkpointed, and the shard then reads that one
record alone, again and again with a growing backoff, until it passes (the sink is back, or a dead
letter takes it) or leaves the stream; nothing after it is delivered meanwhile. With no dead letter,
a record that yields a reject cannot pass, so the batch is cut after it before anything is sent.
Other shards go on. A failed checkpoint write stops its shard too: no new record is read until the
checkpoint, retried with backoff, is written, so a SIGKILL at any moment repeats at most one batch.
Both are logged and shown as `shipper_consumer_shard_stalled{shard,cause}`.

Where a shard without a checkpoint starts: --starting-position, like the Lambda event source mapping's
StartingPosition. TRIM_HORIZON (the default) reads everything the stream still holds; LATEST only
what arrives after the consumer first reads the shard; an ISO 8601 time (AT_TIMESTAMP) what arrived
from then on. It applies to the shards listed at start; a shard that appears later (a child of a
reshard) is read from its beginning, since its parents were read to their end. A shard is asked for
LATEST once per process: until its first checkpoint, a re-read (after a failed delivery or a lost
iterator) starts at the first record read, or, when none was read yet, at the moment LATEST was asked.

Resharding: a shard is read only once its parents (ParentShardId, AdjacentParentShardId) are read
to their end (checkpoint SHARD_END) or have left the stream (trimmed past retention). The shard
list is refreshed periodically and whenever a shard ends.

SIGTERM or SIGINT stops the loop after the batch in hand; a wait between delivery retries ends at
once, retries get SHUTDOWN_GRACE_S more (a wait longer than that is not started: the batch is not
delivered), then the sinks are flushed and closed. What was delivered is checkpointed; what was not
is read again at the next start.

This is deliberately one process with no lease coordination: two consumers of one stream with one
checkpoint store would overwrite each other. Past what one process can read, deploy the Lambda,
whose event source mapping is the distributed consumer.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from shipper.checkpoint import SHARD_END, Checkpoints, DynamoDBCheckpoints, FileCheckpoints
from shipper.config import _number as parse_number
from shipper.config import add_delivery_arguments, build_router, config_from_args
from shipper.decode import records_from_get_records
from shipper.delivery import RetryPolicy, Router, Status
from shipper.errors import INSTALL_AWS, ConfigError
from shipper.pipeline import Pipeline
from shipper.shipping import BatchStep
from shipper.stopping import grace_deadline, interruptible_sleep, stop_on_signals
from shipper.telemetry.config import add_telemetry_arguments, metrics_port, serve_metrics, telemetry_config_from_args
from shipper.terminal import log_to_terminal

if TYPE_CHECKING:
    from shipper.telemetry.registry import Telemetry

log = logging.getLogger(__name__)

MIN_READ_INTERVAL_S = 0.2
"""GetRecords is limited to 5 calls a second per shard."""
READ_BYTES_PER_S = 2 * 1024 * 1024
"""... and to 2 MiB a second per shard."""
MAX_RECORDS = 10_000
"""The most records GetRecords returns in one call."""
DEFAULT_IDLE_S = 1.0
REFRESH_S = 30.0
HEALTH_STALE_S = 60.0
DEFAULT_CHECKPOINT_DIR = "shipper-checkpoints"
_READ_BACKOFF = RetryPolicy(base_s=0.5, cap_s=30.0)
_MAX_LIST_PAGES = 10_000
StartingPosition = str | datetime
"""TRIM_HORIZON, LATEST, or the time to start at (AT_TIMESTAMP)."""


@dataclass(slots=True)
class ShardState:
    """One shard as the consumer sees it."""

    shard_id: str
    parents: tuple[str, ...]
    closed: bool
    position: str | None = None
    """Sequence number of the last checkpointed record; None: the shard starts at `start`."""
    start: StartingPosition = "TRIM_HORIZON"
    first_read: str | None = None
    """Sequence number of the first record read while the shard had no checkpoint: re-reads start there."""
    iterator: str | None = None
    next_read: float = 0.0
    failures: int = 0
    """Consecutive failed reads, deliveries or checkpoint writes, for the backoff."""
    blocked: str | None = None
    """Sequence number of the record that was not delivered: the shard reads it alone until it passes."""
    unsaved: str | None = None
    """A position delivered but not yet checkpointed (the write failed): written before anything is read."""


def readable(shards: Mapping[str, ShardState], finished: Set[str]) -> list[ShardState]:
    """Shards to read: not finished, and each parent finished or no longer in the stream."""
    return [
        shard
        for shard in shards.values()
        if shard.shard_id not in finished and all(p in finished or p not in shards for p in shard.parents)
    ]


class Consumer:
    """Reads every shard of `stream` into `pipeline` and `router`, checkpointing in `checkpoints`, until `stop`."""

    def __init__(
        self,
        client: Any,
        stream: str,
        pipeline: Pipeline,
        router: Router,
        checkpoints: Checkpoints,
        stop: threading.Event,
        telemetry: Telemetry | None = None,
        *,
        max_records: int = MAX_RECORDS,
        idle_s: float = DEFAULT_IDLE_S,
        starting_position: StartingPosition = "TRIM_HORIZON",
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.pipeline = pipeline
        self.router = router
        self.checkpoints = checkpoints
        self.telemetry = telemetry
        self.max_records = max_records
        self.idle_s = idle_s
        self.starting_position = starting_position
        self.refresh_s = refresh_s
        self._stop = stop
        self._clock = clock
        self._rng = rng or random.Random()
        self._positions = checkpoints.load()
        self.finished = {shard for shard, position in self._positions.items() if position == SHARD_END}
        self.shards: dict[str, ShardState] = {}
        self._refresh_at = 0.0
        self._listed = False
        self._deadline = grace_deadline(stop, clock)
        """Seconds delivery may still spend retrying: unlimited, until a stop leaves SHUTDOWN_GRACE_S."""
        self._last_loop = self._last_read = clock()
        self._checkpoint_error: str | None = None
        """The last checkpoint failure, while a shard still has a position to write."""
        from botocore.exceptions import BotoCoreError, ClientError

        self._aws_errors = (BotoCoreError, ClientError)
        self._step = BatchStep(pipeline, router, () if telemetry is None else (telemetry,))

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Read until `stop` is set; the batch in hand is finished first."""
        while not self._stop.is_set():
            self._stop.wait(self.step())

    def step(self) -> float:
        """Read every shard that is due; return the seconds until the next one is."""
        now = self._last_loop = self._clock()
        if now >= self._refresh_at:
            self._refresh()
        for shard in readable(self.shards, self.finished):
            if self._stop.is_set():
                return 0.0
            if shard.next_read <= self._clock():
                self._read(shard)
        due = [shard.next_read for shard in readable(self.shards, self.finished)]
        return max(0.0, min([*due, self._refresh_at]) - self._clock())

    def health(self) -> str | None:
        """None while reading normally, else what is wrong (for /healthz)."""
        now = self._clock()
        if self._stop.is_set():
            return "shutting down"
        if now - self._last_loop > HEALTH_STALE_S:
            return f"the read loop has not come round for {now - self._last_loop:.0f} s (a sink may be retrying)"
        if now - self._last_read > HEALTH_STALE_S:
            return f"no successful GetRecords for {now - self._last_read:.0f} s"
        if any(shard.unsaved is not None for shard in self.shards.values()):
            return self._checkpoint_error
        return None

    # --- shards ----------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Bring the shard list up to date: new shards (children of a reshard) appear, trimmed ones leave."""
        try:
            listed = self._list_shards()
        except self._aws_errors as exc:
            log.warning("cannot list the shards of %s: %s", self.stream, exc)
            self._refresh_at = self._clock() + self.idle_s * 5
            return
        for entry in listed:
            shard_id = entry["ShardId"]
            closed = "EndingSequenceNumber" in entry.get("SequenceNumberRange", {})
            state = self.shards.get(shard_id)
            if state is None:
                parents = tuple(p for p in (entry.get("ParentShardId"), entry.get("AdjacentParentShardId")) if p)
                position = self._positions.get(shard_id)
                start = self.starting_position if not self._listed else "TRIM_HORIZON"
                self.shards[shard_id] = ShardState(
                    shard_id, parents, closed, None if position == SHARD_END else position, start
                )
            else:
                state.closed = closed
        for shard_id in set(self.shards) - {entry["ShardId"] for entry in listed}:
            if shard_id not in self.finished:
                log.warning("shard %s left the stream before it was read to its end (past retention?)", shard_id)
            del self.shards[shard_id]
            self._set_lag(shard_id, None)
            if self.telemetry is not None:
                for cause in ("record", "checkpoint"):
                    self.telemetry.set_shard_stalled(shard_id, cause, False)
        self._listed = True
        self._refresh_at = self._clock() + self.refresh_s

    def _list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamName": self.stream}
        for _ in range(_MAX_LIST_PAGES):
            page = self.client.list_shards(**request)
            shards += page["Shards"]
            if not page.get("NextToken"):
                return shards
            request = {"NextToken": page["NextToken"]}
        raise RuntimeError(f"ListShards returned more than {_MAX_LIST_PAGES} pages")

    def _read(self, shard: ShardState) -> None:
        if shard.unsaved == SHARD_END:
            self._finish(shard)
            return
        if shard.unsaved is not None and not self._checkpoint(shard, shard.unsaved):
            return
        started = self._clock()
        try:
            if shard.iterator is None:
                shard.iterator = self._iterator(shard)
            limit = 1 if shard.blocked is not None else self.max_records
            response = self.client.get_records(ShardIterator=shard.iterator, Limit=limit)
        except self._aws_errors as exc:  # throttling, an expired iterator, a connection error ...
            self._read_failed(shard, exc)
            return
        self._last_read = self._clock()
        records = response.get("Records", [])
        lag = response.get("MillisBehindLatest")
        if records and shard.position is None and shard.first_read is None:
            shard.first_read = records[0]["SequenceNumber"]
        if records and not self._deliver(shard, records):
            shard.iterator = None  # read again from the checkpoint, after a backoff
            self._back_off(shard)
            return
        if records and shard.blocked is not None:
            self._unblock(shard, records[0]["SequenceNumber"])
        shard.iterator = response.get("NextShardIterator")
        # A closed shard ends when GetRecords gives no next iterator. Emulators that keep giving one
        # end it when a read comes back empty and caught up.
        if shard.iterator is None or (shard.closed and not records and lag == 0):
            self._finish(shard)
            return
        if shard.unsaved is not None:  # delivered, not checkpointed: `_checkpoint` set the backoff
            return
        shard.failures = 0
        self._set_lag(shard.shard_id, lag)
        more = len(records) >= self.max_records or bool(lag)
        size = sum(len(record["Data"]) for record in records)
        shard.next_read = started + max(MIN_READ_INTERVAL_S if more else self.idle_s, size / READ_BYTES_PER_S)

    def _iterator(self, shard: ShardState) -> str:
        where: dict[str, Any]
        if shard.position is not None:
            where = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": shard.position}
        elif shard.first_read is not None:
            where = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": shard.first_read}
        elif isinstance(shard.start, datetime):
            where = {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": shard.start}
        elif shard.start == "LATEST":
            # If this iterator is lost before a record is read, the next one starts from this moment.
            shard.start = datetime.now(UTC)
            where = {"ShardIteratorType": "LATEST"}
        else:
            where = {"ShardIteratorType": "TRIM_HORIZON"}
        response = self.client.get_shard_iterator(StreamName=self.stream, ShardId=shard.shard_id, **where)
        return response["ShardIterator"]

    def _read_failed(self, shard: ShardState, exc: Exception) -> None:
        error = getattr(exc, "response", {}).get("Error", {})
        code = error.get("Code") or type(exc).__name__
        if self.telemetry is not None:
            self.telemetry.count_read_error(shard.shard_id, code)
        if code in ("ExpiredIteratorException", "ResourceNotFoundException"):
            shard.iterator = None
            self._refresh_at = min(self._refresh_at, self._clock())
        level = logging.INFO if "Throughput" in code or "Throttl" in code else logging.WARNING
        log.log(level, "shard %s: GetRecords failed (%s); backing off", shard.shard_id, exc)
        self._back_off(shard)

    def _back_off(self, shard: ShardState) -> None:
        shard.failures += 1
        wait = max(MIN_READ_INTERVAL_S, _READ_BACKOFF.backoff(min(shard.failures, 30), self._rng))
        shard.next_read = self._clock() + wait

    def _finish(self, shard: ShardState) -> None:
        """Checkpoint SHARD_END; once written, the shard is finished and its children may be read."""
        if not self._checkpoint(shard, SHARD_END):
            return
        self.finished.add(shard.shard_id)
        self._set_lag(shard.shard_id, None)
        self._refresh_at = self._clock()  # its children can be read now: list them
        log.info("shard %s read to its end", shard.shard_id)

    def _block(self, shard: ShardState, sequence_number: str, reason: str) -> None:
        if shard.blocked != sequence_number:
            log.error(
                "shard %s stops at record %s, not delivered (%s): the records before it are checkpointed, nothing "
                "after it is read until it is delivered or dead-lettered",
                shard.shard_id,
                sequence_number,
                reason,
            )
        else:
            log.warning("shard %s: record %s still not delivered (%s)", shard.shard_id, sequence_number, reason)
        shard.blocked = sequence_number
        if self.telemetry is not None:
            self.telemetry.set_shard_stalled(shard.shard_id, "record", True)

    def _unblock(self, shard: ShardState, first: str) -> None:
        if first == shard.blocked:
            log.info("shard %s: record %s delivered; reading on", shard.shard_id, first)
        else:
            log.warning("shard %s: record %s left the stream before it was delivered", shard.shard_id, shard.blocked)
        shard.blocked = None
        if self.telemetry is not None:
            self.telemetry.set_shard_stalled(shard.shard_id, "record", False)

    # --- delivery and checkpoints ----------------------------------------------------------------

    def _deliver(self, shard: ShardState, records: list[dict[str, Any]]) -> bool:
        """Process and deliver one batch; checkpoint its delivered prefix. True when all of it was delivered.

        Records go one at a time, each to the router before the next is decoded: what is held is one
        record's events and the sinks' buffers, never the whole GetRecords batch decoded. With no dead
        letter, a record with a reject cannot be delivered: the batch ends with it, so nothing after it is
        sent while it holds the shard.
        """
        step, shard_id = self._step, shard.shard_id
        batch = step.begin()
        raws = records_from_get_records(records, source=f"{self.stream}/{shard_id}")
        taken = 0
        for raw in raws:
            [outcome] = self.pipeline.process_records([raw])
            step.route(batch, [((shard_id, outcome.origin), outcome)], self._deadline)
            taken += 1
            held = bool(outcome.rejects) and self.router.dead_letter is None
            del outcome  # else this record's events stay alive while the next one is decoded and classified
            if held:
                break
        step.flush(batch, self._deadline)
        done = None
        for record in records[:taken]:  # the raws' own records, in order: Kinesis numbers every one
            sequence_number: str = record["SequenceNumber"]
            origin = (shard_id, sequence_number)
            if batch.status(origin) is Status.NOT_DELIVERED:
                self._block(shard, sequence_number, batch.reasons.get(origin, "not settled"))
                break
            done = sequence_number
        if done is not None:
            shard.position = done
            self._checkpoint(shard, done)
        step.done(batch)
        return done == records[-1]["SequenceNumber"]

    def _checkpoint(self, shard: ShardState, position: str) -> bool:
        """Write the shard's checkpoint. On failure keep it to write again after a backoff, before the shard
        reads anything new, so that what a crash repeats stays within one batch."""
        try:
            self.checkpoints.save(shard.shard_id, position)
        except (OSError, *self._aws_errors) as exc:
            shard.unsaved = position
            self._checkpoint_error = f"checkpoint of shard {shard.shard_id} failed: {exc}"
            log.error("%s; the shard reads nothing new until its checkpoint is written", self._checkpoint_error)
            if self.telemetry is not None:
                self.telemetry.count_checkpoint_failure(shard.shard_id)
                self.telemetry.set_shard_stalled(shard.shard_id, "checkpoint", True)
            self._back_off(shard)
            return False
        if shard.unsaved is not None:
            shard.unsaved = None
            log.info("shard %s: checkpoint written again", shard.shard_id)
            if self.telemetry is not None:
                self.telemetry.set_shard_stalled(shard.shard_id, "checkpoint", False)
        return True

    def _set_lag(self, shard_id: str, millis: int | None) -> None:
        if self.telemetry is not None:
            self.telemetry.set_consumer_lag(shard_id, millis)


# --- the command -------------------------------------------------------------------------------------


def add_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "consume",
        help="read a Kinesis stream continuously in one process, with checkpoints and Prometheus metrics",
        description="Read every shard of a Kinesis stream in one process, deliver the events to the sinks, "
        "checkpoint each shard after delivery, and serve Prometheus metrics. Stops cleanly on SIGTERM.",
    )
    parser.set_defaults(func=_consume, parser=parser)
    parser.add_argument("--stream", required=True, metavar="NAME", help="the Kinesis stream to read")
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="another Kinesis (and DynamoDB) endpoint: LocalStack, moto"
    )
    parser.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help=f"keep checkpoints in DIR/<stream>.json (default {DEFAULT_CHECKPOINT_DIR})",
    )
    store.add_argument("--checkpoint-table", metavar="TABLE", help="keep checkpoints in a DynamoDB table instead")
    parser.add_argument(
        "--starting-position",
        metavar="WHERE",
        help="where a shard without a checkpoint starts: TRIM_HORIZON (default: all the stream holds), LATEST "
        "(only what arrives from now), or an ISO 8601 time such as 2024-05-20T16:00:00Z",
    )
    parser.add_argument("--max-records", metavar="N", help=f"records per GetRecords, 1 to {MAX_RECORDS:,} (default)")
    parser.add_argument("--idle-s", metavar="SECONDS", help="wait between reads of a shard that is caught up (1)")
    add_delivery_arguments(parser)
    add_telemetry_arguments(parser)


def _consume(args: argparse.Namespace) -> int:
    log_to_terminal(logging.INFO)  # the consumer's own progress too
    telemetry_config = telemetry_config_from_args(args)
    max_records = parse_number(args.max_records or MAX_RECORDS, "--max-records", int, 1, MAX_RECORDS)
    idle_s = parse_number(args.idle_s or DEFAULT_IDLE_S, "--idle-s", float, MIN_READ_INTERVAL_S, 300.0)
    starting_position = parse_starting_position(args.starting_position or "TRIM_HORIZON")
    port = metrics_port(args)
    config = config_from_args(args, os.environ, lambda: "stdout")
    if config.dead_letter is None:
        log.warning("no dead letter: a record that cannot be read (or a refused event) holds up its shard until fixed")
    stop = threading.Event()
    router = build_router(config, sleep=interruptible_sleep(stop))  # a stop ends a Retry-After wait at once
    try:
        client, checkpoints = _aws(args)
        from shipper.telemetry.registry import Telemetry  # prometheus_client: imported when the command runs

        telemetry = Telemetry(telemetry_config)
        consumer = Consumer(
            client,
            args.stream,
            Pipeline(),
            router,
            checkpoints,
            stop,
            telemetry,
            max_records=max_records,
            idle_s=idle_s,
            starting_position=starting_position,
        )
        server = None if port is None else serve_metrics(telemetry.registry, port, args, consumer.health)
        where = f"; metrics on {server.url}" if server is not None else ""
        log.info("consuming stream %s; checkpoints in %s%s", args.stream, checkpoints.describe(), where)
        stop_on_signals(stop)
        try:
            consumer.run()
        finally:
            if server is not None:
                server.close()
    finally:
        router.close()
    log.info("stopped; checkpoints in %s", checkpoints.describe())
    return 0


def parse_starting_position(text: str) -> StartingPosition:
    """TRIM_HORIZON or LATEST (any case), or an ISO 8601 time with a time zone."""
    name = text.strip().upper().replace("-", "_")
    if name in ("TRIM_HORIZON", "LATEST"):
        return name
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--starting-position must be TRIM_HORIZON, LATEST or an ISO 8601 time such as 2024-05-20T16:00:00Z, "
            f"got {text!r}"
        ) from None
    if when.tzinfo is None:
        raise ConfigError(f"--starting-position {text!r} needs a time zone, such as Z or +02:00")
    return when


def _aws(args: argparse.Namespace) -> tuple[Any, Checkpoints]:
    """The Kinesis client (the stream checked to exist) and the checkpoint store."""
    try:
        from shipper.aws_clients import client as aws_client
    except ImportError as exc:
        raise ConfigError(f"shipper consume needs boto3: {INSTALL_AWS} ({exc})") from exc
    aws = partial(aws_client, region=args.region, endpoint_url=args.endpoint_url, region_from="--region or AWS_REGION")
    client = aws("kinesis")
    try:
        client.describe_stream_summary(StreamName=args.stream)
    except client.exceptions.ResourceNotFoundException as exc:
        raise ConfigError(f"--stream: no Kinesis stream named {args.stream!r}") from exc
    if args.checkpoint_table:
        return client, DynamoDBCheckpoints(aws("dynamodb"), args.checkpoint_table, args.stream)
    return client, FileCheckpoints(args.checkpoint_dir or DEFAULT_CHECKPOINT_DIR, args.stream)
