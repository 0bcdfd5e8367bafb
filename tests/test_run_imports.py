"""The Lambda handler stays small: what only `shipper run` needs (ijson, rich, boto3 for S3 inputs, argparse, TOML)
and what only some records need (hashlib, for KPL aggregates) is not imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["shipper.handler", "shipper.pipeline"])
def test_the_lambda_path_does_not_import_the_run_command_dependencies(module):
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('ijson', 'rich', 'shipper.inputs', 'shipper.runner', 'shipper.report',"
        " 'argparse', 'tomllib', 'hashlib') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_the_run_command_imports_rich_only_to_draw():
    code = "import sys, shipper.cli; print('rich' in sys.modules, 'ijson' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.split() == ["False", "True"]


BACKEND_MODULES = ("google.protobuf", "opentelemetry", "cramjam", "snappy")


@pytest.mark.parametrize(
    ("sinks", "loaded"),
    [
        ("stdout", []),
        ("otlp:http://127.0.0.1:4318", ["google.protobuf", "opentelemetry"]),
        ("prometheus-remote-write:http://127.0.0.1:9090/api/v1/write", ["cramjam", "google.protobuf"]),
        ("loki:http://127.0.0.1:3100", ["cramjam", "google.protobuf"]),
        ("loki:http://127.0.0.1:3100 format=json", []),
        ("datadog api_key=env:DD_API_KEY", []),
        ("splunk-hec:https://127.0.0.1:8088 token=env:HEC_TOKEN", []),
    ],
)
def test_protobuf_and_snappy_load_only_when_a_sink_needs_them(sinks, loaded):
    code = (
        "import sys, shipper.handler; "
        f"shipper.handler.KinesisHandler.from_env({{'SHIPPER_SINKS': {sinks!r}}}); "
        f"print(sorted(m for m in {BACKEND_MODULES!r} if m in sys.modules))"
    )
    environment = {**os.environ, "DD_API_KEY": "key", "HEC_TOKEN": "token"}  # env: references are checked at start
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment
    )
    assert completed.stdout.strip() == str(loaded)
