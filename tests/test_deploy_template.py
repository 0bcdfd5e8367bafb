"""deploy/template.yaml, checked offline: transformed with aws-sam-translator, the result linted with cfn-lint.

cfn-lint no longer expands SAM resources itself, so it lints what the SAM transform produces, as
CloudFormation would receive it. The rest reads the transformed resources for what the deployment needs.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import platform
import subprocess
import sys
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
    # What `sam deploy` does first: upload what `sam build` built and point CodeUri at it.
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


NO_RESOURCE_ACTIONS = {"cloudwatch:PutMetricData": "cloudwatch:namespace"}
"""Actions that take no resource, so `Resource: "*"`, and the condition key each must be narrowed by instead.

PutMetricData has no resource type in IAM (the Service Authorization Reference lists none); its
`cloudwatch:namespace` condition key confines it to the shipper's namespace.
"""


def policy_statements(node: Any) -> list[dict[str, Any]]:
    """Every statement of every policy document in the transformed resources, both branches of each Fn::If."""
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for item in node:
            found += policy_statements(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("PolicyDocument", "AssumeRolePolicyDocument") and "Statement" in value:
                found += _branches(value["Statement"])
            else:
                found += policy_statements(value)
    return found


def _branches(statements: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in statements if isinstance(statements, list) else [statements]:
        if "Fn::If" in item:
            out += _branches([branch for branch in item["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"}])
        else:
            out.append(item)
    return out


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def least_privilege_problems(resources: dict[str, Any]) -> list[str]:
    """What an Allow statement grants beyond what it names: wildcard actions, `*` resources, wildcard ARNs.

    Deny statements (the dead-letter bucket's TLS-only rule) only take away, so a wildcard there is fine.
    """
    problems: list[str] = []
    for resource in resources.values():
        managed = resource.get("Properties", {}).get("ManagedPolicyArns")
        if managed:  # e.g. a managed Kinesis policy on Resource "*"
            problems.append(f"managed policies {managed}")
    for statement in policy_statements(resources):
        if statement["Effect"] != "Allow":
            continue
        where = statement.get("Sid") or statement.get("Action")
        if "NotAction" in statement or "NotResource" in statement or "NotPrincipal" in statement:
            problems.append(f"{where}: NotAction, NotResource or NotPrincipal in an Allow")
        actions = _listed(statement.get("Action", []))
        problems += [f"{where}: wildcard action {a!r}" for a in actions if "*" in a or "?" in a]
        principal = statement.get("Principal")
        if principal is not None:
            if principal == "*" or "AWS" in principal:  # trust goes to AWS services only
                problems.append(f"{where}: principal {principal!r}")
            continue  # a trust policy: the resource is the role itself
        for arn in _listed(statement.get("Resource", [])):
            if arn == "*":
                conditions = statement.get("Condition", {}).get("StringEquals", {})
                if any(NO_RESOURCE_ACTIONS.get(a) not in conditions for a in actions):
                    problems.append(f"{where}: Resource '*' for {actions}")
                continue
            if isinstance(arn, dict) and "Fn::Sub" not in arn:
                continue  # Fn::GetAtt or Ref: one resource of this template
            text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
            text = text[0] if isinstance(text, list) else text
            # arn:partition:service:region:account, or the ${Resource.Arn} a path is added to
            head = ":".join(text.split(":")[:5]) if text.startswith("arn:") else text.split("/")[0]
            if "*" in head or not head:
                problems.append(f"{where}: wildcard in the ARN's service, region, account or resource: {text}")
    return problems


def test_every_allowed_action_is_named_and_every_resource_scoped(resources: dict[str, Any]) -> None:
    assert len(policy_statements(resources)) >= 10
    assert least_privilege_problems(resources) == []


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "*", "Resource": {"Fn::GetAtt": ["Stream", "Arn"]}},
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "kinesis:*"], "Resource": {"Fn::GetAtt": ["Stream", "Arn"]}},
        {"Effect": "Allow", "Action": "s3:Put*", "Resource": "arn:aws:s3:::bucket/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
        {"Effect": "Allow", "Action": "kinesis:PutRecords", "Resource": {"Fn::Sub": "arn:aws:kinesis:*:*:stream/x"}},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::bucket/*"},
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
    ],
)
def test_the_least_privilege_check_finds_a_broad_grant(resources: dict[str, Any], statement: dict[str, Any]) -> None:
    broadened = copy.deepcopy(resources)
    [role] = [r for r in of_type(broadened, "AWS::IAM::Role").values() if r["Properties"].get("Policies")][:1]
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Fn::If": ["Cond", statement, {"Ref": "AWS::NoValue"}]}
    )
    assert least_privilege_problems(broadened) != []


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


def test_the_dead_letter_bucket_outlives_the_stack(source: dict[str, Any]) -> None:
    bucket = source["Resources"]["DeadLetterBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("with_backends", [False, True], ids=["default", "WITH_BACKENDS=1"])
def test_sam_build_runs_the_makefile_target_that_installs_the_function(
    source: dict[str, Any], tmp_path: Path, with_backends: bool
) -> None:
    """`sam build` (BuildMethod: makefile) runs `make build-Function ARTIFACTS_DIR=...` where CodeUri points.

    With WITH_BACKENDS=1 (in sam build's environment) the function also has the extras of the otlp,
    prometheus-remote-write and loki sinks; without, it leaves them out to stay small."""
    function = source["Resources"]["Function"]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    project = (TEMPLATE.parent / function["Properties"]["CodeUri"]).resolve()
    assert (project / "Makefile").is_file()
    # The wheels of this machine's Python and architecture, so that the built function can be imported here.
    artifacts = tmp_path / "Function"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
    make = ["make", "-C", str(project), "build-Function", f"ARTIFACTS_DIR={artifacts}", f"ARCH={arch}"]
    make += [f"LAMBDA_PYTHON={python}", f"PYTHON={sys.executable}"]
    env = {**os.environ, "WITH_BACKENDS": "1" if with_backends else ""}
    completed = subprocess.run(make, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (artifacts / "shipper" / "handler.py").is_file()
    assert not (artifacts / "boto3").exists()  # the Lambda runtime has it
    # The handler imports from the built directory alone, as Lambda loads it (-I -S: no site-packages, no PYTHONPATH).
    code = f"import sys; sys.path[:0] = [{str(artifacts)!r}]; import shipper.handler, orjson; print(shipper.handler.__file__)"
    imported = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert imported.stdout.startswith(str(artifacts))
    # Lambda's code directory is read-only: every module ships compiled, or each cold start compiles it.
    tag = sys.implementation.cache_tag
    for module in (artifacts / "shipper").rglob("*.py"):
        assert (module.parent / "__pycache__" / f"{module.stem}.{tag}.pyc").is_file(), module
    # Each backend sink builds from the directory alone: with the extras, or refused at start naming the extra.
    build = (
        f"import sys; sys.path[:0] = [{str(artifacts)!r}]\n"
        "from shipper.errors import ConfigError\nfrom shipper.sinks import build_sink\n"
        "for spec in ['otlp:http://127.0.0.1:4318', 'prometheus-remote-write:http://127.0.0.1:9090/api/v1/write',"
        " 'loki:http://127.0.0.1:3100']:\n"
        "    try:\n        print(type(build_sink(spec)).__name__)\n"
        "    except ConfigError as exc:\n        print(exc)\n"
        "import cramjam, opentelemetry.proto\n"
    )
    built = subprocess.run(
        [sys.executable, "-I", "-S", "-c", build], capture_output=True, text=True, timeout=60, check=False
    )
    if with_backends:
        assert built.returncode == 0, built.stderr[-3000:]
        assert "needs the" not in built.stdout, built.stdout
    else:
        assert "No module named 'cramjam'" in built.stderr, built.stderr[-3000:]
        assert built.stdout.count("needs the") == 3, built.stdout  # the default package stays small
        assert not (artifacts / "opentelemetry").exists() and not list(artifacts.glob("cramjam*"))
