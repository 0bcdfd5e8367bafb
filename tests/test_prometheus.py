"""Prometheus metrics: Lambda health and custom metrics from classified log lines, the shipper's own
counters from a real Pipeline and Router, cardinality limits under hostile input, the exposition checked
by the real promtool, and the /metrics + /healthz server."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request

import pytest
from fake_sinks import delivery
from prometheus_client import CollectorRegistry, generate_latest

from shipper.delivery import Delivery, Route, Router
from shipper.errors import ConfigError
from shipper.pipeline import Pipeline
from shipper.telemetry import Telemetry, TelemetryConfig, start_metrics_server
from shipper.telemetry.config import telemetry_config_from_env
from shipper.telemetry.custom import MAX_SET_MEMBERS, SECONDS_BUCKETS
from shipper.telemetry.naming import metric_name
from shipper.testing import FakeTime, ScriptedSink, fail

from generate import build_corpus
from helpers import classify_messages, cwl_document, gz, kinesis_event
from promstack import http_get, promtool_check_metrics

FN = {"function": "orders-api"}

LAMBDA_LINES = [
    "START RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a01 Version: $LATEST\n",
    "REPORT RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a01\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\tInit Duration: 250.00 ms\t\n",
    "START RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a02 Version: $LATEST\n",
    "2024-05-20T16:29:48.000Z 6bc28136-xmpl-4365-b021-0ce6b2e64a02 Task timed out after 3.00 seconds\n",
    "REPORT RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a02\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\tStatus: timeout\n",
    "START RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a03 Version: $LATEST\n",
    "[ERROR]\t2024-05-20T16:29:45.009Z\tr3\tClientError: An error occurred (ProvisionedThroughputExceededException) when calling the PutRecord operation: Rate exceeded\n",
    "REPORT RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64a03\tDuration: 40.00 ms\tBilled Duration: 40 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\t\n",
]


def _sample(telemetry: Telemetry, name: str, **labels: str) -> float | None:
    return telemetry.registry.get_sample_value(name, labels)


def _custom(lines: list[str], config: TelemetryConfig | None = None) -> Telemetry:
    telemetry = Telemetry(config or TelemetryConfig(labels=("env",)))
    telemetry.observe_events(classify_messages(lines))
    return telemetry


def test_lambda_health_comes_from_report_timeout_and_throttle_lines():
    telemetry = Telemetry()
    telemetry.observe_events(classify_messages(LAMBDA_LINES))

    assert _sample(telemetry, "shipper_lambda_invocations_total", **FN, status="success") == 2
    assert _sample(telemetry, "shipper_lambda_invocations_total", **FN, status="timeout") == 1
    assert _sample(telemetry, "shipper_lambda_cold_starts_total", **FN) == 1
    assert _sample(telemetry, "shipper_lambda_timeouts_total", **FN) == 1
    assert _sample(telemetry, "shipper_lambda_out_of_memory_total", **FN) is None
    throttle = {**FN, "error_code": "ProvisionedThroughputExceededException"}
    assert _sample(telemetry, "shipper_lambda_throttles_total", **throttle) == 1
    # Durations in seconds, in buckets from 1 ms to 15 minutes.
    assert _sample(telemetry, "shipper_lambda_duration_seconds_count", **FN) == 3
    assert _sample(telemetry, "shipper_lambda_duration_seconds_sum", **FN) == pytest.approx(3.0525)
    assert _sample(telemetry, "shipper_lambda_duration_seconds_bucket", **FN, le="0.025") == 1
    assert _sample(telemetry, "shipper_lambda_duration_seconds_bucket", **FN, le="0.05") == 2
    assert _sample(telemetry, "shipper_lambda_duration_seconds_bucket", **FN, le="2.5") == 2
    assert _sample(telemetry, "shipper_lambda_duration_seconds_bucket", **FN, le="5.0") == 3
    assert (SECONDS_BUCKETS[0], SECONDS_BUCKETS[-1]) == (0.001, 900.0)
    assert _sample(telemetry, "shipper_lambda_init_duration_seconds_sum", **FN) == pytest.approx(0.25)
    assert _sample(telemetry, "shipper_lambda_billed_seconds_total", **FN) == pytest.approx(3.053)
    # Memory: 64/128, 128/128 and 70/128 of the configured size.
    assert _sample(telemetry, "shipper_lambda_memory_utilization_ratio_bucket", **FN, le="0.5") == 1
    assert _sample(telemetry, "shipper_lambda_memory_utilization_ratio_bucket", **FN, le="0.9") == 2
    assert _sample(telemetry, "shipper_lambda_memory_utilization_ratio_count", **FN) == 3
    assert _sample(telemetry, "shipper_events_emitted_total", type="invocation") == 3
    assert _sample(telemetry, "shipper_events_emitted_total", type="throttle") == 1


def test_no_series_is_labelled_with_a_request_id():
    lines = [
        *LAMBDA_LINES,
        "orders.processed:1|c|#env:prod,request_id:6bc28136-xmpl-4365-b021-0ce6b2e64a03,trace_id:t-1\n",
    ]
    telemetry = _custom(lines, TelemetryConfig(labels=("env",)))
    samples = [sample for family in telemetry.registry.collect() for sample in family.samples]
    assert samples
    for sample in samples:
        assert not any("request" in name or "trace" in name for name in sample.labels), sample
        assert not set(sample.labels.values()) & {
            "6bc28136-xmpl-4365-b021-0ce6b2e64a01",
            "6bc28136-xmpl-4365-b021-0ce6b2e64a02",
            "6bc28136-xmpl-4365-b021-0ce6b2e64a03",
            "t-1",
        }, sample


@pytest.mark.parametrize("tag", ["request_id", "RequestId", "aws.request.id", "traceId", "x-span-id"])
def test_a_request_id_tag_is_refused_as_a_label(tag):
    with pytest.raises(ConfigError, match="identifies a request"):
        telemetry_config_from_env({"SHIPPER_METRICS_LABELS": f"env,{tag}"})


def test_a_tag_whose_value_is_the_request_id_is_not_a_label_value():
    [event] = classify_messages(["orders.processed:1|c|#env:prod,customer:cust-1\n"])
    event["request_id"] = "cust-1"  # a tag that happens to carry this invocation's request id
    telemetry = Telemetry(TelemetryConfig(labels=("env", "customer")))
    telemetry.observe_events([event])
    assert _sample(telemetry, "app_orders_processed_total", **FN, env="prod", customer="") == 1


def test_counts_become_counters_scaled_by_the_sample_rate_and_tags_labels_only_when_allowed():
    telemetry = _custom(
        [
            "orders.processed:3|c|@0.5|#env:prod,region:eu-west-1\n",
            "orders.processed:1|c|#env:prod\n",
            "orders.processed:2|c|#env:dev\n",
        ]
    )
    assert _sample(telemetry, "app_orders_processed_total", **FN, env="prod") == 7
    assert _sample(telemetry, "app_orders_processed_total", **FN, env="dev") == 2
    labels = {
        name
        for family in telemetry.registry.collect()
        if family.name == "app_orders_processed"
        for sample in family.samples
        for name in sample.labels
    }
    assert labels == {"function", "env"}  # region is not in the allow-list


def test_gauges_are_set_or_adjusted_by_statsd_deltas():
    telemetry = _custom(["queue.depth:10|g\n", "queue.depth:-4|g\n", "queue.depth:+2|g\n"])
    assert _sample(telemetry, "app_queue_depth", **FN, env="") == 8
    telemetry.observe_events(classify_messages(["queue.depth:3|g\n"]))
    assert _sample(telemetry, "app_queue_depth", **FN, env="") == 3


def test_timers_histograms_and_distributions_become_histograms_in_base_units():
    telemetry = _custom(
        [
            "db.query:250|ms|#env:prod\n",
            "db.query:1500|ms|#env:prod\n",
            "batch.size:7|h\n",
            "MONITORING|1716222585|2048|distribution|payload.kb|#env:prod\n",
        ]
    )
    prod = {**FN, "env": "prod"}
    assert _sample(telemetry, "app_db_query_seconds_sum", **prod) == pytest.approx(1.75)
    assert _sample(telemetry, "app_db_query_seconds_bucket", **prod, le="0.25") == 1
    assert _sample(telemetry, "app_db_query_seconds_bucket", **prod, le="1.0") == 1
    assert _sample(telemetry, "app_db_query_seconds_bucket", **prod, le="2.5") == 2
    assert _sample(telemetry, "app_db_query_seconds_bucket", **prod, le="+Inf") == 2
    assert _sample(telemetry, "app_batch_size_count", **FN, env="") == 1
    assert _sample(telemetry, "app_batch_size_bucket", **FN, env="", le="10.0") == 1
    assert _sample(telemetry, "app_batch_size_bucket", **FN, env="", le="5.0") == 0
    # a unit written at the end of the name is folded too: payload.kb -> bytes
    assert _sample(telemetry, "app_payload_bytes_sum", **prod) == 2048 * 1024


def test_emf_units_are_folded_into_names_and_values_converted():
    emf = (
        '{"_aws":{"Timestamp":1716222585000,"CloudWatchMetrics":[{"Namespace":"Orders","Dimensions":[["env"]],'
        '"Metrics":[{"Name":"ProcessingTime","Unit":"Milliseconds"},{"Name":"CpuUsed","Unit":"Percent"},'
        '{"Name":"PayloadSize","Unit":"Kilobytes"},{"Name":"OrdersPlaced","Unit":"Count"}]}]},'
        '"env":"prod","ProcessingTime":1250,"CpuUsed":40,"PayloadSize":2,"OrdersPlaced":3}\n'
    )
    telemetry = _custom([emf])
    prod = {**FN, "env": "prod"}
    assert _sample(telemetry, "app_processing_time_seconds_sum", **prod) == pytest.approx(1.25)
    assert _sample(telemetry, "app_cpu_used_ratio", **prod) == pytest.approx(0.4)
    assert _sample(telemetry, "app_payload_size_bytes", **prod) == 2048
    assert _sample(telemetry, "app_orders_placed_total", **prod) == 3  # unit Count: a counter


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("orders.processed", None, "counter", ("app_orders_processed_total", 1.0)),
        ("jobs_total", None, "counter", ("app_jobs_total", 1.0)),
        ("HTTPErrors", "Count", "counter", ("app_http_errors_total", 1.0)),
        ("ProcessingTime", "Milliseconds", "histogram", ("app_processing_time_seconds", 0.001)),
        ("latency_ms", "Milliseconds", "histogram", ("app_latency_seconds", 0.001)),
        ("wait", "µs", "histogram", ("app_wait_seconds", 1e-6)),
        ("throughput", "Bytes/Second", "gauge", ("app_throughput_bytes_per_second", 1.0)),
        ("jobs.gauge", None, "gauge", ("app_jobs", 1.0)),
        ("queue.count", None, "gauge", ("app_queue_count_value", 1.0)),
        ("cart.total", None, "gauge", ("app_cart_total_value", 1.0)),
        ("weird name-ü/ok", None, "gauge", ("app_weird_name_ok", 1.0)),
        ("!!!", None, "gauge", None),
    ],
)
def test_names_are_sanitised_to_prometheus_rules(name, unit, kind, expected):
    assert metric_name("app_", name, unit, kind) == expected


def test_sets_count_distinct_values_per_scrape_window():
    telemetry = _custom(["users.seen:1|s\n", "users.seen:2|s\n", "users.seen:1|s\n"])
    assert _sample(telemetry, "app_users_seen", **FN, env="") == 2
    # get_sample_value collected once: the next window starts empty
    assert _sample(telemetry, "app_users_seen", **FN, env="") == 0
    telemetry.observe_events(classify_messages(["users.seen:9|s\n"]))
    assert _sample(telemetry, "app_users_seen", **FN, env="") == 1


def test_the_prefix_is_configurable():
    telemetry = _custom(["orders.processed:1|c\n"], TelemetryConfig(prefix="acme_"))
    assert _sample(telemetry, "acme_orders_processed_total", **FN) == 1


def test_hostile_tag_values_are_capped_per_metric_and_the_drops_are_counted():
    """10,000 distinct values of an allow-listed tag: the metric keeps max_series label sets, no more."""
    lines = [f"orders.processed:1|c|#customer:c{i}\n" for i in range(10_000)]
    telemetry = _custom(lines, TelemetryConfig(labels=("customer",), max_series=100))
    family = next(f for f in telemetry.registry.collect() if f.name == "app_orders_processed")
    assert len([s for s in family.samples if s.name.endswith("_total")]) == 100
    dropped = _sample(
        telemetry, "shipper_metric_samples_dropped_total", metric="app_orders_processed_total", reason="series_limit"
    )
    assert dropped == 9_900
    assert len(generate_latest(telemetry.registry)) < 50_000


def test_hostile_metric_names_and_set_members_are_capped_too():
    members = [f"users.seen:{i}|s\n" for i in range(MAX_SET_MEMBERS + 50)]
    names = [f"m{i}.x:1|g\n" for i in range(2_000)]
    telemetry = _custom(members + names, TelemetryConfig(max_metrics=10))
    assert _sample(telemetry, "app_users_seen", **FN) == MAX_SET_MEMBERS
    families = [f.name for f in telemetry.registry.collect() if f.name.startswith("app_")]
    assert len(families) == 10
    dropped = "shipper_metric_samples_dropped_total"
    assert _sample(telemetry, dropped, metric="app_users_seen", reason="set_member_limit") == 50
    assert _sample(telemetry, dropped, metric="", reason="metric_limit") == 2_000 - 9


def test_hostile_function_names_cannot_explode_the_lambda_families(monkeypatch):
    monkeypatch.setattr("shipper.telemetry.registry.LAMBDA_MAX_SERIES", 100)
    [invocation] = [e for e in classify_messages(LAMBDA_LINES[:2]) if e["type"] == "invocation"]
    telemetry = Telemetry()
    telemetry.observe_events({**invocation, "function": f"fn-{i}"} for i in range(10_000))
    family = next(f for f in telemetry.registry.collect() if f.name == "shipper_lambda_invocations")
    assert len([s for s in family.samples if s.name.endswith("_total")]) == 100
    dropped = {"metric": "shipper_lambda_invocations_total", "reason": "series_limit"}
    assert _sample(telemetry, "shipper_metric_samples_dropped_total", **dropped) == 9_900


def test_a_name_used_with_two_types_keeps_the_first_and_counts_the_rest():
    telemetry = _custom(["jobs.gauge:3|g\n", "jobs.histogram:4|h\n", "jobs:1|h\n"])
    assert _sample(telemetry, "app_jobs", **FN, env="") == 3
    assert _sample(telemetry, "shipper_metric_samples_dropped_total", metric="app_jobs", reason="type_conflict") == 2


def test_negative_counts_and_non_finite_values_are_dropped_and_counted():
    [count] = classify_messages(["orders.processed:1|c\n"])
    telemetry = Telemetry()
    telemetry.observe_events([count, {**count, "value": -5.0}, {**count, "value": float("nan")}])
    assert _sample(telemetry, "app_orders_processed_total", **FN) == 1
    reasons = ("negative_count", "not_finite")
    for reason in reasons:
        assert (
            _sample(
                telemetry, "shipper_metric_samples_dropped_total", metric="app_orders_processed_total", reason=reason
            )
            == 1
        )


def test_a_value_beyond_float64_or_not_a_number_is_dropped_as_not_finite_never_raised():
    [count] = classify_messages(["orders.processed:1|c\n"])
    telemetry = Telemetry()
    telemetry.observe_events([count, *({**count, "value": value} for value in (10**400, -(10**400), "7", True))])
    assert _sample(telemetry, "app_orders_processed_total", **FN) == 1
    dropped = {"metric": "app_orders_processed_total", "reason": "not_finite"}
    assert _sample(telemetry, "shipper_metric_samples_dropped_total", **dropped) == 4


def _router(sink: ScriptedSink, dead: ScriptedSink, time_: FakeTime) -> Router:
    dead_letter = Delivery(dead, name="dead_letter", sleep=time_.sleep, clock=time_.clock)
    return Router([Route(delivery(sink, time_, attempts=2, dead_letter=dead_letter))], dead_letter)


def test_the_shippers_own_counters_follow_the_pipeline_and_the_router():
    time_ = FakeTime()
    sink, dead = ScriptedSink(fail(), name="search"), ScriptedSink(name="dl")
    router = _router(sink, dead, time_)
    pipeline = Pipeline()
    telemetry = Telemetry()
    good = gz(cwl_document(["hello\n", "world\n"]))
    event = kinesis_event([good, b"\x1f\x8bnot gzip", b"plain text"])
    outcomes = pipeline.process_kinesis_event(event)
    report = router.deliver([(o.origin, [*o.events, *o.rejects]) for o in outcomes])
    telemetry.observe_outcomes(outcomes)
    telemetry.observe_report(report)
    telemetry.sync(pipeline.counts, router.stats())
    telemetry.observe_batch_seconds(0.02)

    assert _sample(telemetry, "shipper_records_received_total") == 3
    assert _sample(telemetry, "shipper_log_events_received_total") == 2
    assert _sample(telemetry, "shipper_events_emitted_total", type="log") == 2
    assert _sample(telemetry, "shipper_decode_rejects_total", reason="unknown_format") == 1
    assert (
        sum(_sample(telemetry, "shipper_decode_rejects_total", reason=r) or 0 for r in ("bad_gzip", "truncated_gzip"))
        == 1
    )
    assert _sample(telemetry, "shipper_records_processed_total", outcome="delivered") == 1
    assert _sample(telemetry, "shipper_records_processed_total", outcome="dead_lettered") == 2
    search = {"sink": "search"}
    assert _sample(telemetry, "shipper_sink_events_received_total", **search) == 2
    assert _sample(telemetry, "shipper_sink_events_sent_total", **search) == 2
    assert _sample(telemetry, "shipper_sink_send_errors_total", **search) == 1
    assert _sample(telemetry, "shipper_sink_retries_total", **search) == 1
    assert _sample(telemetry, "shipper_sink_events_dead_lettered_total", **search) == 0
    assert _sample(telemetry, "shipper_sink_events_sent_total", sink="dead_letter") == 2  # the two rejects
    assert _sample(telemetry, "shipper_batch_duration_seconds_count") == 1

    # sync adds only what grew since the previous sync
    telemetry.sync(pipeline.counts, router.stats())
    assert _sample(telemetry, "shipper_records_received_total") == 3


def test_consumer_lag_is_per_shard_and_leaves_with_the_shard():
    telemetry = Telemetry()
    telemetry.set_consumer_lag("shardId-000000000001", 2500)
    assert _sample(telemetry, "shipper_consumer_lag_seconds", shard="shardId-000000000001") == 2.5
    telemetry.set_consumer_lag("shardId-000000000001", None)
    assert _sample(telemetry, "shipper_consumer_lag_seconds", shard="shardId-000000000001") is None


def test_two_instances_do_not_share_series():
    first, second = Telemetry(), Telemetry()
    first.observe_events(classify_messages(LAMBDA_LINES))
    assert _sample(second, "shipper_lambda_cold_starts_total", **FN) is None
    assert isinstance(first.registry, CollectorRegistry)


def test_promtool_accepts_the_exposition_of_a_realistic_fleet():
    """Every family populated: a generated fleet's logs, hostile tags, rejects, sinks, consumer lag."""
    telemetry = Telemetry(TelemetryConfig(labels=("env", "region", "customer"), max_series=50))
    pipeline = Pipeline()
    time_ = FakeTime()
    router = _router(ScriptedSink(fail(), name="search"), ScriptedSink(name="dl"), time_)
    for event in build_corpus(3000, seed=3).kinesis_events:
        outcomes = pipeline.process_kinesis_event(event)
        telemetry.observe_outcomes(outcomes)
        telemetry.observe_report(router.deliver([(o.origin, [*o.events, *o.rejects]) for o in outcomes]))
    telemetry.observe_events(classify_messages([f"orders.processed:1|c|#customer:c{i}\n" for i in range(200)]))
    telemetry.observe_events(classify_messages(["users.seen:1|s\n", "queue.depth:-1|g\n", "jobs.gauge:1|g\n"]))
    telemetry.sync(pipeline.counts, router.stats())
    telemetry.observe_batch_seconds(0.5)
    telemetry.set_consumer_lag("shardId-000000000000", 1200)
    telemetry.count_read_error("shardId-000000000000", "ProvisionedThroughputExceededException")

    exposition = generate_latest(telemetry.registry)
    for family in (
        "shipper_lambda_throttles_total",
        "shipper_lambda_errors_total",
        "app_",
        "shipper_decode_rejects",
        "shipper_sink_retries_total",
        "shipper_metric_samples_dropped_total",
    ):
        assert family.encode() in exposition
    checked = promtool_check_metrics(exposition)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_server_serves_metrics_and_health_on_loopback():
    telemetry = Telemetry()
    telemetry.observe_events(classify_messages(LAMBDA_LINES))
    problem: list[str] = []
    server = start_metrics_server(telemetry.registry, 0, "127.0.0.1", lambda: problem[0] if problem else None)
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert server.url == f"{base}/metrics"
        status, body = http_get(f"{base}/metrics")
        assert status == 200
        assert b'shipper_lambda_cold_starts_total{function="orders-api"} 1.0' in body
        assert http_get(f"{base}/healthz") == (200, b"ok\n")
        problem.append("no successful GetRecords for 90 s")
        assert http_get(f"{base}/healthz") == (503, b"no successful GetRecords for 90 s\n")
        assert http_get(f"{base}/other")[0] == 404
        request = urllib.request.Request(f"{base}/metrics", headers={"Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert response.read().endswith(b"# EOF\n")
    finally:
        server.close()
    assert http_get(f"{base}/metrics")[0] == 0  # the port is released


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_the_server_serves_on_an_ipv6_address():
    telemetry = Telemetry()
    telemetry.observe_events(classify_messages(LAMBDA_LINES))
    server = start_metrics_server(telemetry.registry, 0, "::1")
    try:
        assert server.url == f"http://[::1]:{server.port}/metrics"
        status, body = http_get(server.url)
        assert status == 200 and b"shipper_lambda_cold_starts_total" in body
    finally:
        server.close()


def test_importing_the_handler_does_not_import_prometheus_client_unless_push_is_configured():
    check = (
        "import sys, shipper.handler\n"
        "from shipper.telemetry import lambda_telemetry_from_env\n"
        "assert lambda_telemetry_from_env({'SHIPPER_METRICS_EMF': 'true'}) is not None\n"
        "assert lambda_telemetry_from_env({}) is None\n"
        "assert 'prometheus_client' not in sys.modules, 'imported'\n"
        "lambda_telemetry_from_env({'SHIPPER_PUSHGATEWAY_URL': 'http://127.0.0.1:9'}).telemetry('shardId-1')\n"
        "assert 'prometheus_client' in sys.modules\n"
    )
    completed = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
