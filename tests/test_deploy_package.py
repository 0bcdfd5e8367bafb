"""deploy/package.py compiles the function's modules to bytecode, since Lambda cannot write it at a cold start,
and its hot path with mypyc for the function's machine where it can."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from shipper import native

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))

import package  # noqa: E402

from build_native import zig_cc  # noqa: E402

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


ELF_MACHINES = {"x86_64": 62, "arm64": 183}
"""The ELF header's e_machine of each Lambda architecture (EM_X86_64, EM_AARCH64)."""


@pytest.fixture(scope="module")
def lambda_zips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Both architectures' zips for this Python, as `make package LAMBDA_PYTHON=<this>` builds them, and its output."""
    if os.environ.get(native.PURE_PYTHON_VARIABLE) == "1":
        pytest.skip("the package is the same whichever implementation runs the tests: built on the compiled pass")
    try:
        zig_cc()
    except subprocess.CalledProcessError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Zig's C compiler (PyPI ziglang) cannot be installed: {exc}")
        pytest.skip(f"Zig's C compiler (PyPI ziglang) cannot be installed: {exc}")
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, str(ROOT / "deploy" / "package.py"), "--python", THIS_PYTHON, "--out", str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out, completed.stdout


def _unzip(dist: Path, arch: str, into: Path) -> Path:
    with zipfile.ZipFile(dist / f"shipper-lambda-python{THIS_PYTHON}-{arch}.zip") as archive:
        archive.extractall(into)
    return into


# The handler over the bundled sample, in a Python that sees only the function's directory and the standard library.
_INVOKE = """
import json, os, sys
function, out, *events = sys.argv[1:]
sys.path.insert(0, function)
os.environ.update(SHIPPER_SINKS=f"jsonl:{out}/events.ndjson", SHIPPER_DEAD_LETTER=f"dir:{out}/dead-letter")
import shipper.handler
class Context:
    aws_request_id = "8f6c4d1e-0000-4000-8000-000000000001"
    def get_remaining_time_in_millis(self): return 60_000
for path in events:
    with open(path, "rb") as event:
        assert shipper.handler.handler(json.load(event), Context()) == {"batchItemFailures": []}
print(shipper.native.implementation())
"""


def _invoke(function: Path, out: Path, pure: bool) -> tuple[str, bytes]:
    environment = {key: value for key, value in os.environ.items() if key != native.PURE_PYTHON_VARIABLE}
    if pure:
        environment[native.PURE_PYTHON_VARIABLE] = "1"
    events = sorted(str(path) for path in (ROOT / "examples" / "sample").glob("kinesis-event-*.json"))
    command = [sys.executable, "-I", "-S", "-c", _INVOKE, str(function), str(out), *events]
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout.splitlines()[-1], (out / "events.ndjson").read_bytes()


def test_each_zip_says_its_hot_path_is_compiled(lambda_zips: tuple[Path, str]) -> None:
    output = lambda_zips[1]
    for arch in ELF_MACHINES:
        zip_line = next(line for line in output.splitlines() if f"python{THIS_PYTHON}-{arch}.zip:" in line)
        assert zip_line.endswith("hot path compiled (mypyc)"), zip_line


def test_the_x86_64_zip_runs_compiled_and_ships_what_pure_python_ships(
    lambda_zips: tuple[Path, str], tmp_path: Path
) -> None:
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("runs the x86_64 function's extensions, which need an x86_64 Linux machine")
    function = _unzip(lambda_zips[0], "x86_64", tmp_path / "function")
    compiled, compiled_events = _invoke(function, tmp_path / "compiled", pure=False)
    pure, pure_events = _invoke(function, tmp_path / "pure", pure=True)
    assert compiled == "compiled (mypyc)"
    assert pure == f"pure Python ({native.PURE_PYTHON_VARIABLE}=1)"
    assert compiled_events.count(b"\n") > 2000
    assert compiled_events == pure_events


@pytest.mark.parametrize("arch", sorted(ELF_MACHINES))
def test_the_extensions_are_for_the_functions_machine_and_need_only_its_glibc_and_python(
    lambda_zips: tuple[Path, str], tmp_path: Path, arch: str
) -> None:
    readelf = shutil.which("readelf")
    if readelf is None:
        if os.environ.get("CI") == "true":
            pytest.fail("readelf (Debian binutils) is not installed")
        pytest.skip("readelf (Debian binutils) is not installed")
    function = _unzip(lambda_zips[0], arch, tmp_path)
    suffix = f".cpython-{THIS_PYTHON.replace('.', '')}-{package.MACHINES[arch]}-linux-gnu.so"
    extensions = sorted((function / "shipper").rglob("*.so"))
    assert [path.name for path in extensions if not path.name.endswith(suffix)] == []
    assert len(extensions) == len(native.COMPILED) + 1  # and mypyc's shared library
    newest = tuple(int(part) for part in package.LAMBDA_GLIBC.split("."))
    for extension in extensions:
        header = extension.read_bytes()[:20]
        assert header[:5] == b"\x7fELF\x02"  # 64-bit
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINES[arch], extension.name
        dynamic = subprocess.run([readelf, "-d", "-W", str(extension)], capture_output=True, text=True, check=True)
        needed = {line.split("[")[1].rstrip("]") for line in dynamic.stdout.splitlines() if "(NEEDED)" in line}
        assert needed <= {"libc.so.6", "libm.so.6"}, extension.name
        symbols = subprocess.run(
            [readelf, "--dyn-syms", "-W", str(extension)], capture_output=True, text=True, check=True
        )
        for line in symbols.stdout.splitlines():
            fields = line.split()
            if len(fields) < 8 or fields[6] != "UND":
                continue
            name, _, version = fields[7].partition("@")
            if version:  # from glibc, no newer than the oldest Lambda runtime's
                assert version.startswith("GLIBC_"), fields[7]
                assert tuple(int(part) for part in version.removeprefix("GLIBC_").split(".")) <= newest, fields[7]
            else:  # from the Python that loads it
                assert name.startswith(("Py", "_Py")), fields[7]
    record = (function / "shipper" / "_compiled.txt").read_text().split()
    sources = {module: function.joinpath(*module.split(".")).with_suffix(".py") for module in native.COMPILED}
    assert dict(zip(record[::2], record[1::2], strict=True)) == {
        module: f"{zlib.crc32(path.read_bytes()):08x}" for module, path in sources.items()
    }


def test_the_same_tree_gives_the_same_zip_compiled_hot_path_and_all(
    lambda_zips: tuple[Path, str], tmp_path: Path
) -> None:
    command = [sys.executable, str(ROOT / "deploy" / "package.py"), "--python", THIS_PYTHON, "--out", str(tmp_path)]
    command += ["--arch", "x86_64", "--deploy-arch", "x86_64"]
    subprocess.run(command, capture_output=True, check=True, timeout=900)
    name = f"shipper-lambda-python{THIS_PYTHON}-x86_64.zip"
    assert (tmp_path / name).read_bytes() == (lambda_zips[0] / name).read_bytes()


def test_for_another_python_the_hot_path_stays_pure_python_and_says_why(tmp_path: Path) -> None:
    hot_path = package.add_compiled_hot_path(tmp_path, "arm64", "3.99")
    assert hot_path.startswith("pure Python (not compiled: mypyc generates C for the Python that runs it")
    assert "Python 3.99" in hot_path
    assert list(tmp_path.iterdir()) == []
