"""The Prometheus remote-write sink against Debian's real Prometheus (remote-write receiver on) and
VictoriaMetrics, the values queried back over PromQL; faults against a loopback receiver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from loopback import Request, loopback
from test_sink_otlp import common, invocation, metric

from shipper.config import Config, SinkConfig, build_router
from shipper.delivery import MIN_SPLIT_BYTES, Status
from shipper.errors import ConfigError
from shipper.sinks import build_sink
from shipper.sinks.protos import WriteRequest
from shipper.testing import FakeTime

from promstack import prometheus, query, value, victoria_metrics, vm_flush, wait_for


def router(url: str, tmp_path: Path, **options: Any) -> tuple[Any, FakeTime]:
    time_ = FakeTime()
    spec = SinkConfig(f"prometheus-remote-write:{url}", "rw", tuple({"instance": "test-1", **options}.items()))
    config = Config((spec,), dead_letter=f"dir:{tmp_path / 'dead'}", retry_max_attempts=4)
    return build_router(config, sleep=time_.sleep, clock=time_.clock), time_


def batch(start: int, invocations: int, orders: float) -> list[dict[str, Any]]:
    events = [invocation(start + i) for i in range(invocations)]
    events += [invocation(start + invocations, "timeout"), common(start + 50, "cold_start", init_duration_ms=300.0)]
    events += [metric(start + 60, "orders", orders, "count"), metric(start + 61, "latency", 250, "timer", unit="ms")]
    return events


def written(requests: list[Request]) -> list[dict[str, Any]]:
    """Every series of every request: its labels as a dict, with `value`."""
    series = []
    for request in requests:
        assert request.headers["Content-Encoding"] == "snappy"
        assert request.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
        for ts in WriteRequest.FromString(request.body).timeseries:
            names = [label.name for label in ts.labels]
            assert names == sorted(names)
            (sample,) = ts.samples
            series.append({**{label.name: label.value for label in ts.labels}, "value": sample.value})
    return series


def find(series: list[dict[str, Any]], name: str, **labels: str) -> list[float]:
    return [s["value"] for s in series if s["__name__"] == name and all(s.get(k) == v for k, v in labels.items())]


@pytest.mark.parametrize("server", ["prometheus", "victoria-metrics"])
def test_lambda_and_custom_metrics_are_queried_back_from_a_real_server(server: str, tmp_path: Path) -> None:
    start = prometheus(tmp_path, remote_write_receiver=True) if server == "prometheus" else victoria_metrics(tmp_path)
    with start as base:
        routing, _ = router(f"{base}/api/v1/write", tmp_path)
        assert routing.deliver([("a", batch(0, 3, 2))]).statuses == {"a": Status.DELIVERED}
        assert routing.deliver([("b", batch(100, 2, 5))]).statuses == {"b": Status.DELIVERED}
        routing.close()
        if server == "victoria-metrics":
            vm_flush(base)
        selector = '{function="orders-api",job="shipper",instance="test-1"'
        invocations = f'shipper_lambda_invocations_total{selector},status="success"}}'
        wait_for(lambda: value(base, invocations) == 5, "the second write to be searchable", timeout=10)
        assert value(base, f'shipper_lambda_invocations_total{selector},status="timeout"}}') == 2
        assert value(base, f"shipper_lambda_cold_starts_total{selector}}}") == 2
        assert value(base, f"shipper_lambda_duration_seconds_count{selector}}}") == 7
        assert value(base, f"shipper_lambda_duration_seconds_sum{selector}}}") == pytest.approx(7 * 0.1205)
        assert value(base, f"app_orders_total{selector}}}") == 7
        assert value(base, f'app_latency_seconds_bucket{selector},le="0.25"}}') == 2
        assert value(base, 'shipper_events_emitted_total{type="invocation"}') == 7
        assert query(base, '{__name__=~"shipper_sink_.*|shipper_records_.*"}') == []  # not event-fed: not written


def test_retries_do_not_count_twice_and_a_refused_batch_is_still_counted_by_the_next_write(tmp_path: Path) -> None:
    with loopback(lambda request: (204, b"", {})) as server:
        server.plan.extend(["429", "503"])
        routing, time_ = router(server.url, tmp_path)
        assert routing.deliver([("a", batch(0, 3, 2))]).statuses == {"a": Status.DELIVERED}
        assert time_.sleeps[0] >= 3.0
        series = written(server.requests)
        assert find(series, "shipper_lambda_invocations_total", status="success") == [3.0, 3.0, 3.0]

        server.requests.clear()
        server.plan.append("400")
        assert routing.deliver([("b", batch(10, 1, 1))]).statuses == {"b": Status.DEAD_LETTERED}
        assert routing.deliver([("c", batch(20, 1, 1))]).statuses == {"c": Status.DELIVERED}
        routing.close()
    series = written(server.requests)
    assert find(series, "shipper_lambda_invocations_total", status="success") == [4.0, 5.0]
    (entry,) = [orjson.loads(line) for path in (tmp_path / "dead").glob("*.ndjson") for line in path.open()]
    assert entry["reason"].startswith("HTTP 400 from http://127.0.0.1")


def test_a_413_is_not_split_into_smaller_batches_that_would_count_their_events_again(tmp_path: Path) -> None:
    """A request holds series, not events: a smaller batch makes no smaller request, so a batch refused as
    too large is dead-lettered in one request, never resent in halves (which would count it again)."""
    with loopback(lambda request: (204, b"", {})) as server:
        server.plan.append("413")
        routing, _ = router(server.url, tmp_path)
        big = batch(0, 400, 1)  # more NDJSON than the smallest batch the delivery layer would halve
        assert sum(map(len, map(orjson.dumps, big))) > MIN_SPLIT_BYTES
        assert routing.deliver([("big", big)]).statuses == {"big": Status.DEAD_LETTERED}
        assert len(server.requests) == 1
        assert routing.deliver([("next", batch(1000, 1, 1))]).statuses == {"next": Status.DELIVERED}
        routing.close()
    assert find(written(server.requests[1:]), "shipper_lambda_invocations_total", status="success") == [401.0]


def test_series_are_split_into_requests_and_label_cardinality_has_the_exposition_s_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPPER_METRICS_LABELS", "shop")
    monkeypatch.setenv("SHIPPER_METRICS_MAX_SERIES", "3")
    events = [metric(i, "orders", 1, "count", tags={"shop": f"s{i}", "request_id": f"r{i}"}) for i in range(10)]
    with loopback(lambda request: (200, b"", {})) as server:
        routing, _ = router(server.url, tmp_path, max_series_per_request=4)
        assert routing.deliver([("a", events)]).statuses == {"a": Status.DELIVERED}
        routing.close()
    assert all(len(WriteRequest.FromString(r.body).timeseries) <= 4 for r in server.requests)
    series = written(server.requests)
    assert len(server.requests) == -(-len(series) // 4)
    assert sorted(s["shop"] for s in series if s["__name__"] == "app_orders_total") == ["s0", "s1", "s2"]
    assert not any("request_id" in s for s in series)
    assert find(series, "shipper_metric_samples_dropped_total", reason="series_limit") == [7.0]


def test_gzip_cannot_be_set_and_unknown_options_are_named() -> None:
    with pytest.raises(ConfigError, match="snappy"):
        build_sink("prometheus-remote-write:http://127.0.0.1:9090/api/v1/write", {"gzip": True})
    with pytest.raises(ConfigError, match="unknown prometheus-remote-write sink option"):
        build_sink("prometheus-remote-write:http://127.0.0.1:9090/api/v1/write", {"labels": "x"})
