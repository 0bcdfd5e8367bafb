"""Secret references resolved against a moto server: values, TTL caching, and errors that never leak a value."""

from __future__ import annotations

import json
import logging
import traceback

import boto3
import pytest

from shipper.secrets import SecretError, SecretResolver, get_secret

REGION = "us-east-1"
VALUE = "s3cr3t-v4lue-d0-not-l34k"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def resolver(aws: str, clock: Clock) -> SecretResolver:
    return SecretResolver(clock=clock, region=REGION, endpoint_url=aws)


def ssm(aws: str):
    return boto3.client("ssm", endpoint_url=aws, region_name=REGION)


def secretsmanager(aws: str):
    return boto3.client("secretsmanager", endpoint_url=aws, region_name=REGION)


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPPER_TEST_TOKEN", VALUE)
    assert SecretResolver().get("env:SHIPPER_TEST_TOKEN") == VALUE
    monkeypatch.setenv("SHIPPER_TEST_TOKEN", "rotated")
    assert SecretResolver().get("env:SHIPPER_TEST_TOKEN") == "rotated"
    monkeypatch.delenv("SHIPPER_TEST_TOKEN")
    with pytest.raises(SecretError, match="env:SHIPPER_TEST_TOKEN"):
        SecretResolver().get("env:SHIPPER_TEST_TOKEN")


@pytest.mark.parametrize(
    "ref", ["", "token", "vault:kv/x", "ssm:", "env:", "SSM:/x", "secretsmanager:name#", "secretsmanager:#key"]
)
def test_malformed_references(ref: str) -> None:
    with pytest.raises(SecretError, match="bad secret reference"):
        SecretResolver().get(ref)


def test_ssm_secure_string_is_decrypted_and_cached_for_the_ttl(
    aws: str, resolver: SecretResolver, clock: Clock
) -> None:
    ssm(aws).put_parameter(Name="/shipper/token", Value=VALUE, Type="SecureString")
    assert resolver.get("ssm:/shipper/token") == VALUE

    ssm(aws).put_parameter(Name="/shipper/token", Value="rotated", Type="SecureString", Overwrite=True)
    clock.now += 299.9
    assert resolver.get("ssm:/shipper/token") == VALUE
    clock.now += 0.1
    assert resolver.get("ssm:/shipper/token") == "rotated"


def test_clear_forgets_cached_values(aws: str, resolver: SecretResolver) -> None:
    ssm(aws).put_parameter(Name="plain", Value="one", Type="String")
    assert resolver.get("ssm:plain") == "one"
    ssm(aws).put_parameter(Name="plain", Value="two", Type="String", Overwrite=True)
    resolver.clear()
    assert resolver.get("ssm:plain") == "two"


def test_secrets_manager_string_and_json_member(aws: str, resolver: SecretResolver, clock: Clock) -> None:
    secretsmanager(aws).create_secret(Name="shipper/plain", SecretString=VALUE)
    secretsmanager(aws).create_secret(Name="shipper/json", SecretString=json.dumps({"token": VALUE, "user": "bot"}))
    assert resolver.get("secretsmanager:shipper/plain") == VALUE
    assert resolver.get("secretsmanager:shipper/json#token") == VALUE
    assert resolver.get("secretsmanager:shipper/json#user") == "bot"

    secretsmanager(aws).put_secret_value(SecretId="shipper/json", SecretString=json.dumps({"token": "new"}))
    assert resolver.get("secretsmanager:shipper/json#token") == VALUE
    clock.now += 300
    assert resolver.get("secretsmanager:shipper/json#token") == "new"


def test_secrets_manager_by_arn_and_binary(aws: str, resolver: SecretResolver) -> None:
    arn = secretsmanager(aws).create_secret(Name="bin", SecretBinary=VALUE.encode())["ARN"]
    assert resolver.get(f"secretsmanager:{arn}") == VALUE
    secretsmanager(aws).create_secret(Name="raw", SecretBinary=b"\xff\xfe" + VALUE.encode())
    with pytest.raises(SecretError, match="not UTF-8") as caught:
        resolver.get("secretsmanager:raw")
    assert VALUE not in str(caught.value)


@pytest.mark.parametrize(
    ("secret", "ref", "message"),
    [
        (json.dumps({"token": VALUE}), "secretsmanager:leaky#missing", "no key 'missing'"),
        (json.dumps({"token": [VALUE]}), "secretsmanager:leaky#token", "holds a list"),
        (json.dumps([VALUE]), "secretsmanager:leaky#token", "not a JSON object"),
        (f"{{not json {VALUE}", "secretsmanager:leaky#token", "not a JSON object"),
    ],
)
def test_errors_never_contain_the_value(
    aws: str,
    resolver: SecretResolver,
    secret: str,
    ref: str,
    message: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Everything shipper logs, and anything at INFO or above. (botocore's own DEBUG output prints whole
    # response bodies, secrets included: shipper never turns it on.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="shipper")
    secretsmanager(aws).create_secret(Name="leaky", SecretString=secret)
    with pytest.raises(SecretError, match=message) as caught:
        resolver.get(ref)
    assert ref in str(caught.value)
    assert VALUE not in repr(caught.value)
    assert VALUE not in "".join(traceback.format_exception(caught.value))  # chained exceptions included
    out, err = capsys.readouterr()
    assert VALUE not in out + err + caplog.text


@pytest.mark.parametrize("ref", ["ssm:/does/not/exist", "secretsmanager:does-not-exist"])
def test_missing_secret_names_the_reference(aws: str, resolver: SecretResolver, ref: str) -> None:
    with pytest.raises(SecretError, match="cannot read secret") as caught:
        resolver.get(ref)
    assert ref in str(caught.value)
    assert not caught.value.retryable


def test_unreachable_service_is_retryable(unreachable_endpoint: str) -> None:
    resolver = SecretResolver(region=REGION, endpoint_url=unreachable_endpoint)
    with pytest.raises(SecretError, match="ssm:/x") as caught:
        resolver.get("ssm:/x")
    assert caught.value.retryable


def test_failures_are_not_cached(aws: str, resolver: SecretResolver) -> None:
    with pytest.raises(SecretError):
        resolver.get("ssm:/later")
    ssm(aws).put_parameter(Name="/later", Value="now there", Type="String")
    assert resolver.get("ssm:/later") == "now there"


def test_get_secret_uses_the_environment(aws: str) -> None:
    # The fixture's AWS_ENDPOINT_URL and AWS_REGION reach the process-wide resolver.
    ssm(aws).put_parameter(Name="/shipper/process-wide", Value=VALUE, Type="SecureString")
    assert get_secret("ssm:/shipper/process-wide") == VALUE
