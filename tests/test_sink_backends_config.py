"""The backend sinks as users configure them: SHIPPER_SINKS / SHIPPER_ROUTES and TOML, through build_router."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.config import build_router, load_config_from_env, load_config_from_file
from shipper.errors import ConfigError

SINKS = (
    "otlp:http://collector:4318 header.Authorization='Bearer abc'\n"
    "prometheus-remote-write:http://prometheus:9090/api/v1/write name=rw\n"
    "loki:http://loki:3100 tenant=team-a labels=function,type,level\n"
    "datadog site=datadoghq.eu api_key=env:DD_API_KEY tags=env:prod\n"
    "splunk-hec:https://splunk:8088 token=env:HEC_TOKEN index=lambda ack=true"
)


def test_every_backend_sink_is_configured_routed_and_built_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_API_KEY", "key")  # env: references are checked when a sink is built
    monkeypatch.setenv("HEC_TOKEN", "token")
    config = load_config_from_env(
        {
            "SHIPPER_SINKS": SINKS,
            "SHIPPER_ROUTES": "otlp=*;rw=invocation,metric;loki=log,error;datadog=*;splunk-hec=log",
            "SHIPPER_DEAD_LETTER": str(tmp_path / "dead"),
        }
    )
    router = build_router(config)
    try:
        names = {route.delivery.name: (type(route.delivery.sink).__name__, route.types) for route in router.routes}
        assert names == {
            "otlp": ("OtlpSink", None),
            "rw": ("RemoteWriteSink", frozenset({"invocation", "metric"})),
            "loki": ("LokiSink", frozenset({"log", "error"})),
            "datadog": ("DatadogSink", None),
            "splunk-hec": ("SplunkHecSink", frozenset({"log"})),
        }
        assert all(route.delivery.dead_letter is router.dead_letter for route in router.routes)
    finally:
        router.close()


def test_batch_limits_the_user_does_not_set_are_each_sinks_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain HTTP sink is bound by bytes (10,000 events backstop); a backend takes 1,000 events a request
    unless its API allows more (remote write); a limit the user sets wins for every one of them."""
    monkeypatch.setenv("DD_API_KEY", "key")
    monkeypatch.setenv("HEC_TOKEN", "token")
    plain = "http://ingest:8080/logs\nhttp://search:9200/lambda preset=opensearch name=search\n"
    routes = {"SHIPPER_DEAD_LETTER": str(tmp_path / "dead")}

    def limits(sinks: str) -> dict[str, tuple[int, int]]:
        router = build_router(load_config_from_env({"SHIPPER_SINKS": sinks, **routes}))
        router.close()
        return {
            r.delivery.name: (r.delivery.sink.max_batch_events, r.delivery.sink.max_batch_bytes) for r in router.routes
        }

    five_mib = 5 * 1024 * 1024
    assert limits(plain + SINKS) == {
        "http": (10_000, five_mib),
        "search": (10_000, five_mib),
        "otlp": (1000, five_mib),
        "rw": (10_000, five_mib),
        "loki": (1000, five_mib),
        "datadog": (1000, five_mib),
        "splunk-hec": (1000, five_mib),
    }
    own = "max_batch_events=300 max_batch_bytes=65536"
    chosen = limits("\n".join(f"{line} {own}" for line in (plain + SINKS).splitlines()))
    assert set(chosen.values()) == {(300, 65536)}


def test_a_toml_file_configures_them_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTLP_TOKEN", "token")
    path = tmp_path / "shipper.toml"
    path.write_text(
        f'dead_letter = "dir:{tmp_path / "dead"}"\n'
        '[[sinks]]\nspec = "otlp:https://otlp.example.com"\napi_key = "env:OTLP_TOKEN"\nsignals = "logs"\n'
        '[sinks.header]\n"X-Tenant" = "a"\n'
        '[[sinks]]\nspec = "loki:https://logs.example.com"\nformat = "json"\ngzip = true\n'
    )
    router = build_router(load_config_from_file(str(path)))
    router.close()
    otlp, loki = (route.delivery.sink for route in router.routes)
    assert repr(otlp).startswith(
        "OtlpSink(logs=HttpSink('https://otlp.example.com/v1/logs'"
    ) and "metrics=None" in repr(otlp)
    assert loki.format == "json"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("otlp:http://c:4318 signals=traces", "signals"),
        ("loki:http://l:3100 labels=request_id", "labels are chosen among"),
        ("datadog site=datadoghq.eu", "needs api_key"),
        ("splunk-hec:https://s:8088", "needs token"),
        ("prometheus-remote-write:http://p:9090/api/v1/write gzip=true", "snappy"),
    ],
)
def test_a_bad_backend_sink_is_a_configuration_error_naming_where(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"SHIPPER_SINKS entry 1: sink .*{message}"):
        build_router(load_config_from_env({"SHIPPER_SINKS": spec}))
