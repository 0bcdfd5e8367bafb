"""The compiled hot path (mypyc) and the pure-Python one are the same program: same events, same report.

The comparisons run `shipper run` twice over the same input, compiled and with SHIPPER_PURE_PYTHON=1,
and need the compiled modules (`make native`); under CI=true they must be there.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_extreme_numbers import extreme_line

import shipper
from shipper import native

from bench_run import write_kinesis
from helpers import REQUEST_ID, cwl_document, gz

ROOT = Path(__file__).resolve().parent.parent

compiled_only = pytest.mark.skipif(
    native.WHY_PURE is not None, reason=f"the hot path runs as pure Python here ({native.WHY_PURE})"
)

# Run-time figures, the only part of a report allowed to differ between two runs of the same input.
_TIMINGS = ("elapsed_s", "log_events_per_s", "mb_per_s")


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_timings(item) for key, item in value.items() if key not in _TIMINGS}
    if isinstance(value, list):
        return [_without_timings(item) for item in value]
    return value


def _run(inputs: list[str], out: Path, pure: bool) -> tuple[int, bytes, Any]:
    """`shipper run` in its own process: exit status, the events it wrote and its JSON report."""
    events, report = out / "events.ndjson", out / "report.json"
    out.mkdir(parents=True, exist_ok=True)
    environment = {key: value for key, value in os.environ.items() if key != native.PURE_PYTHON_VARIABLE}
    if pure:
        environment[native.PURE_PYTHON_VARIABLE] = "1"
    command = [sys.executable, "-m", "shipper.cli", "run", *inputs, "--sink", f"jsonl:{events}"]
    completed = subprocess.run(
        [*command, "--report", str(report), "--quiet"], cwd=ROOT, env=environment, capture_output=True, check=False
    )
    assert completed.returncode in (0, 1), completed.stderr.decode()[-3000:]
    return completed.returncode, events.read_bytes(), _without_timings(orjson.loads(report.read_bytes()))


def assert_same_both_ways(inputs: list[str], scratch: Path) -> bytes:
    compiled = _run(inputs, scratch / "compiled", pure=False)
    pure = _run(inputs, scratch / "pure", pure=True)
    assert compiled[0] == pure[0]
    assert compiled[1] == pure[1], "the compiled and the pure-Python hot path wrote different events"
    assert compiled[2] == pure[2], "the compiled and the pure-Python hot path made different reports"
    return compiled[1]


def test_ci_runs_the_compiled_hot_path() -> None:
    """CI builds the compiled modules (`make test` depends on them), so its first pass must load them."""
    if os.environ.get("CI") != "true" or os.environ.get(native.PURE_PYTHON_VARIABLE) == "1":
        pytest.skip("only under CI=true, on the compiled pass")
    assert native.WHY_PURE is None
    assert shipper.classify.__file__.endswith(tuple(native.importlib.machinery.EXTENSION_SUFFIXES))


def test_pure_python_loads_every_hot_module_from_source() -> None:
    code = "import importlib, shipper; print(*(importlib.import_module(m).__file__ for m in shipper.native.COMPILED))"
    environment = {**os.environ, native.PURE_PYTHON_VARIABLE: "1"}
    completed = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    files = completed.stdout.split()
    assert len(files) == len(native.COMPILED) and all(path.endswith(".py") for path in files)


@compiled_only
def test_a_source_changed_after_the_build_runs_as_pure_python(tmp_path: Path) -> None:
    """A stale build is never loaded: one edited source sends every hot module back to its `.py`."""
    copy = tmp_path / "shipper"
    shutil.copytree(ROOT / "shipper", copy, ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "import importlib, shipper; print(shipper.native.implementation()); "
        "print(*(importlib.import_module(m).__file__ for m in shipper.native.COMPILED))"
    )
    environment = {key: value for key, value in os.environ.items() if key != native.PURE_PYTHON_VARIABLE}
    environment["PYTHONPATH"] = str(tmp_path)

    def loaded() -> list[str]:
        completed = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True, check=True
        )
        return completed.stdout.splitlines()

    status, files = loaded()
    assert status == "compiled (mypyc)" and not any(path.endswith(".py") for path in files.split())
    with (copy / "bounds.py").open("a") as source:
        source.write("\n# edited\n")
    status, files = loaded()
    assert "bounds.py changed since it was compiled" in status
    assert all(path.endswith(".py") for path in files.split())


def _build_native() -> Any:
    spec = importlib.util.spec_from_file_location("build_native", ROOT / "build_native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_sanitized_build_never_goes_in_place() -> None:
    """`make fuzz`'s sanitized build must not replace the in-place one that `shipper` loads."""
    before = {path: os.stat(path).st_mtime_ns for path in native.built_files()}
    command = [sys.executable, "build_native.py", "build", "--sanitize", "address"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 2 and "--sanitize needs --into" in completed.stderr
    assert {path: os.stat(path).st_mtime_ns for path in native.built_files()} == before


def test_a_build_into_another_directory_starts_from_the_sources_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy that `build --into` compiles has every source and nothing of the in-place build."""
    monkeypatch.delenv(native.PURE_PYTHON_VARIABLE, raising=False)  # the pure pass's: would hide "not compiled"
    (tmp_path / "shipper").mkdir()
    (tmp_path / "shipper" / "stale.py").write_text("")
    copy = _build_native()._copy_package(tmp_path)
    assert Path(copy.PACKAGE_DIR) == tmp_path / "shipper"
    assert copy._why_pure() == "not compiled" and not copy.built_files()
    sources = sorted(path.relative_to(ROOT) for path in (ROOT / "shipper").rglob("*.py"))
    assert sorted(path.relative_to(tmp_path) for path in (tmp_path / "shipper").rglob("*.py")) == sources
    assert (tmp_path / "pyproject.toml").read_bytes() == (ROOT / "pyproject.toml").read_bytes()


def test_clean_removes_the_extension_of_a_module_no_longer_compiled(tmp_path: Path) -> None:
    """A module dropped from COMPILED leaves its extension beside its source, which would still be imported."""
    build_native = _build_native()
    copy = build_native._copy_package(tmp_path)
    left = tmp_path / "shipper" / f"shipping{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    left.write_bytes(b"")
    assert str(left) in copy.built_files()
    build_native.clean(copy, tmp_path)
    assert not left.exists() and (tmp_path / "shipper" / "shipping.py").exists()


@compiled_only
def test_the_bundled_samples_and_a_generated_fleet_give_the_same_results(tmp_path: Path) -> None:
    write_kinesis(tmp_path / "fleet", 20_000)
    for name, inputs in (
        ("sample", [str(ROOT / "examples" / "sample")]),
        ("sample-text", [str(ROOT / "examples" / "sample-text")]),
        ("fleet", [str(tmp_path / "fleet")]),
    ):
        # outputs outside the inputs: a run over a directory would read what it writes there
        assert assert_same_both_ways(inputs, tmp_path / "out" / name), f"no events from {name}"


# Lines aimed at each parser: extreme numbers in every format, and arbitrary text after each format's prefix.
_PREFIXES = (
    "",
    "START RequestId: ",
    "END RequestId: ",
    f"REPORT RequestId: {REQUEST_ID}\t",
    "INIT_REPORT ",
    '{"type":"platform.report","record":',
    '{"_aws":',
    '{"m":',
    "MONITORING|",
    "2024-05-20T16:29:45.120Z\t",
    f"[ERROR]\t2024-05-20T16:29:45.120Z\t{REQUEST_ID}\t",
    "a.b:",
)
hostile_line = st.one_of(
    extreme_line(),
    st.tuples(st.sampled_from(_PREFIXES), st.text(max_size=80)).map("".join),
)


@compiled_only
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(hostile_line, min_size=1, max_size=60), min_size=1, max_size=4))
def test_generated_hostile_lines_give_the_same_results(tmp_path_factory: pytest.TempPathFactory, batches) -> None:
    scratch = tmp_path_factory.mktemp("lines")
    inputs = []
    for index, messages in enumerate(batches):
        path = scratch / f"in-{index}.json.gz"  # files, not their directory: the outputs are beside them
        path.write_bytes(gz(cwl_document([f"START RequestId: {REQUEST_ID} Version: $LATEST", *messages])))
        inputs.append(str(path))
    assert_same_both_ways(inputs, scratch)
