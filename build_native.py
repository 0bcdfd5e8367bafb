"""Compile shipper's hot path with mypyc, in place, from the same sources that run as pure Python.

    python build_native.py build      compile shipper.native.COMPILED beside their sources
    python build_native.py clean      remove what the build made
    python build_native.py sources    the compiled modules' source files (make's dependencies)
    python build_native.py status     which implementation `import shipper` loads, and why

The C compiler is the one Python was built with (`cc`) when it works, else Zig's from PyPI (`ziglang`,
installed on demand). A build that cannot compile removes what it made and says why: shipper then runs
as pure Python, which behaves the same, only slower. Under CI=true a failed build is an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from shipper import native  # noqa: E402


def _compiles(compiler: list[str]) -> bool:
    """Whether `compiler` builds a shared object against this Python's headers."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch, "probe.c")
        source.write_text("#include <Python.h>\nint probe(void) { return 0; }\n")
        command = [*compiler, "-shared", "-fPIC", f"-I{sysconfig.get_path('include')}", str(source), "-o"]
        try:
            completed = subprocess.run([*command, str(source.with_suffix(".so"))], capture_output=True, check=False)
        except OSError:
            return False
        return completed.returncode == 0


def _compiler_environment() -> dict[str, str]:
    """Environment variables that make setuptools use a working C compiler: the system's, else Zig's."""
    system = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if _compiles(system):
        return {}
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "ziglang"], check=True)
    zig = [sys.executable, "-m", "ziglang", "cc"]
    if not _compiles(zig):
        raise RuntimeError("neither the system's C compiler nor Zig's (PyPI ziglang) can build a Python extension")
    command = " ".join(zig)
    return {"CC": command, "LDSHARED": f"{command} -shared", "LDCXXSHARED": f"{command} -shared"}


def build() -> None:
    """Compile `native.COMPILED` in place, then record their sources' checksums; on failure remove any partial build."""
    clean()
    os.environ.update(_compiler_environment())
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    os.chdir(ROOT)
    sources = [os.path.relpath(native.source_path(module), ROOT) for module in native.COMPILED]
    try:
        setup(
            name="shipper-native",
            ext_modules=mypycify(
                sources, group_name=native.GROUP, opt_level="3", debug_level="0", target_dir="build/native"
            ),
            script_args=["build_ext", "--inplace", "--quiet"],
        )
    except BaseException:
        clean()
        raise
    native.write_build_record()


def clean() -> None:
    for path in native.built_files():
        Path(path).unlink()
    shutil.rmtree(ROOT / "build" / "native", ignore_errors=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "build":
        try:
            build()
        except Exception as exc:
            print(f"build_native: the hot path stays pure Python: {exc}", file=sys.stderr)
            return 1 if os.environ.get("CI") == "true" else 0
        print(f"build_native: {len(native.COMPILED)} modules compiled with mypyc")
        return 0
    if command == "clean":
        clean()
        return 0
    if command == "sources":
        print(" ".join(os.path.relpath(native.source_path(module), ROOT) for module in native.COMPILED))
        return 0
    if command == "status":
        print(native.implementation())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
