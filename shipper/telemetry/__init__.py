"""Prometheus metrics of the shipper: what Lambda functions did, custom metrics from their logs, and the
shipper's own health; served over HTTP (`shipper run --metrics-port`, `shipper consume`) or pushed
from the Lambda function.

    Telemetry               the metrics, in a dedicated prometheus_client CollectorRegistry
    TelemetryConfig         custom-metric prefix, tag allow-list, cardinality limits
    start_metrics_server    serve /metrics and /healthz for a registry
    LambdaTelemetry         end-of-invocation Pushgateway push and/or EMF line for the handler
    lambda_telemetry_from_env

Names resolve lazily (PEP 562): `from shipper.telemetry import lambda_telemetry_from_env` does not
import prometheus_client; only building a `Telemetry` (or serving, or pushing) does.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Telemetry": "registry",
    "LAMBDA_MAX_SERIES": "registry",
    "CustomMetrics": "custom",
    "MetricsServer": "server",
    "start_metrics_server": "server",
    "stop_on_signals": "server",
    "TelemetryConfig": "config",
    "add_telemetry_arguments": "config",
    "metrics_port": "config",
    "serve_metrics": "config",
    "telemetry_config_from_args": "config",
    "telemetry_config_from_env": "config",
    "LambdaTelemetry": "lambda_push",
    "lambda_telemetry_from_env": "lambda_push",
    "Increments": "totals",
    "router_totals": "totals",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
