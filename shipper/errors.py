"""The exceptions the shipper raises on purpose, in one tree.

    ShipperError         base of every exception the shipper raises on purpose
    ├── ConfigError      the configuration is wrong; the message names the variable, flag or key and
    │                    what is wrong with it. Also a ValueError.
    ├── SecretError      a secret reference is malformed or could not be read; `retryable` says whether
    │                    AWS may answer later. Names the reference, never the value. In shipper.secrets.
    ├── InvalidEvent     the Lambda handler was invoked with something that is not a Kinesis batch.
    ├── BatchFailed      a record to be sent again has no sequence number: the whole batch fails.
    │                    Both in shipper.handler; raising them fails the invocation on purpose.
    └── SinkError        a sink did not take (all of) a batch: `retryable`, `failed` (indices into the
                         batch; None means all) and `retry_after` (seconds). Defined in shipper.sinks.base.

Other exceptions, outside that tree:

    PartialWrite         an OSError: only the first `written` bytes of a write went out (shipper.files);
                         the sinks that write files and standard output turn it into a SinkError.
    Interrupted          shipper.stopping: a stop signal arrived while `shipper run` was reading input;
                         raised in the signal handler to end a blocked read, never leaves the runner.
    _Stop                shipper.runner: `shipper run` stopping (--strict, or a stop signal between two
                         batches); never leaves the runner.
    _Unrepresentable     shipper.sinks.cloudwatch_metrics: an event CloudWatch cannot take as a metric;
                         becomes that event's failure, never leaves the module.

Decoding never raises for bad input: it becomes a Reject. Delivery never raises for a sink's failure:
it reports each origin delivered, dead-lettered or not delivered (see shipper.delivery).
"""

from __future__ import annotations

#: What to install for the AWS sinks, sources and commands: boto3 is an extra, not in the Lambda package by default.
INSTALL_AWS = "pip install 'lambda-shipper[aws]'"


class ShipperError(Exception):
    """Base of every exception the shipper raises on purpose."""


class ConfigError(ShipperError, ValueError):
    """The configuration is wrong; the message says where (variable, flag or key) and what."""
