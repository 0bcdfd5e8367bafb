"""One AWS client policy for every client the shipper builds, and the secret lookup bounded by the send's deadline."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from shipper.aws_clients import ATTEMPTS, COMMAND_ATTEMPTS, CONNECT_TIMEOUT_S, DEFAULT_TIMEOUT_S
from shipper.errors import ConfigError
from shipper.inputs.sources import _s3_inputs
from shipper.secrets import TIMEOUT_S, SecretError, SecretResolver
from shipper.sinks import build_sink
from shipper.sinks.base import sending_within

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """(service, botocore Config) of every client made from now on, however it is made."""
    clients: list[tuple[str, Any]] = []
    make = boto3.session.Session.client

    def recording(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        client = make(self, service, *args, **kwargs)
        clients.append((service, client.meta.config))
        return client

    monkeypatch.setattr(boto3.session.Session, "client", recording)
    return clients


def policy(config: Any) -> tuple[float, int]:
    """(read timeout, attempts) of a client's config, after checking what every client shares."""
    assert config.retries["mode"] == "standard"
    assert config.connect_timeout == min(config.read_timeout, CONNECT_TIMEOUT_S)
    return config.read_timeout, config.retries["total_max_attempts"]


def test_every_client_the_shipper_builds_has_the_one_policy(aws: str, built: list[tuple[str, Any]]) -> None:
    boto3.client("kinesis", endpoint_url=aws, region_name=REGION).create_stream(StreamName="logs", ShardCount=1)
    built.clear()
    for spec in ("s3://bucket", "kinesis:logs", "firehose:logs", "cloudwatch"):
        build_sink(spec, {"endpoint_url": aws}).close()
    expected = [(service, (DEFAULT_TIMEOUT_S, ATTEMPTS)) for service in ("s3", "kinesis", "firehose", "cloudwatch")]

    with pytest.raises(SecretError):
        SecretResolver(endpoint_url=aws).get("ssm:/missing")
    expected.append(("ssm", (TIMEOUT_S, ATTEMPTS)))

    from shipper.consume import _aws

    args = argparse.Namespace(region=None, endpoint_url=aws, stream="logs", checkpoint_table="shipper-checkpoints")
    _aws(args)
    expected += [("kinesis", (DEFAULT_TIMEOUT_S, ATTEMPTS)), ("dynamodb", (DEFAULT_TIMEOUT_S, ATTEMPTS))]

    from shipper.subscribe import _logs_client

    _logs_client(None, aws)
    list(_s3_inputs("s3://no-such-bucket/", aws))
    expected += [("logs", (DEFAULT_TIMEOUT_S, COMMAND_ATTEMPTS)), ("s3", (DEFAULT_TIMEOUT_S, COMMAND_ATTEMPTS))]

    assert [(service, policy(config)) for service, config in built] == expected


def test_only_the_client_factory_makes_clients() -> None:
    makers = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "shipper").rglob("*.py"))
        if path.name != "aws_clients.py"
        and ("boto3" in (text := path.read_text()).replace("needs boto3", ""))
        and ("import boto3" in text or "botocore.config" in text)
    ]
    assert makers == []


def test_a_missing_region_is_a_config_error_naming_where_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    with pytest.raises(ConfigError, match="no AWS region for kinesis: set the 'region' option of sink 'kinesis:s'"):
        build_sink("kinesis:s")


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An endpoint on 127.0.0.1 that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("ref", ["ssm:/shipper/token", "secretsmanager:shipper#token"])
def test_a_secret_store_that_does_not_answer_fails_the_send_in_its_time(aws: str, blackhole: str, ref: str) -> None:
    resolver = SecretResolver(region=REGION, endpoint_url=blackhole)
    started = time.monotonic()
    with sending_within(0.5), pytest.raises(SecretError) as caught:
        resolver.get(ref)
    # 0.5 s and building a client (botocore loads its service model, slow on a loaded machine); botocore's
    # default would be 60 s a try.
    assert time.monotonic() - started < 3.0
    assert caught.value.retryable
    with sending_within(0.0), pytest.raises(SecretError, match="no time left") as caught:
        resolver.get(ref)
    assert caught.value.retryable


def test_the_emf_sink_needs_no_boto3() -> None:
    now = int(time.time() * 1000)
    event = {"type": "metric", "timestamp": now, "name": "orders", "value": 3.0, "metric_type": "count", "unit": None}
    event |= {"tags": {"env": "prod"}, "function": "f", "request_id": "r", "namespace": None}
    code = (
        "import sys; sys.modules['boto3'] = sys.modules['botocore'] = None\n"
        "from shipper.sinks import build_sink\n"
        f"sink = build_sink('cloudwatch:emf', {{'namespace': 'Acme'}}); sink.send([{event!r}]); sink.close()\n"
        "print(sorted(m for m, v in sys.modules.items() if v and m.startswith(('boto', 'aws_kinesis_agg'))), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, cwd=ROOT)
    (document,) = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert document["orders"] == 3.0 and document["env"] == "prod"
    assert document["_aws"]["CloudWatchMetrics"] == [
        {"Namespace": "Acme", "Dimensions": [["env"]], "Metrics": [{"Name": "orders", "Unit": "Count"}]}
    ]
    assert result.stderr.decode().strip() == "[]"
