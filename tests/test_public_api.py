"""What `shipper` exports, that importing it stays cheap, the exception tree, and the shipped test doubles."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import shipper
import shipper.errors
import shipper.testing

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = [
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
    "build_router",
    "build_sink",
    "contract_violations",
    "decode_record",
    "load_config_from_env",
    "load_config_from_file",
]


def test_shipper_exports_exactly_the_public_names() -> None:
    assert sorted(shipper.__all__) == sorted([*PUBLIC, "__version__"])
    for name in PUBLIC:
        module = importlib.import_module(shipper._EXPORTS[name])
        assert getattr(shipper, name) is getattr(module, name)
    assert set(shipper.__all__) <= set(dir(shipper))
    with pytest.raises(AttributeError):
        _ = shipper.process_awslogs_event


def test_importing_shipper_imports_nothing_else() -> None:
    code = "import sys, shipper; print(sorted(m for m in sys.modules if m.startswith('shipper') or m == 'orjson'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    # shipper.native only chooses between the compiled and the pure-Python hot path
    assert result.stdout.strip() == "['shipper', 'shipper.native']"


def _exception_classes() -> dict[str, type[BaseException]]:
    found = {}
    for info in pkgutil.walk_packages(shipper.__path__, "shipper."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_exception_class_is_in_the_tree_of_shipper_errors() -> None:
    tree = shipper.errors.__doc__ or ""
    classes = _exception_classes()
    assert {"shipper.errors.ConfigError", "shipper.sinks.base.SinkError"} <= classes.keys()
    assert [
        where for where, cls in classes.items() if not re.search(rf"^ +(├── |└── )?{cls.__name__} ", tree, re.M)
    ] == []


def test_the_shipped_test_doubles_work_as_their_docs_say() -> None:
    example = (shipper.testing.__doc__ or "").split("    from shipper.delivery", 1)[1].split("\n\n", 1)[0]
    exec(inspect.cleandoc("    from shipper.delivery" + example), {})  # the docstring's example, run as it is


def test_a_scripted_sink_fails_on_script() -> None:
    from shipper.delivery import Delivery, RetryPolicy, Status
    from shipper.testing import FakeTime, ScriptedSink, fail, fail_where, ok

    time = FakeTime()
    steps = (
        ok,
        fail_where(lambda event: event["n"] == 1, retryable=False),
        fail(retryable=True),
        fail(retryable=False),
    )
    sink = ScriptedSink(*steps)
    delivery = Delivery(sink, retry=RetryPolicy(2, 0.1, 1.0), sleep=time.sleep, clock=time.clock)
    settled = []
    for n in range(3):
        delivery.add({"event_id": f"e{n}", "n": n}, f"o{n}")
        settled += delivery.flush()
    assert [(s.origin, s.status) for s in settled] == [
        ("o0", Status.DELIVERED),
        ("o1", Status.NOT_DELIVERED),
        ("o2", Status.NOT_DELIVERED),
    ]
    assert sink.batches == [["e0"], ["e1"], ["e2"], ["e2"]]  # the retryable failure was tried again
    assert dict(sink.delivered) == {"e0": 1} and len(time.sleeps) == 1
