"""`shipper subscribe` against CloudWatch Logs and Kinesis in a moto server."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from shipper.cli import main

ROLE_ARN = "arn:aws:iam::123456789012:role/cloudwatch-logs-to-kinesis"
OWN_GROUP = "/aws/lambda/log-shipper"


@pytest.fixture
def stream(aws: str) -> str:
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName="central-logs", ShardCount=1)
    return kinesis.describe_stream_summary(StreamName="central-logs")["StreamDescriptionSummary"]["StreamARN"]


@pytest.fixture
def groups(aws: str) -> list[str]:
    names = ["/aws/lambda/orders-api", "/aws/lambda/billing-worker", OWN_GROUP, "/ecs/web"]
    logs = boto3.client("logs")
    for name in names:
        logs.create_log_group(logGroupName=name)
    return names


def subscribe(stream: str, *args: str) -> int:
    return main(
        ["subscribe", "--destination-arn", stream, "--role-arn", ROLE_ARN, "--shipper-log-group", OWN_GROUP, *args]
    )


def filters(group: str) -> list[dict[str, Any]]:
    return boto3.client("logs").describe_subscription_filters(logGroupName=group)["subscriptionFilters"]


def retention(group: str) -> int | None:
    [found] = boto3.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    return found.get("retentionInDays")


def output_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]


def test_groups_are_subscribed_by_prefix_except_the_shippers_own(
    stream: str, groups: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert subscribe(stream, "--prefix", "/aws/lambda/") == 0

    for group in ("/aws/lambda/orders-api", "/aws/lambda/billing-worker"):
        [installed] = filters(group)
        assert (installed["filterName"], installed["destinationArn"], installed["roleArn"]) == (
            "shipper",
            stream,
            ROLE_ARN,
        )
    assert filters(OWN_GROUP) == []
    assert filters("/ecs/web") == []
    lines = output_lines(capsys)
    assert f"skipped {OWN_GROUP}: the shipper's own log group" in lines
    assert sum(line.startswith("subscribed ") for line in lines) == 2


def test_running_it_again_changes_nothing(stream: str, groups: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert subscribe(stream, "--prefix", "/aws/lambda/", "--log-group", "/ecs/web") == 0
    capsys.readouterr()
    assert subscribe(stream, "--prefix", "/aws/lambda/", "--log-group", "/ecs/web") == 0

    actions = [line.split()[0] for line in output_lines(capsys)]
    assert sorted(actions) == ["skipped", "unchanged", "unchanged", "unchanged"]
    assert all(len(filters(group)) == 1 for group in groups if group != OWN_GROUP)


def test_a_changed_filter_is_updated_in_place(
    stream: str, groups: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert subscribe(stream, "--log-group", "/ecs/web") == 0
    assert subscribe(stream, "--log-group", "/ecs/web", "--filter-pattern", "ERROR") == 0

    [updated] = filters("/ecs/web")
    assert (updated["filterName"], updated["filterPattern"]) == ("shipper", "ERROR")
    assert output_lines(capsys)[-1].startswith("updated /ecs/web:")


def test_a_group_with_two_other_filters_is_reported_and_left_alone(
    stream: str, groups: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    logs = boto3.client("logs")
    for name in ("vendor-a", "vendor-b"):
        logs.put_subscription_filter(
            logGroupName="/ecs/web", filterName=name, filterPattern="", destinationArn=stream, roleArn=ROLE_ARN
        )
    boto3.client("kinesis").create_stream(StreamName="other", ShardCount=1)
    other = boto3.client("kinesis").describe_stream_summary(StreamName="other")["StreamDescriptionSummary"]["StreamARN"]

    arguments = ["--destination-arn", other, "--role-arn", ROLE_ARN, "--shipper-log-group", OWN_GROUP]
    assert main(["subscribe", *arguments, "--log-group", "/ecs/web", "--log-group", "/aws/lambda/orders-api"]) == 1

    assert sorted(f["filterName"] for f in filters("/ecs/web")) == ["vendor-a", "vendor-b"]
    assert [f["destinationArn"] for f in filters("/aws/lambda/orders-api")] == [other]
    assert (
        "full /ecs/web: already has 2 subscription filters ('vendor-a', 'vendor-b'); remove one first"
        in output_lines(capsys)
    )


def test_a_group_already_sending_to_the_stream_is_not_given_a_second_filter(
    stream: str, groups: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("logs").put_subscription_filter(
        logGroupName="/ecs/web", filterName="by-hand", filterPattern="", destinationArn=stream, roleArn=ROLE_ARN
    )
    assert subscribe(stream, "--log-group", "/ecs/web") == 0

    assert [f["filterName"] for f in filters("/ecs/web")] == ["by-hand"]
    assert output_lines(capsys) == ["unchanged /ecs/web: already sends to the stream through filter 'by-hand'"]


def test_retention_is_set_where_it_differs(stream: str, groups: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("logs").put_retention_policy(logGroupName="/aws/lambda/billing-worker", retentionInDays=30)
    assert subscribe(stream, "--prefix", "/aws/lambda/", "--retention-days", "30") == 0

    assert retention("/aws/lambda/orders-api") == 30
    assert retention("/aws/lambda/billing-worker") == 30
    assert retention(OWN_GROUP) is None
    lines = output_lines(capsys)
    assert any(
        line.startswith("subscribed /aws/lambda/orders-api:") and line.endswith("retention never expire -> 30 days")
        for line in lines
    )
    assert any(line.startswith("subscribed /aws/lambda/billing-worker:") and "retention" not in line for line in lines)


def test_a_dry_run_changes_nothing(stream: str, groups: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert subscribe(stream, "--prefix", "/aws/lambda/", "--retention-days", "7", "--dry-run") == 0

    assert all(filters(group) == [] for group in groups)
    assert retention("/aws/lambda/orders-api") is None
    captured = capsys.readouterr()
    assert "[dry run] subscribed /aws/lambda/orders-api" in captured.out
    assert "(dry run: nothing changed)" in captured.err


def test_a_missing_group_or_no_match_fails(stream: str, groups: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert subscribe(stream, "--log-group", "/aws/lambda/gone", "--log-group", "/ecs/web") == 1
    assert "failed /aws/lambda/gone: no such log group" in output_lines(capsys)
    assert filters("/ecs/web") != []

    assert subscribe(stream, "--prefix", "/nothing/here/") == 1
    assert "no log group matched" in capsys.readouterr().err


def test_a_destination_cloudwatch_logs_refuses_is_reported_per_group(
    groups: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "arn:aws:kinesis:us-east-1:123456789012:stream/never-created"
    assert subscribe(missing, "--log-group", "/ecs/web") == 1
    [line] = output_lines(capsys)
    assert line.startswith("failed /ecs/web:") and "InvalidParameterException" in line


def test_naming_no_groups_is_a_usage_error(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        subscribe("arn:aws:kinesis:us-east-1:123456789012:stream/s")
    assert exited.value.code == 2
    assert "--prefix PREFIX or --log-group NAME" in capsys.readouterr().err
