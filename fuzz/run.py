"""`make fuzz`: build the compiled hot path with sanitizers in a copy of the package, fuzz it, print the figures.

The mypyc modules (shipper.native.COMPILED) are compiled from the same sources with clang's
-fsanitize=address,undefined,fuzzer-no-link into a copy of the package (build_native.py build --into),
so the in-place build is never touched. fuzz_pipeline.py then runs on that copy under atheris, with
atheris's ASan runtime (which carries libFuzzer and UBSan's handlers) preloaded: libFuzzer sees the
coverage inside the compiled code, ASan checks every memory access it makes (PYTHONMALLOC=malloc, so
Python objects are ASan's allocations too) and UBSan stops at the first undefined behaviour (but for
that of mypyc's runtime listed in fuzz/ubsan.supp). Without
clang or that runtime this says why and fuzzes the copy compiled without sanitizers, or pure Python
when nothing compiles. At the end: executions, seconds, coverage, what ran, and where a crash was saved.

    python fuzz/run.py SECONDS [libFuzzer flags...]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
SANITIZERS = "address,undefined,fuzzer-no-link"
BUILD_DIR = Path(os.environ.get("FUZZ_BUILD_DIR") or Path(tempfile.gettempdir(), "shipper-fuzz-build"))
ARTIFACTS = ROOT / "out" / "fuzz"
"""Where libFuzzer saves an input that crashed (crash-<sha1>), to replay with `fuzz_pipeline.py FILE`."""
RUNTIME = Path(atheris.path(), "asan_with_fuzzer.so")


def _build(sanitizers: str | None) -> bool:
    command = [sys.executable, str(ROOT / "build_native.py"), "build", "--into", str(BUILD_DIR)]
    print(f"fuzz: {' '.join(command[1:])}{f' --sanitize {sanitizers}' if sanitizers else ''}", flush=True)
    return subprocess.run([*command, *(["--sanitize", sanitizers] if sanitizers else [])], check=False).returncode == 0


def _target() -> tuple[dict[str, str], str]:
    """The environment that runs the harness on the best build this machine can make, and what that build is."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BUILD_DIR), os.environ.get("PYTHONPATH", "")])}
    environment.pop("SHIPPER_PURE_PYTHON", None)
    environment["PYTHONHASHSEED"] = "0"  # a saved crash replays the same way: sets and dicts iterate alike
    why_not = f"atheris has no ASan runtime ({RUNTIME} is missing)"
    if RUNTIME.exists():
        if _build(SANITIZERS):
            environment.update(
                LD_PRELOAD=str(RUNTIME),
                PYTHONMALLOC="malloc",
                ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1",
                UBSAN_OPTIONS=f"halt_on_error=1:print_stacktrace=1:suppressions={ROOT / 'fuzz' / 'ubsan.supp'}",
            )
            return environment, f"compiled (mypyc) with -fsanitize={SANITIZERS}"
        why_not = "the sanitized build failed (above)"
    print(f"fuzz: NO SANITIZERS: {why_not}; fuzzing what compiles without them", flush=True)
    if _build(None):
        return environment, f"compiled (mypyc) WITHOUT sanitizers: {why_not}"
    environment["SHIPPER_PURE_PYTHON"] = "1"
    return environment, f"pure Python, NOT the compiled hot path: {why_not}, and nothing compiles (above)"


def _stat(output: str, pattern: str) -> str:
    found = re.findall(pattern, output)
    return found[-1] if found else "?"


def main(argv: list[str]) -> int:
    seconds, flags = argv[0], argv[1:]
    environment, what = _target()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        str(ROOT / "fuzz" / "fuzz_pipeline.py"),
        f"-max_total_time={seconds}",
        f"-dict={ROOT / 'fuzz' / 'numbers.dict'}",
        "-print_final_stats=1",
        f"-artifact_prefix={ARTIFACTS}/",
        *flags,
    ]
    print(f"fuzz: {seconds} s on {what}", flush=True)
    started = time.monotonic()
    with subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True, errors="replace") as fuzzer:
        assert fuzzer.stderr is not None
        lines = []
        for line in fuzzer.stderr:
            sys.stderr.write(line)
            lines.append(line)
    elapsed = time.monotonic() - started
    output = "".join(lines)
    executions = _stat(output, r"stat::number_of_executed_units: (\d+)")
    coverage = _stat(output, r"cov: (\d+)")
    features = _stat(output, r"ft: (\d+)")
    crashes = re.findall(r"Test unit written to (\S+)", output)
    print(
        f"fuzz: {executions} executions in {elapsed:.0f} s; coverage {coverage} edges, {features} features; "
        f"{what}; {f'CRASH saved to {crashes[-1]}' if crashes else 'exit code ' + str(fuzzer.returncode)}"
    )
    return fuzzer.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
