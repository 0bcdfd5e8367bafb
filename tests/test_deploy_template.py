"""deploy/template.yaml, checked offline: transformed with aws-sam-translator, the result linted with cfn-lint.

cfn-lint no longer expands SAM resources itself, so it lints what the SAM transform produces, as
CloudFormation would receive it. The rest reads the transformed resources for what the deployment needs.
"""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode.cfn_yaml import load
from samtranslator.translator.transform import transform

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "template.yaml"


class _NoManagedPolicies:
    """The managed-policy lookup the transform asks for (it would call IAM); the template names none."""

    def load(self) -> dict[str, str]:
        return {}


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template)
    # What `sam deploy` does first: upload the local zip and point CodeUri at it.
    template["Resources"]["Function"]["Properties"]["CodeUri"] = "s3://deployment-bucket/shipper/lambda.zip"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the transform reads the region from boto3's session
        return transform(template, {}, _NoManagedPolicies())


def lint_errors(template: dict[str, Any]) -> list[str]:
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [f"{m.rule.id} {m.message}" for m in matches if m.rule.severity == "error"]


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load(str(TEMPLATE))


@pytest.fixture(scope="module")
def resources(source: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(source)["Resources"]


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: resource for name, resource in resources.items() if resource["Type"] == kind}


def test_the_transformed_template_lints_without_errors(source: dict[str, Any]) -> None:
    assert lint_errors(sam_transform(source)) == []


def test_the_lint_does_catch_an_error_in_the_transformed_template(source: dict[str, Any]) -> None:
    broken = sam_transform(source)
    broken["Resources"]["FunctionStream"]["Properties"]["FunctionResponseTypes"] = ["ReportEverything"]
    assert any("ReportEverything" in error for error in lint_errors(broken))


def test_the_function_runs_the_handler_on_python_3_12_or_newer(
    source: dict[str, Any], resources: dict[str, Any]
) -> None:
    [function] = of_type(resources, "AWS::Lambda::Function").values()
    module, name = function["Properties"]["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
    runtime = source["Parameters"]["Runtime"]
    for value in [runtime["Default"], *runtime["AllowedValues"]]:
        assert tuple(map(int, value.removeprefix("python").split("."))) >= (3, 12)
    assert function["Properties"]["Runtime"] == {"Ref": "Runtime"}
    assert set(function["Properties"]) >= {"MemorySize", "Timeout", "ReservedConcurrentExecutions", "LoggingConfig"}


def test_the_event_source_mapping_reports_partial_failures_and_keeps_what_it_gives_up(
    resources: dict[str, Any],
) -> None:
    [mapping] = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["Stream", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for setting in (
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "StartingPosition",
    ):
        assert properties[setting] == {"Ref": setting}
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["OnFailureQueue", "Arn"]}
    assert "OnFailureQueue" in of_type(resources, "AWS::SQS::Queue")


def test_every_allowed_action_is_named_and_every_resource_scoped(resources: dict[str, Any]) -> None:
    statements = [
        statement
        for role in of_type(resources, "AWS::IAM::Role").values()
        for policy in role["Properties"]["Policies"]
        for item in policy["PolicyDocument"]["Statement"]
        for statement in ([item["Fn::If"][1]] if "Fn::If" in item else [item])
    ]
    assert statements
    for role in of_type(resources, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]  # e.g. a managed Kinesis policy on Resource "*"
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in action for action in actions), statement
        if statement["Resource"] == "*":  # only an action that takes no resource, narrowed by a condition
            assert actions == ["cloudwatch:PutMetricData"]
            assert "cloudwatch:namespace" in statement["Condition"]["StringEquals"]


def test_alarms_watch_iterator_age_errors_and_throttles(resources: dict[str, Any]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm").values()
    lambda_metrics = {
        alarm["Properties"]["MetricName"]
        for alarm in alarms
        if alarm["Properties"]["Namespace"] == "AWS/Lambda"
        and alarm["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "Function"}}]
    }
    assert lambda_metrics == {"IteratorAge", "Errors", "Throttles"}


def test_log_groups_are_subscribed_and_the_account_policy_leaves_out_the_shippers_own(
    resources: dict[str, Any],
) -> None:
    filters = of_type(resources, "AWS::Logs::SubscriptionFilter")
    assert len(filters) == 5 and all("Condition" in resource for resource in filters.values())
    for resource in filters.values():
        assert resource["Properties"]["DestinationArn"] == {"Fn::GetAtt": ["Stream", "Arn"]}
        assert resource["Properties"]["RoleArn"] == {"Fn::GetAtt": ["LogsToKinesisRole", "Arn"]}
    [policy] = of_type(resources, "AWS::Logs::AccountPolicy").values()
    assert policy["Condition"] == "AccountLevel"
    assert policy["Properties"]["SelectionCriteria"] == {"Fn::Sub": 'LogGroupName NOT IN ["${FunctionLogGroup}"]'}
    [function] = of_type(resources, "AWS::Lambda::Function").values()
    assert function["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}
    assert resources["FunctionLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_stream_is_provisioned_with_a_shard_count_or_on_demand(resources: dict[str, Any]) -> None:
    stream = resources["Stream"]["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": {"Ref": "StreamMode"}}
    assert stream["ShardCount"] == {"Fn::If": ["OnDemand", {"Ref": "AWS::NoValue"}, {"Ref": "ShardCount"}]}


def test_sinks_and_the_dead_letter_bucket_are_configured_from_parameters(resources: dict[str, Any]) -> None:
    [function] = of_type(resources, "AWS::Lambda::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["SHIPPER_SINKS"] == {"Ref": "Sinks"}
    assert variables["SHIPPER_ROUTES"] == {"Ref": "Routes"}
    assert variables["SHIPPER_DEAD_LETTER"] == {"Fn::Sub": "s3://${DeadLetterBucket}/dead-letter"}
    assert "DeadLetterBucket" in of_type(resources, "AWS::S3::Bucket")
