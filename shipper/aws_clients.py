"""Every AWS client the shipper makes, with one timeout and attempt policy.

Sinks, secrets, `shipper consume` (Kinesis, DynamoDB checkpoints), `shipper subscribe` and the S3
inputs of `shipper run` all get their clients from `client`:

- retries mode `standard`, ATTEMPTS (1) attempt per call: whoever called retries, with its own backoff,
  deadline and accounting (the delivery layer for sinks and secrets, the read loop of `consume`).
  botocore retrying underneath would multiply attempts and hide throttling from that accounting.
  Only commands with nobody above them to retry (`shipper subscribe`, `shipper run` reading S3) ask for
  COMMAND_ATTEMPTS, with botocore's standard backoff.
- a read timeout of `timeout` seconds (DEFAULT_TIMEOUT_S, 30; a sink's `timeout` option) and a connect
  timeout of the same, at most CONNECT_TIMEOUT_S (10).

Imported only where AWS is in use: importing it imports boto3.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import NoRegionError

from shipper.errors import ConfigError

__all__ = ["ATTEMPTS", "COMMAND_ATTEMPTS", "CONNECT_TIMEOUT_S", "DEFAULT_TIMEOUT_S", "client", "config"]

DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
ATTEMPTS = 1
COMMAND_ATTEMPTS = 9


def config(timeout: float = DEFAULT_TIMEOUT_S, attempts: int = ATTEMPTS) -> Config:
    """The botocore Config of every client: see the module docstring."""
    # botocore's `max_attempts` counts retries; `total_max_attempts` counts calls, the first included.
    return Config(
        retries={"total_max_attempts": attempts, "mode": "standard"},
        connect_timeout=min(timeout, CONNECT_TIMEOUT_S),
        read_timeout=timeout,
    )


def client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    attempts: int = ATTEMPTS,
    region_from: str = "AWS_REGION",
) -> Any:
    """A botocore client for `service` (region and credentials from the environment unless given).

    Raises ConfigError when no region is known; `region_from` says where the user sets one.
    """
    try:
        return boto3.session.Session(region_name=region).client(
            service, endpoint_url=endpoint_url, config=config(timeout, attempts)
        )
    except NoRegionError:
        raise ConfigError(f"no AWS region for {service}: set {region_from}") from None
