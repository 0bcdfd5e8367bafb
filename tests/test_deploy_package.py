"""deploy/package.py compiles the function's modules, since Lambda cannot write bytecode at a cold start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))

import package  # noqa: E402

THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_precompiled_modules_import_without_reading_their_source_again(tmp_path: Path) -> None:
    module = tmp_path / "app" / "hot.py"
    module.parent.mkdir()
    module.write_text("VALUE = 'compiled'\n")
    assert package.precompile(tmp_path, THIS_PYTHON)
    cached = module.parent / "__pycache__" / f"hot.{sys.implementation.cache_tag}.pyc"
    assert int.from_bytes(cached.read_bytes()[4:8], "little") == 0b01  # hash-based, source not checked
    # What the zip does to times, and a source the pyc no longer matches: the bytecode is still what runs.
    os.utime(module, (315532800, 315532800))
    module.write_text("VALUE = 'source'\n")
    code = f"import sys; sys.dont_write_bytecode = True; sys.path[:0] = [{str(tmp_path)!r}]; import app.hot; print(app.hot.VALUE)"
    completed = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "compiled"


def test_without_the_functions_python_the_package_says_it_has_no_bytecode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hot.py").write_text("VALUE = 1\n")
    assert not package.precompile(tmp_path, "2.0")
    assert "no python2.0 on this machine" in capsys.readouterr().err
    assert not (tmp_path / "__pycache__").exists()


def test_a_file_that_does_not_compile_is_named_and_the_rest_still_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.py").write_text("VALUE = 1\n")
    (tmp_path / "template.py").write_text("def {{ name }}():\n")  # a dependency's template, not Python
    assert package.precompile(tmp_path, THIS_PYTHON)
    assert (tmp_path / "__pycache__" / f"good.{sys.implementation.cache_tag}.pyc").is_file()
    assert "did not compile" in capsys.readouterr().err
