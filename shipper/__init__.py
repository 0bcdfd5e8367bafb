"""shipper: a log pipeline for AWS Lambda fleets (distribution `lambda-shipper`).

The names most programs need, importable from here:

    Pipeline, RecordOutcome        bytes of Kinesis records -> events and rejects (no I/O)
    RawRecord, decode_record       one record's bytes -> CloudWatch Logs documents
    Classifier                     documents -> contract events
    contract_violations            what is wrong with an event, per the event contract
    Config, load_config_from_env, load_config_from_file, build_router
                                   the configuration, and the router it describes
    build_sink                     one sink from its spec and options
    Router, Delivery, DeliveryReport, RetryPolicy, Status
                                   batching, retries, deadline, dead letter; what became of each origin
    ShipperError, ConfigError, SinkError, SecretError
                                   the exceptions (see shipper.errors)

They resolve lazily (PEP 562): `import shipper` imports nothing else, so the Lambda handler's cold
start pays only for what it uses. Test doubles are in shipper.testing. The hot path runs compiled
when it was built (see shipper.native), else as pure Python.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shipper import native

__version__ = "0.1.0"

native.activate()

_EXPORTS = {
    "Classifier": "shipper.classify",
    "Config": "shipper.config",
    "ConfigError": "shipper.errors",
    "Delivery": "shipper.delivery",
    "DeliveryReport": "shipper.delivery",
    "Pipeline": "shipper.pipeline",
    "RawRecord": "shipper.decode",
    "RecordOutcome": "shipper.pipeline",
    "RetryPolicy": "shipper.delivery",
    "Router": "shipper.delivery",
    "SecretError": "shipper.secrets",
    "ShipperError": "shipper.errors",
    "SinkError": "shipper.sinks.base",
    "Status": "shipper.delivery",
    "build_router": "shipper.config",
    "build_sink": "shipper.sinks",
    "contract_violations": "shipper.contract",
    "decode_record": "shipper.decode",
    "load_config_from_env": "shipper.config",
    "load_config_from_file": "shipper.config",
}

__all__ = [
    "Classifier",
    "Config",
    "ConfigError",
    "Delivery",
    "DeliveryReport",
    "Pipeline",
    "RawRecord",
    "RecordOutcome",
    "RetryPolicy",
    "Router",
    "SecretError",
    "ShipperError",
    "SinkError",
    "Status",
    "__version__",
    "build_router",
    "build_sink",
    "contract_violations",
    "decode_record",
    "load_config_from_env",
    "load_config_from_file",
]

if TYPE_CHECKING:
    from shipper.classify import Classifier
    from shipper.config import Config, build_router, load_config_from_env, load_config_from_file
    from shipper.contract import contract_violations
    from shipper.decode import RawRecord, decode_record
    from shipper.delivery import Delivery, DeliveryReport, RetryPolicy, Router, Status
    from shipper.errors import ConfigError, ShipperError
    from shipper.pipeline import Pipeline, RecordOutcome
    from shipper.secrets import SecretError
    from shipper.sinks import build_sink
    from shipper.sinks.base import SinkError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
