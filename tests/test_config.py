"""Configuration from the environment, a TOML file and flags; building the router from it."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import orjson
import pytest

from shipper.config import Config, SinkConfig, build_router, load_config_from_env, load_config_from_file, merge_cli
from shipper.delivery import RetryPolicy, Status
from shipper.errors import ConfigError
from shipper.reject import Reject
from shipper.sinks.http import HttpSink
from shipper.sinks.kinesis import KinesisSink
from shipper.sinks.s3 import S3Sink


def test_environment_describes_sinks_routes_dead_letter_and_knobs(tmp_path: Path) -> None:
    config = load_config_from_env(
        {
            "SHIPPER_SINKS": f"https://logs.example.com/ingest preset=webhook gzip=true api_key=env:LOGS_KEY;"
            f" jsonl:{tmp_path}/all.ndjson.gz name=archive\n cloudwatch:emf",
            "SHIPPER_ROUTES": "http=log,error; archive=*; cloudwatch=invocation,metric",
            "SHIPPER_DEAD_LETTER": str(tmp_path / "dead"),
            "SHIPPER_RETRY_MAX_ATTEMPTS": "7",
            "SHIPPER_RETRY_BASE_S": "0.05",
            "SHIPPER_BATCH_MAX_WAIT_S": "0",
            "UNRELATED": "x",
        }
    )
    assert config == Config(
        sinks=(
            SinkConfig(
                "https://logs.example.com/ingest",
                "http",
                (("api_key", "env:LOGS_KEY"), ("gzip", "true"), ("preset", "webhook")),
                frozenset({"log", "error"}),
                "SHIPPER_SINKS entry 1",
            ),
            SinkConfig(f"jsonl:{tmp_path}/all.ndjson.gz", "archive", (), None, "SHIPPER_SINKS entry 2"),
            SinkConfig(
                "cloudwatch:emf", "cloudwatch", (), frozenset({"invocation", "metric"}), "SHIPPER_SINKS entry 3"
            ),
        ),
        dead_letter=f"dir:{tmp_path}/dead",
        retry_max_attempts=7,
        retry_base_s=0.05,
        batch_max_wait_s=0.0,
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "SHIPPER_SINKS is not set"),
        ({"SHIPPER_SINKS": " ; "}, "SHIPPER_SINKS is not set"),
        ({"SHIPPER_SINKS": "stdout; ftp://x"}, "SHIPPER_SINKS entry 2: unknown sink 'ftp://x'"),
        ({"SHIPPER_SINKS": "https://x gzip"}, "SHIPPER_SINKS entry 1: 'gzip' is not KEY=VALUE"),
        ({"SHIPPER_SINKS": "https://x gzip=true gzip=false"}, "option 'gzip' is given twice"),
        ({"SHIPPER_SINKS": "https://x header.A='open"}, "SHIPPER_SINKS entry 1: cannot read"),
        ({"SHIPPER_SINKS": "stdout name=a/b"}, "sink name 'a/b'"),
        ({"SHIPPER_SINKS": "stdout; stdout"}, "SHIPPER_SINKS entry 1 and SHIPPER_SINKS entry 2: two sinks are named"),
        (
            {"SHIPPER_SINKS": "stdout", "SHIPPER_ROUTES": "stdout=lgo"},
            "SHIPPER_ROUTES: sink 'stdout': unknown event type 'lgo'",
        ),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_ROUTES": "stdout"}, "SHIPPER_ROUTES: 'stdout' is not NAME=TYPE"),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_ROUTES": "s3=*"}, "SHIPPER_ROUTES: no sink is named 's3'"),
        ({"SHIPPER_SINKS": "stdout;null", "SHIPPER_ROUTES": "stdout=*"}, "sink 'null' gets no events"),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_ROUTES": "stdout=*;stdout=log"}, "sink 'stdout' is routed twice"),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_RETRY_MAX_ATTEMPTS": "three"}, "SHIPPER_RETRY_MAX_ATTEMPTS: 'three' is"),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_RETRY_MAX_ATTEMPTS": "2.5"}, "is not a whole number"),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_RETRY_MAX_ATTEMPTS": "0"}, "'0' is out of range: expected 1 to 100"),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_RETRY_CAP_S": "nan"}, "SHIPPER_RETRY_CAP_S: 'nan' is out of range"),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_BATCH_MAX_WAIT_S": "-1"}, "SHIPPER_BATCH_MAX_WAIT_S: '-1' is out of"),
        ({"SHIPPER_SINKS": "stdout", "SHIPPER_DEAD_LETTER": "http://x"}, "SHIPPER_DEAD_LETTER: 'http://x' cannot hold"),
    ],
)
def test_bad_environment_values_are_named_with_what_is_wrong(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_from_env(environ)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("sinks", "message"),
    [
        ("stdout; https://x colour=red", "SHIPPER_SINKS entry 2: sink 'http': unknown HTTP sink option(s) colour"),
        ("jsonl:/nonexistent-dir/x.ndjson", "SHIPPER_SINKS entry 1: sink 'jsonl': cannot open"),
        ("stdout level=debug", "SHIPPER_SINKS entry 1: sink 'stdout': sink 'stdout' takes no options"),
        ("jsonl:", "sink 'jsonl' needs a file"),
        ("kinesis:logs colour=red", "SHIPPER_SINKS entry 1: sink 'kinesis': unknown option(s) colour"),
    ],
)
def test_sink_options_are_checked_when_the_router_is_built(sinks: str, message: str) -> None:
    config = load_config_from_env({"SHIPPER_SINKS": sinks})
    with pytest.raises(ConfigError) as raised:
        build_router(config)
    assert message in str(raised.value)


def test_values_from_variables_are_typed_for_the_sinks() -> None:
    config = load_config_from_env(
        {
            "SHIPPER_SINKS": "kinesis:logs region=eu-west-1 timeout=5 partition_key=random; s3://bucket/dead region=eu-west-1"
        }
    )
    router = build_router(config)
    kinesis, s3 = (route.delivery.sink for route in router.routes)
    assert isinstance(kinesis, KinesisSink) and isinstance(s3, S3Sink)
    # Kept as written; each option reads its text by its own type when the sink is built.
    assert dict(config.sinks[0].options) == {"region": "eu-west-1", "timeout": "5", "partition_key": "random"}
    assert kinesis._client.meta.config.read_timeout == 5.0 and not kinesis._by_function
    assert kinesis._client.meta.region_name == "eu-west-1"


def test_building_a_router_without_aws_sinks_does_not_import_boto3(tmp_path: Path) -> None:
    program = textwrap.dedent(
        f"""
        import sys
        from shipper.config import build_router, load_config_from_env
        router = build_router(load_config_from_env({{
            "SHIPPER_SINKS": "stdout; null; jsonl:{tmp_path}/x.ndjson; https://logs.example.com api_key=env:K",
            "SHIPPER_DEAD_LETTER": "{tmp_path}/dead",
        }}))
        assert len(router.routes) == 4
        print("boto3" in sys.modules, "botocore" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "K": "key"},
    )
    assert result.stdout.split() == ["False", "False"]


