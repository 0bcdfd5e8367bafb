"""The compiled hot path: which modules are compiled, whether the compiled ones are loaded, and the build.

The modules in `COMPILED` are compiled with mypyc from the same `.py` files that run uncompiled, so
the two cannot drift apart: Python's import system prefers the compiled extension beside a module's
source, and pure Python is the fallback. `shipper` loads the compiled modules only when all of them
are present and were built from the sources beside them (the build records each source's CRC-32 in
`BUILD_RECORD`); otherwise, or with SHIPPER_PURE_PYTHON=1, every one of them is loaded from source.
`make native` builds them (build_native.py); `shipper --version` says which implementation runs.

This module is imported by `import shipper`, so it imports only what costs nothing to import.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import zlib
from collections.abc import Sequence
from types import ModuleType

COMPILED = (
    "shipper.bounds",
    "shipper.classify",
    "shipper.contract",
    "shipper.decode",
    "shipper.delivery",
    "shipper.lines",
    "shipper.metrics",
    "shipper.pipeline",
    "shipper.report",
    "shipper.signals",
    "shipper.sinks.base",
    "shipper.sinks.local",
)
"""Modules compiled with mypyc: the hot path of decode -> classify (lines) -> route -> encode -> report."""

PURE_PYTHON_VARIABLE = "SHIPPER_PURE_PYTHON"
GROUP = "shipper._hot"
"""mypyc's name for the shared library that holds the compiled code of all of `COMPILED`."""

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
BUILD_RECORD = os.path.join(PACKAGE_DIR, "_compiled.txt")
"""Written by the build: one line per compiled module, its name and its source's CRC-32."""


def _path_of(module: str, suffix: str) -> str:
    return os.path.join(os.path.dirname(PACKAGE_DIR), *module.split(".")) + suffix


def source_path(module: str) -> str:
    return _path_of(module, ".py")


def _checksum(module: str) -> str:
    with open(source_path(module), "rb") as source:
        return f"{zlib.crc32(source.read()):08x}"


def write_build_record() -> None:
    """Record the sources the compiled modules were built from (the build's last step)."""
    with open(BUILD_RECORD, "w", encoding="utf-8") as record:
        record.write("".join(f"{module} {_checksum(module)}\n" for module in COMPILED))


def built_files() -> list[str]:
    """What a build made and its clean removes: every extension module in the package (one of a module no
    longer in COMPILED would still shadow its source), mypyc's shared library, and the record."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found = [os.path.join(d, name) for d, _, names in os.walk(PACKAGE_DIR) for name in names if name.endswith(suffixes)]
    return [*sorted(found), *([BUILD_RECORD] if os.path.exists(BUILD_RECORD) else [])]


def _extensions() -> list[str]:
    """The compiled files present: the modules' extensions and mypyc's shared library."""
    modules = [*COMPILED, GROUP + "__mypyc"]
    paths = [_path_of(module, suffix) for module in modules for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    return [path for path in paths if os.path.exists(path)]


def _why_pure() -> str | None:
    """None when the compiled modules can be loaded, else why not (for `status` and `shipper --version`)."""
    if os.environ.get(PURE_PYTHON_VARIABLE) == "1":
        return f"{PURE_PYTHON_VARIABLE}=1"
    try:
        with open(BUILD_RECORD, encoding="utf-8") as record:
            recorded = dict(line.split() for line in record if line.strip())
    except FileNotFoundError:
        return "not compiled"
    except (OSError, ValueError) as exc:
        return f"unreadable build record {BUILD_RECORD}: {exc}"
    built = _extensions()
    for module in COMPILED:
        if not any(path.startswith(_path_of(module, ".")) for path in built):
            return f"{module} is not compiled for this Python"
        try:
            current = _checksum(module)
        except OSError as exc:
            return f"cannot read {module}'s source: {exc}"
        if recorded.get(module) != current:
            return f"{os.path.basename(source_path(module))} changed since it was compiled (`make native` rebuilds it)"
    return None


class _SourceFirst:
    """A meta path finder that loads the modules in `COMPILED` from their `.py` files, not the extensions."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED or path is None:
            return None
        for entry in path:
            finder = importlib.machinery.FileFinder(
                entry,
                (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
                (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
            )
            spec = finder.find_spec(fullname)
            if spec is not None:
                return spec
        return None


WHY_PURE: str | None = None
"""Why the hot path runs as pure Python in this process (None: it runs compiled). Set by `activate`."""


def activate() -> None:
    """Choose the implementation for this process; called once by `import shipper`, before any hot module."""
    global WHY_PURE
    WHY_PURE = _why_pure()
    if WHY_PURE is None or (WHY_PURE == "not compiled" and not _extensions()):
        return
    if not any(isinstance(finder, _SourceFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst())


def implementation() -> str:
    """One line for users: 'compiled (mypyc)' or 'pure Python (why)'."""
    return "compiled (mypyc)" if WHY_PURE is None else f"pure Python ({WHY_PURE})"
