"""Compile shipper's hot path with mypyc, in place, from the same sources that run as pure Python.

    python build_native.py build      compile shipper.native.COMPILED beside their sources
    python build_native.py build --into DIR [--sanitize LIST]
                                      copy the package to DIR/shipper and compile it there, optionally with
                                      clang's -fsanitize=LIST (`make fuzz`: address,undefined,fuzzer-no-link)
    python build_native.py clean      remove what the build made
    python build_native.py sources    the compiled modules' source files (make's dependencies)
    python build_native.py status     which implementation `import shipper` loads, and why

The C compiler is the one Python was built with (`cc`) when it works, else Zig's from PyPI (`ziglang`,
installed on demand); a sanitized build needs clang (`CLANG` names another) with its sanitizer runtimes.
A build that cannot compile removes what it made and says why: shipper then runs as pure Python, which
behaves the same, only slower. Under CI=true, or for a build --into another directory, that is an error.
`build` also compiles a copy for another Linux machine and glibc (`linux_target`) with Zig's compiler:
deploy/package.py builds the Lambda package's hot path so.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

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


class Target(NamedTuple):
    """The machine, and the Python on it, that the extensions are compiled for."""

    suffix: str
    """Its extension modules' filename suffix, such as .cpython-311-aarch64-linux-gnu.so."""
    zig_target: str | None = None
    """Zig's -target (machine-linux-gnu.glibc) for another machine; None: this one, with its own C library."""


HOST = Target(sysconfig.get_config_var("EXT_SUFFIX"))
"""This Python on this machine."""


def linux_target(python: str, machine: str, glibc: str) -> Target:
    """Python `python` on Linux on `machine` (x86_64, aarch64) with glibc `glibc` or newer.

    mypyc generates C for the C API of the Python that runs it, so only that version can be a target,
    compiled against this Python's headers: between 64-bit Linux machines they differ only in pyconfig.h
    lines about x86 assembly and wchar_t, which the compiled modules do not depend on.
    """
    this = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python != this:
        raise RuntimeError(
            f"mypyc generates C for the Python that runs it ({this}), not for {python}: "
            f"run the build with Python {python} (and its headers) to compile for it"
        )
    return Target(f".cpython-{python.replace('.', '')}-{machine}-linux-gnu.so", f"{machine}-linux-gnu.{glibc}")


def zig_cc() -> list[str]:
    """Zig's C compiler (PyPI ziglang), installed into this Python on first use."""
    if importlib.util.find_spec("ziglang") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "ziglang"], check=True)
    return [sys.executable, "-m", "ziglang", "cc"]


def _compiler_environment(target: Target) -> dict[str, str]:
    """Environment variables that make setuptools compile for `target`: with the system's C compiler for
    this machine when it works, else (and always for another machine) with Zig's."""
    if target.zig_target is None:
        system = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
        if _compiles(system):
            return {}
        compiler = zig_cc()
    else:
        compiler = [*zig_cc(), "-target", target.zig_target]
    if not _compiles(compiler):
        where = target.zig_target or "this machine"
        raise RuntimeError(f"no C compiler here (the system's or Zig's) builds a Python extension for {where}")
    command = " ".join(compiler)
    return {"CC": command, "LDSHARED": f"{command} -shared", "LDCXXSHARED": f"{command} -shared"}


def _sanitizer_environment(sanitizers: str) -> dict[str, str]:
    """Environment variables that make setuptools compile and link with clang's -fsanitize=`sanitizers`."""
    clang = os.environ.get("CLANG", "clang")
    flags = f"-fsanitize={sanitizers} -fno-omit-frame-pointer"
    if not _compiles([clang, *flags.split()]):
        raise RuntimeError(
            f"{clang} cannot build a Python extension with {flags} "
            "(Debian: apt-get install clang libclang-rt-14-dev; CLANG names another clang)"
        )
    return {"CC": clang, "LDSHARED": f"{clang} -shared", "LDCXXSHARED": f"{clang} -shared", "CFLAGS": flags}


def _copy_package(target: Path) -> ModuleType:
    """A fresh copy of the package's sources in `target`, with pyproject.toml (the mypy settings mypyc reads) and
    the files it names; the copy's `native` module."""
    shutil.rmtree(target, ignore_errors=True)
    extensions = [f"*{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    built = shutil.ignore_patterns("__pycache__", os.path.basename(native.BUILD_RECORD), *extensions)
    shutil.copytree(ROOT / "shipper", target / "shipper", ignore=built)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, target / name)
    spec = importlib.util.spec_from_file_location("_shipper_native_copy", target / "shipper" / "native.py")
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


def build(into: Path | None = None, sanitizers: str | None = None, target: Target = HOST) -> None:
    """Compile `native.COMPILED` in place (or in a copy of the package in `into`) for `target`, then record
    their sources' checksums; on failure remove any partial build. Sanitized builds (only `into` another
    directory, for this machine) keep their symbols for the sanitizers' reports."""
    try:
        from mypyc.build import mypycify
        from setuptools import setup  # type: ignore[import-untyped]
    except ImportError as exc:
        raise RuntimeError(f"{exc.name} is not installed for {sys.executable}") from exc
    root = ROOT if into is None else into.resolve()
    package = native if into is None else _copy_package(root)
    clean(package, root)
    compiler = _sanitizer_environment(sanitizers) if sanitizers else _compiler_environment(target)
    saved, cwd = dict(os.environ), os.getcwd()
    os.environ.update({**compiler, "SETUPTOOLS_EXT_SUFFIX": target.suffix})
    os.chdir(root)
    sources = [os.path.relpath(package.source_path(module), root) for module in package.COMPILED]
    try:
        setup(
            name="shipper-native",
            ext_modules=mypycify(
                sources,
                group_name=package.GROUP,
                opt_level="1" if sanitizers else "3",
                debug_level="1" if sanitizers else "0",
                target_dir="build/native",
            ),
            script_args=["--quiet", "build_ext", "--inplace"],
        )
    except BaseException:
        clean(package, root)
        raise
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(cwd)
    package.write_build_record()


def clean(package: ModuleType = native, root: Path = ROOT) -> None:
    for path in package.built_files():
        Path(path).unlink()
    shutil.rmtree(root / "build" / "native", ignore_errors=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "build":
        parser = argparse.ArgumentParser(prog="build_native.py build")
        parser.add_argument("--into", type=Path, help="copy the package to INTO/shipper and build it there")
        parser.add_argument("--sanitize", metavar="LIST", help="clang's -fsanitize= list (needs --into)")
        args = parser.parse_args(argv[1:])
        if args.sanitize and args.into is None:
            parser.error("--sanitize needs --into: the in-place build stays unsanitized")
        try:
            build(args.into, args.sanitize)
        except Exception as exc:
            where = "in place" if args.into is None else f"in {args.into}"
            print(f"build_native: the hot path {where} stays pure Python: {exc}", file=sys.stderr)
            return 1 if os.environ.get("CI") == "true" or args.into is not None else 0
        flags = f" with -fsanitize={args.sanitize}" if args.sanitize else ""
        where = "" if args.into is None else f" in {args.into}"
        print(f"build_native: {len(native.COMPILED)} modules compiled with mypyc{flags}{where}")
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
