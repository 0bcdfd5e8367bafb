"""What the Prometheus metrics are allowed to become: the custom-metric prefix, the tag allow-list, limits.

From flags (`add_telemetry_arguments` / `telemetry_config_from_args`, which also add --metrics-port and
--metrics-address) or the environment (`telemetry_config_from_env`), checked once at start like the
rest of the configuration:

    --metrics-prefix PREFIX     SHIPPER_METRICS_PREFIX        prefix of custom metric names (app_)
    --metrics-label TAG         SHIPPER_METRICS_LABELS        tags that may become labels (comma-separated)
    --metrics-max-series N      SHIPPER_METRICS_MAX_SERIES    label sets per custom metric (1000)
    --metrics-max-metrics N     SHIPPER_METRICS_MAX_METRICS   custom metric names (500)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipper.config import _number as parse_number
from shipper.errors import ConfigError
from shipper.metric_rules import identifies_request
from shipper.telemetry.naming import RESERVED_LABELS, label_name

if TYPE_CHECKING:
    import argparse

    from shipper.telemetry.server import MetricsServer

_PREFIX = re.compile(r"[a-z][a-z0-9_]*")
_MAX_LIMIT = 100_000


@dataclass(frozen=True)
class TelemetryConfig:
    prefix: str = "app_"
    """Prefix of every custom metric name."""
    labels: tuple[str, ...] = ()
    """Tag names that become labels (the allow-list); every other tag is left out."""
    max_series: int = 1000
    """Label sets one custom metric may have; samples for new ones beyond it are dropped and counted."""
    max_metrics: int = 500
    """Distinct custom metric names; samples of new names beyond it are dropped and counted."""


def telemetry_config(
    *,
    prefix: str | None = None,
    labels: Iterable[str] = (),
    max_series: str | int | None = None,
    max_metrics: str | int | None = None,
    where: Mapping[str, str],
) -> TelemetryConfig:
    """A checked TelemetryConfig; `where` names the flag or variable of each field, for messages."""
    defaults = TelemetryConfig()
    prefix = defaults.prefix if prefix is None else prefix
    if not _PREFIX.fullmatch(prefix) or prefix.startswith("shipper_"):
        raise ConfigError(
            f"{where['prefix']}: {prefix!r} is not a metric name prefix: use lower-case letters, digits and '_', "
            "starting with a letter and not with shipper_ (the shipper's own metrics), e.g. app_"
        )
    tags = tuple(dict.fromkeys(tag.strip() for tag in labels if tag.strip()))
    for tag in tags:
        name = label_name(tag)
        if identifies_request(tag):
            raise ConfigError(f"{where['labels']}: tag {tag!r} identifies a request; it can never be a label")
        if not name or name in RESERVED_LABELS or name.startswith("_"):
            raise ConfigError(f"{where['labels']}: tag {tag!r} cannot be a label (it becomes {name!r})")
    return TelemetryConfig(
        prefix=prefix,
        labels=tags,
        max_series=defaults.max_series
        if max_series is None
        else parse_number(max_series, where["max_series"], int, 1, _MAX_LIMIT),
        max_metrics=defaults.max_metrics
        if max_metrics is None
        else parse_number(max_metrics, where["max_metrics"], int, 1, _MAX_LIMIT),
    )


_ENV = {
    "prefix": "SHIPPER_METRICS_PREFIX",
    "labels": "SHIPPER_METRICS_LABELS",
    "max_series": "SHIPPER_METRICS_MAX_SERIES",
    "max_metrics": "SHIPPER_METRICS_MAX_METRICS",
}
_FLAGS = {
    "prefix": "--metrics-prefix",
    "labels": "--metrics-label",
    "max_series": "--metrics-max-series",
    "max_metrics": "--metrics-max-metrics",
}


def telemetry_config_from_env(environ: Mapping[str, str]) -> TelemetryConfig:
    """The TelemetryConfig the SHIPPER_METRICS_* variables describe (unset or empty ones keep the defaults)."""
    given = {field: environ.get(variable, "").strip() or None for field, variable in _ENV.items()}
    return telemetry_config(
        prefix=given["prefix"],
        labels=(given["labels"] or "").split(","),
        max_series=given["max_series"],
        max_metrics=given["max_metrics"],
        where=_ENV,
    )


def add_telemetry_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the metrics flags to a command: where to serve them (--metrics-port, --metrics-address; read
    them with `metrics_port`) and what custom metrics may become (read with `telemetry_config_from_args`)."""
    group = parser.add_argument_group("Prometheus metrics")
    group.add_argument("--metrics-port", metavar="PORT", help="serve /metrics and /healthz on this port (0: any free)")
    group.add_argument(
        "--metrics-address", default="0.0.0.0", metavar="ADDRESS", help="address to serve on (default 0.0.0.0)"
    )
    group.add_argument("--metrics-prefix", metavar="PREFIX", help="prefix of custom metric names (default app_)")
    group.add_argument(
        "--metrics-label",
        action="append",
        default=[],
        metavar="TAG",
        help="a metric tag that becomes a label (repeatable, or comma-separated); other tags are left out",
    )
    group.add_argument("--metrics-max-series", metavar="N", help="label sets per custom metric (default 1000)")
    group.add_argument("--metrics-max-metrics", metavar="N", help="distinct custom metric names (default 500)")


def metrics_port(args: argparse.Namespace) -> int | None:
    """The checked --metrics-port, or None when metrics are not to be served."""
    return None if args.metrics_port is None else parse_number(args.metrics_port, "--metrics-port", int, 0, 65535)


def serve_metrics(
    registry: Any, port: int, args: argparse.Namespace, health: Callable[[], str | None] | None = None
) -> MetricsServer:
    """Serve `registry` where --metrics-port and --metrics-address say; a port that cannot be served
    (taken, or an address this host does not have) is a ConfigError naming the flag."""
    from shipper.telemetry.server import start_metrics_server  # prometheus_client: only when serving

    try:
        return start_metrics_server(registry, port, args.metrics_address, health)
    except OSError as exc:
        raise ConfigError(f"--metrics-port: cannot serve on {args.metrics_address}:{port}: {exc.strerror}") from exc


def telemetry_config_from_args(args: argparse.Namespace) -> TelemetryConfig:
    """The TelemetryConfig of the flags `add_telemetry_arguments` added."""
    return telemetry_config(
        prefix=args.metrics_prefix,
        labels=[tag for value in args.metrics_label for tag in value.split(",")],
        max_series=args.metrics_max_series,
        max_metrics=args.metrics_max_metrics,
        where=_FLAGS,
    )
