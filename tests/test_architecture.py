"""The layout docs/architecture.md describes, held by the source: who may import whom, and names written once."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from shipper.delivery import SinkCounters
from shipper.names import COUNTS, REJECT_CODES, SINK_COUNTERS

PACKAGE = Path(__file__).resolve().parent.parent / "shipper"

PURE = ("shipper.names", "shipper.errors", "shipper.bounds", "shipper.reject", "shipper.contract", "shipper.signals",
        "shipper.metrics", "shipper.compression", "shipper.decode", "shipper.lines", "shipper.classify", "shipper.pipeline")  # fmt: skip
"""Decode and classify, and what they stand on: no I/O, so they can be tested and measured alone."""
IO_LIBRARIES = ("boto3", "botocore", "socket", "http", "urllib", "ssl", "prometheus_client", "subprocess", "shutil")
SHELLS = ("shipper.handler", "shipper.runner", "shipper.consume", "shipper.cli", "shipper.subscribe")
DELIVERY = ("shipper.delivery", "shipper.sinks")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the modules it imports (relative imports resolved)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                name = ".".join(filter(None, [base, node.module or ""]))
                imported.add(name)
                imported.update(f"{name}.{alias.name}" for alias in node.names)  # `from shipper import x`
        graph[module] = imported
    return graph


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


GRAPH = _imports()


def test_the_graph_sees_the_package() -> None:
    assert {"shipper.shipping", "shipper.handler", "shipper.sinks.base", "shipper.names"} <= GRAPH.keys()
    assert "shipper.shipping" in GRAPH["shipper.handler"]


@pytest.mark.parametrize("module", PURE)
def test_decode_and_classify_do_no_io(module: str) -> None:
    imported = GRAPH[module]
    assert sorted(name for name in imported if _under(name, IO_LIBRARIES)) == []
    internal = {name for name in imported if name.startswith("shipper.")}
    assert sorted(name for name in internal if not _under(name, PURE)) == []


def test_names_import_nothing_of_the_shipper() -> None:
    assert [name for name in GRAPH["shipper.names"] if name.startswith("shipper")] == []


def test_only_the_cli_imports_a_shell() -> None:
    offenders = {
        module: sorted(name for name in imported if _under(name, SHELLS))
        for module, imported in GRAPH.items()
        if module != "shipper.cli"
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_delivery_and_sinks_know_nothing_of_the_step_the_shells_or_the_configuration() -> None:
    above = (*SHELLS, "shipper.shipping", "shipper.config", "shipper.inputs", "shipper.pipeline")
    offenders = {
        module: sorted(name for name in imported if _under(name, above))
        for module, imported in GRAPH.items()
        if _under(module, DELIVERY)
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_the_step_stands_on_the_pipeline_and_delivery_only() -> None:
    internal = {name for name in GRAPH["shipper.shipping"] if name.startswith("shipper")}
    below = ("shipper.pipeline", "shipper.delivery", "shipper.reject", "shipper.names")
    assert sorted(name for name in internal if not _under(name, below)) == []


def test_sink_counters_are_the_sink_counter_names() -> None:
    assert [field.name for field in fields(SinkCounters)] == list(SINK_COUNTERS)


def test_every_count_and_reject_code_is_written_once() -> None:
    """A reject code or count name written as a string anywhere but shipper.names is a second copy of it."""
    names = {*REJECT_CODES, *COUNTS, *(counter for counter in SINK_COUNTERS if counter.endswith("_events"))}
    copies = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "names.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    ]
    assert copies == []
