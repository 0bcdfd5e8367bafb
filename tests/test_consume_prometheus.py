"""End to end on loopback: a log group subscribed to a Kinesis stream (moto server), `shipper consume`
reading it as a process, and Debian's real Prometheus server scraping the consumer; the values are
read back through Prometheus's HTTP API, with the PromQL queries docs/prometheus.md gives users."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import boto3
import orjson

from promstack import free_port, http_get, prometheus, query, running, value, wait_for

STREAM = "central-logs"
GROUP = "/aws/lambda/orders-api"
LOG_STREAM = "2024/05/20/[$LATEST]4f9b1e2c7d6a4b0e9a3c5d7e1f2a3b4c"
FIRST_BATCH = [
    "START RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a01 Version: $LATEST",
    "REPORT RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a01\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\t"
    "Init Duration: 250.00 ms\t",
    "orders.processed:3|c|#env:prod,request_id:6bc28136-xmpl-4365-b021-0ce6b2e64a01",
    "db.query:250|ms|#env:prod",
    "START RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a02 Version: $LATEST",
    "2024-05-20T16:29:48.000Z 6bc28136-xmpl-4365-b021-0ce6b2e64a02 Task timed out after 3.00 seconds",
    "REPORT RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a02\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
    "Max Memory Used: 128 MB\tStatus: timeout",
]
SECOND_BATCH = [
    "START RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a03 Version: $LATEST",
    "[ERROR]\t2024-05-20T16:29:50.009Z\tr3\tClientError: An error occurred (ProvisionedThroughputExceededException) "
    "when calling the PutRecord operation: Rate exceeded for shard shardId-000000000001",
    "orders.processed:3|c|#env:prod,request_id:6bc28136-xmpl-4365-b021-0ce6b2e64a03",
    "REPORT RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a03\tDuration: 40.00 ms\tBilled Duration: 40 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\t",
]

# The queries docs/prometheus.md shows.
COLD_START_RATE = "sum by (function) (rate(shipper_lambda_cold_starts_total[5m]))"
P99_DURATION = "histogram_quantile(0.99, sum by (function, le) (rate(shipper_lambda_duration_seconds_bucket[5m])))"
TIMEOUTS = "sum by (function) (increase(shipper_lambda_timeouts_total[1h]))"
PROMETHEUS_DOC = Path(__file__).resolve().parent.parent / "docs" / "prometheus.md"


def test_the_queries_tested_here_are_the_ones_the_docs_show():
    assert all(promql in PROMETHEUS_DOC.read_text() for promql in (COLD_START_RATE, P99_DURATION, TIMEOUTS))


def _subscribed_log_group(aws: str) -> None:
    kinesis = boto3.client("kinesis", endpoint_url=aws)
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
    logs = boto3.client("logs", endpoint_url=aws)
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=LOG_STREAM)
    logs.put_subscription_filter(
        logGroupName=GROUP,
        filterName="central",
        filterPattern="",
        destinationArn=arn,
        roleArn="arn:aws:iam::123456789012:role/cwl-to-kinesis",
    )
    now = int(time.time() * 1000)
    for batch, start in ((FIRST_BATCH, now - 10_000), (SECOND_BATCH, now - 5_000)):
        events = [{"timestamp": start + i, "message": f"{line}\n"} for i, line in enumerate(batch)]
        logs.put_log_events(logGroupName=GROUP, logStreamName=LOG_STREAM, logEvents=events)


def test_prometheus_scrapes_lambda_health_and_custom_metrics_from_the_consumer(aws, tmp_path):
    _subscribed_log_group(aws)
    port = free_port()
    output = tmp_path / "events.ndjson"
    args = [
        sys.executable, "-m", "shipper.cli", "consume", "--stream", STREAM, "--endpoint-url", aws,
        "--checkpoint-dir", str(tmp_path / "checkpoints"), "--sink", f"jsonl:{output}", "--idle-s", "0.2",
        "--metrics-port", str(port), "--metrics-address", "127.0.0.1", "--metrics-label", "env",
    ]  # fmt: skip
    with running(args, tmp_path / "consumer.log") as consumer:
        wait_for(
            lambda: consumer.poll() is not None or http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200,
            "the consumer's /healthz",
        )
        assert consumer.poll() is None, (tmp_path / "consumer.log").read_text()
        with prometheus(tmp_path, [f"127.0.0.1:{port}"]) as server:
            fn = 'function="orders-api"'
            expected = {
                f"shipper_lambda_cold_starts_total{{{fn}}}": 1,
                f"shipper_lambda_timeouts_total{{{fn}}}": 1,
                f"shipper_lambda_invocations_total{{{fn},status='success'}}": 2,
                f'shipper_lambda_throttles_total{{{fn},error_code="ProvisionedThroughputExceededException"}}': 1,
                f'app_orders_processed_total{{{fn},env="prod"}}': 6,
                f'app_db_query_seconds_sum{{{fn},env="prod"}}': 0.25,
                "shipper_records_received_total": 2,
                'shipper_records_processed_total{outcome="delivered"}': 2,
                'count(shipper_consumer_lag_seconds{job="shipper"})': 2,
                'up{job="shipper"}': 1,
            }

            def scraped() -> bool:
                return all(value(server, promql) == wanted for promql, wanted in expected.items())

            wait_for(scraped, "Prometheus to scrape the expected values", timeout=30, interval=0.5)
            # the documented queries answer per function (rates need two scrapes of a series)
            wait_for(lambda: query(server, COLD_START_RATE), "a cold start rate", timeout=15, interval=0.5)
            assert [r["metric"] for r in query(server, COLD_START_RATE)] == [{"function": "orders-api"}]
            assert value(server, TIMEOUTS) is not None
            p99 = wait_for(lambda: query(server, P99_DURATION), "a p99 duration", timeout=15, interval=0.5)
            assert p99[0]["metric"] == {"function": "orders-api"}
            # no series anywhere carries a request id
            series = query(server, '{job="shipper"}')
            assert not [
                s
                for s in series
                if {
                    "6bc28136-xmpl-4365-b021-0ce6b2e64a01",
                    "6bc28136-xmpl-4365-b021-0ce6b2e64a02",
                    "6bc28136-xmpl-4365-b021-0ce6b2e64a03",
                }
                & set(s["metric"].values())
            ]
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(timeout=15) == 0
    events = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert {event["type"] for event in events} >= {"invocation", "cold_start", "timeout", "throttle", "metric"}
