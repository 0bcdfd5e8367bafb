"""Running `shipper run` in tests and checking what it wrote against the generator's ground truth."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipper.cli import main
from shipper.contract import contract_violations

# truth key -> event type counted per function
COUNTED = {
    "invocations": "invocation",
    "cold_starts": "cold_start",
    "timeouts": "timeout",
    "out_of_memory": "out_of_memory",
    "errors": "error",
    "init_errors": "init_error",
    "throttles": "throttle",
    "metric_values": "metric",
    "log_lines": "log",
}


def run(tmp_path: Path, *arguments: str) -> tuple[int, list[dict[str, Any]]]:
    """`shipper run ARGUMENTS --sink jsonl:...`: the exit status and the events written, each meeting the contract."""
    output = tmp_path / "events.ndjson"
    output.unlink(missing_ok=True)
    status = main(["run", *arguments, "--sink", f"jsonl:{output}"])
    events = [orjson.loads(line) for line in output.read_bytes().splitlines()] if output.exists() else []
    assert [problem for event in events for problem in contract_violations(event)] == []
    return status, events


def counts_by_function(events: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        counts[event["function"]][event["type"]] += 1
    return counts


def assert_matches_truth(events: list[dict[str, Any]], truth: dict[str, Any], keys: tuple[str, ...] = tuple(COUNTED)):
    """Per function, the counted event types and the invocation durations are the generator's."""
    counts = counts_by_function(events)
    assert set(counts) == set(truth["functions"])
    for function, expected in truth["functions"].items():
        found = {key: counts[function][COUNTED[key]] for key in keys}
        assert found == {key: expected[key] for key in keys}, function
        durations = [e["duration_ms"] for e in events if e["function"] == function and e["type"] == "invocation"]
        assert sorted(durations) == pytest.approx(sorted(expected["durations_ms"]))


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