def test_file_config(tmp_path: Path) -> None:
    path = tmp_path / "shipper.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            dead_letter = "dir:{tmp_path}/dead"

            [[sinks]]
            spec = "https://search.example.com:9200"
            name = "search"
            preset = "elasticsearch"
            index = "lambda"
            read_timeout_s = 10
            header = {{ X-Team = "payments" }}

            [[sinks]]
            spec = "jsonl:{tmp_path}/all.ndjson"

            [routes]
            search = ["log", "error"]
            jsonl = "*"

            [delivery]
            retry_max_attempts = 3
            retry_cap_s = 2.5
            retry_after_max_s = 45
            """
        )
    )
    config = load_config_from_file(str(path))
    assert config.sinks[0] == SinkConfig(
        "https://search.example.com:9200",
        "search",
        (("header.X-Team", "payments"), ("index", "lambda"), ("preset", "elasticsearch"), ("read_timeout_s", 10)),
        frozenset({"log", "error"}),
        f"{path}: sinks[0]",
    )
    assert config.sinks[1].types is None
    assert (config.retry_max_attempts, config.retry_cap_s, config.dead_letter) == (3, 2.5, f"dir:{tmp_path}/dead")
    router = build_router(config)
    assert isinstance(router.routes[0].delivery.sink, HttpSink)
    assert router.routes[0].delivery.retry == RetryPolicy(3, 0.2, 2.5, 45.0)
    router.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sinks = [", "is not valid TOML"),
        ('dead_leter = "x"\n[[sinks]]\nspec = "stdout"', "unknown key(s) dead_leter"),
        ('dead_letter = "x"', "no sink configured"),
        ("[[sinks]]\nname = 'a'", "sinks[0]: needs spec"),
        ("[[sinks]]\nspec = 'https://x'\nretries = [1, 2]", "sinks[0]: option 'retries' must be a string"),
        ("[[sinks]]\nspec = 'stdout'\n[delivery]\nretry_max_attempts = '5x'", "delivery.retry_max_attempts: '5x'"),
        ("[[sinks]]\nspec = 'stdout'\n[delivery]\nretry_max_attempts = true", "retry_max_attempts: True is not a"),
        ("[[sinks]]\nspec = 'stdout'\n[delivery]\nmax_attempts = 5", "delivery: unknown key(s) max_attempts"),
        ("[[sinks]]\nspec = 'stdout'\n[routes]\nstdout = 5", "routes.stdout: expected a list of event types"),
        ("[[sinks]]\nspec = 'stdout'\n[routes]\nstdout = ['logs']", "routes: sink 'stdout': unknown event type 'logs'"),
        ("dead_letter = 5\n[[sinks]]\nspec = 'stdout'", "dead_letter must be a string"),
    ],
)
def test_bad_files_are_named_with_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "shipper.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config_from_file(str(path))
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_a_missing_file_is_named() -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file /nonexistent/shipper\.toml"):
        load_config_from_file("/nonexistent/shipper.toml")


def test_flags_go_on_top() -> None:
    base = load_config_from_env(
        {"SHIPPER_SINKS": "stdout; null", "SHIPPER_ROUTES": "stdout=log;null=*", "SHIPPER_RETRY_MAX_ATTEMPTS": "9"}
    )
    rerouted = merge_cli(base, routes=["stdout=metric", "null=log"], retry_base_s="0.5", dead_letter="dead")
    assert [sink.types for sink in rerouted.sinks] == [frozenset({"metric"}), frozenset({"log"})]
    assert (rerouted.retry_max_attempts, rerouted.retry_base_s, rerouted.dead_letter) == (9, 0.5, "dir:dead")

    replaced = merge_cli(base, sinks=["jsonl:out.ndjson name=out"], batch_max_wait_s=2)
    assert [(sink.name, sink.types, sink.where) for sink in replaced.sinks] == [
        ("out", None, "--sink 'jsonl:out.ndjson name=out'")
    ]
    assert (replaced.batch_max_wait_s, replaced.retry_max_attempts) == (2.0, 9)
    assert merge_cli(None, sinks=["stdout"]) == Config((SinkConfig("stdout", "stdout", (), None, "--sink 'stdout'"),))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "no sink configured: pass --sink"),
        ({"sinks": ["stdout"], "retry_cap_s": "soon"}, "--retry-cap-s: 'soon' is not a number"),
        ({"sinks": ["stdout"], "retry_max_attempts": 0}, "--retry-max-attempts: 0 is out of range"),
        ({"sinks": ["stdout"], "routes": ["stdout=*", "null=log"]}, "--route: no sink is named 'null'"),
        ({"sinks": ["stdout"], "dead_letter": "kinesis:x"}, "--dead-letter: 'kinesis:x' cannot hold dead letters"),
        ({"sinks": ["nowhere:x"]}, "--sink 'nowhere:x': unknown sink"),
    ],
)
def test_bad_flags_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        merge_cli(None, **kwargs)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_built_router_routes_and_dead_letters_to_a_directory(tmp_path: Path) -> None:
    config = load_config_from_env(
        {
            "SHIPPER_SINKS": f"jsonl:{tmp_path}/logs.ndjson name=logs; jsonl:{tmp_path}/metrics.ndjson name=metrics",
            "SHIPPER_ROUTES": "logs=log;metrics=metric,invocation",
            "SHIPPER_DEAD_LETTER": f"dir:{tmp_path}/dead",
        }
    )
    router = build_router(config)
    reject = Reject("bad_json", "not JSON", b"{", sequence_number="2")
    log_event = {"type": "log", "event_id": "1", "message": "hello"}
    metric_event = {"type": "metric", "event_id": "2", "name": "orders", "value": 1.0}
    report = router.deliver([("1", [log_event, metric_event]), ("2", [reject])])
    router.close()

    assert report.statuses == {"1": Status.DELIVERED, "2": Status.DEAD_LETTERED}
    assert orjson.loads((tmp_path / "logs.ndjson").read_bytes()) == log_event
    assert orjson.loads((tmp_path / "metrics.ndjson").read_bytes()) == metric_event
    (dead_file,) = (tmp_path / "dead").iterdir()
    assert orjson.loads(dead_file.read_bytes()) == reject.to_dead_letter()


def test_dead_letter_to_s3(aws: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="dead-letters")
    config = load_config_from_env(
        {"SHIPPER_SINKS": "null", "SHIPPER_DEAD_LETTER": "s3://dead-letters/shipper", "SHIPPER_RETRY_BASE_S": "0.01"}
    )
    router = build_router(config)
    reject = Reject("bad_base64", "not base64", b"%%", sequence_number="9")
    report = router.deliver([("9", [reject])])
    assert report.statuses == {"9": Status.DEAD_LETTERED}
    s3 = boto3.client("s3")
    (listed,) = s3.list_objects_v2(Bucket="dead-letters", Prefix="shipper/")["Contents"]
    body = s3.get_object(Bucket="dead-letters", Key=listed["Key"])["Body"].read()
    assert orjson.loads(gzip.decompress(body)) == reject.to_dead_letter()
