"""Build the Lambda deployment zip: the shipper and its dependencies, as binary wheels for the Lambda platform.

    python deploy/package.py [--arch arm64|x86_64] [--python 3.13] [--with-boto3] [--with-backends] [--out dist]
    python deploy/package.py --arch ARCH --python VERSION [--with-backends] --target-dir DIR   (what `sam build` runs)

For each architecture (both by default) it installs the dependencies pinned with hashes in
deploy/requirements.txt (`--require-hashes`; the lock of `LOCKS` for --with-boto3 and --with-backends), then the
project's wheel without dependencies, into a fresh directory with `pip install --platform
manylinux_2_28_<machine> --only-binary=:all:` and each older manylinux tag (`platforms`) for the function's
Python version, adds the hot path compiled with mypyc for that Python and machine when this Python is that
version (`add_compiled_hot_path`; else the hot path stays pure Python, and the report says why), compiles it
to bytecode with that Python when the machine has it (Lambda cannot write bytecode itself), zips the
directory (sorted, fixed timestamps: the same input gives the same zip) to
`dist/shipper-lambda-<python>-<arch>.zip`, and reports its size, zipped and unzipped, against Lambda's
limits (50 MB zipped for a direct upload, 250 MB unzipped) and how its hot path runs. `dist/lambda.zip` is
a copy of the `--deploy-arch` zip. With --target-dir it installs one architecture into that directory and
zips nothing: `sam build` calls it so (the Makefile's `build-Function` target, SAM's `BuildMethod: makefile`)
and zips the directory itself.
boto3 is left out unless --with-boto3: the Lambda Python runtimes include it. The backend sinks' extras (otlp:
opentelemetry-proto; snappy: cramjam, for prometheus-remote-write and loki's protobuf push) are left out unless
--with-backends (for `make build-Function`: WITH_BACKENDS=1). Exits 1 when a zip is over a limit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # build_native, and the shipper it compiles
MB = 1024 * 1024
ZIPPED_LIMIT = 50 * MB
UNZIPPED_LIMIT = 250 * MB
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
LAMBDA_GLIBC = "2.26"
"""The oldest glibc of a Lambda Python runtime (python3.11, Amazon Linux 2): the hot path is compiled for it, so
runs on every runtime of its Python version."""
GLIBC_MINOR = 28
"""Wheels for glibc 2.28 or older: the Lambda Python 3.12+ runtimes have 2.34 (Amazon Linux 2023), and some
dependencies (cramjam) publish no wheel for older glibc than 2.28."""


def platforms(arch: str) -> list[str]:
    """pip's --platform tags for `arch`: each manylinux_2_N down to 2_17, and manylinux2014 (pip expands no
    manylinux_2_N tag to older ones itself)."""
    machine = MACHINES[arch]
    return [*(f"manylinux_2_{minor}_{machine}" for minor in range(GLIBC_MINOR, 16, -1)), f"manylinux2014_{machine}"]


_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
LOCKS = {
    (False, False): ROOT / "deploy" / "requirements.txt",
    (True, False): ROOT / "deploy" / "requirements-aws.txt",
    (False, True): ROOT / "deploy" / "requirements-backends.txt",
    (True, True): ROOT / "deploy" / "requirements-aws-backends.txt",
}
"""(with boto3, with the backend sinks' extras) -> the runtime dependencies, pinned with hashes (`make lock`
regenerates them from pyproject.toml: the aws extra; the otlp and snappy extras)."""


def build_wheel(work: Path) -> Path:
    """The project's own wheel, built from the work tree."""
    wheels = work / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    # Its files' times fixed too: the zip records the wheel's hash (direct_url.json).
    _pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(ROOT), SOURCE_DATE_EPOCH="315532800")
    [wheel] = wheels.glob("lambda_shipper-*.whl")
    return wheel


def install(wheel: Path, target: Path, arch: str, python: str, with_boto3: bool, with_backends: bool) -> str:
    """Install the pinned dependencies (hashes checked), then `wheel`, into `target` as Lambda loads them, with
    the hot path compiled where it can be; returns how the hot path runs (`add_compiled_hot_path`)."""
    shutil.rmtree(target, ignore_errors=True)
    lock = LOCKS[with_boto3, with_backends]
    platform = (*(f"--platform={tag}" for tag in platforms(arch)), "--implementation", "cp", "--python-version", python)
    _pip(
        "install",
        "--quiet",
        "--target",
        str(target),
        *platform,
        "--only-binary=:all:",
        "--require-hashes",
        "-r",
        str(lock),
    )
    # The project's own wheel, just built from this tree, has no published hash; its dependencies are all above.
    _pip("install", "--quiet", "--target", str(target), *platform, "--only-binary=:all:", "--no-deps", str(wheel))
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: nothing runs them in Lambda
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache)
    hot_path = add_compiled_hot_path(target, arch, python)
    precompile(target, python)
    return hot_path


def add_compiled_hot_path(target: Path, arch: str, python: str) -> str:
    """Compile the hot path with mypyc for Python `python` on `arch` and put it beside the sources installed in
    `target`, with its build record (of this tree's sources, which the wheel holds).

    Returns 'hot path compiled (mypyc)', or 'pure Python (why)' when it cannot be compiled here: mypyc
    compiles only for the Python version that runs it, and Zig's C compiler (PyPI ziglang) compiles for
    each machine.
    """
    from build_native import build, linux_target
    from shipper import native

    built = ROOT / "build" / "lambda" / f"native-python{python}-{arch}"
    try:
        platform = linux_target(python, MACHINES[arch], LAMBDA_GLIBC)
        build(into=built, target=platform)
    except (Exception, SystemExit) as exc:  # setuptools and mypyc exit on a failed build
        return f"pure Python (not compiled: {exc})"
    record = Path(native.BUILD_RECORD).name
    for path in sorted((built / "shipper").rglob("*")):
        if path.name.endswith(platform.suffix) or path.name == record:
            shutil.copyfile(path, target / path.relative_to(built))
    return "hot path compiled (mypyc)"


def precompile(target: Path, python: str) -> bool:
    """Compile every module in `target` to bytecode for Python `python`; False when no such interpreter is here.

    Lambda's code directory is read-only, so a zip without bytecode compiles the shipper from source on
    every cold start (about 70 ms of the handler's import). The files are unchecked-hash pycs: they do
    not depend on the files' times, which the zip fixes, so the same input still gives the same zip.
    """
    interpreter = _interpreter(python)
    if interpreter is None:
        print(
            f"no python{python} on this machine: the package has no bytecode, so each cold start compiles "
            f"the shipper from source (install Python {python} or build with --python "
            f"{sys.version_info.major}.{sys.version_info.minor})",
            file=sys.stderr,
        )
        return False
    command = [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    if subprocess.run([*command, str(target)], check=False).returncode != 0:
        # A dependency may ship a file that is not Python this version reads; it cannot be imported either.
        print(f"some files in {target} did not compile (listed above); the rest did", file=sys.stderr)
    return True


def _interpreter(python: str) -> str | None:
    """This interpreter when it is Python `python`, else a `python<version>` on PATH that runs."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        return sys.executable
    found = shutil.which(f"python{python}")
    if found is None:
        return None
    check = [found, "-c", "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')"]
    completed = subprocess.run(check, capture_output=True, text=True, check=False)
    return found if completed.returncode == 0 and completed.stdout.strip() == python else None


def write_zip(source: Path, destination: Path) -> int:
    """Zip `source` into `destination` deterministically; returns the unzipped size in bytes."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), _FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    return unzipped


def report(name: str, zipped: int, unzipped: int, hot_path: str) -> bool:
    """Print one line: the sizes and how the hot path runs; False when over a limit."""
    within = zipped <= ZIPPED_LIMIT and unzipped <= UNZIPPED_LIMIT
    print(
        f"{name}: {zipped / MB:.1f} MB zipped ({zipped / ZIPPED_LIMIT:.0%} of 50 MB), "
        f"{unzipped / MB:.1f} MB unzipped ({unzipped / UNZIPPED_LIMIT:.0%} of 250 MB), {hot_path}"
        f"{'' if within else '  OVER THE LIMIT'}"
    )
    return within


def _pip(*args: str, **environment: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    subprocess.run(command, env={**os.environ, **environment}, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=sorted(MACHINES), help="default: both")
    parser.add_argument("--deploy-arch", choices=sorted(MACHINES), default="arm64", help="copied to lambda.zip")
    parser.add_argument("--python", default="3.13", help="the function's Python version (default 3.13)")
    parser.add_argument("--with-boto3", action="store_true", help="bundle boto3 instead of the runtime's")
    parser.add_argument(
        "--with-backends", action="store_true", help="bundle the otlp and snappy extras (otlp, remote write, loki)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--target-dir", type=Path, help="install one --arch into this directory; no zip")
    args = parser.parse_args(argv)
    if args.target_dir is not None:
        if not args.arch or len(args.arch) != 1:
            parser.error("--target-dir takes exactly one --arch")
        [arch] = args.arch
        wheel = build_wheel(ROOT / "build" / "lambda")
        hot_path = install(wheel, args.target_dir, arch, args.python, args.with_boto3, args.with_backends)
        backends = " with the backend sinks' extras" if args.with_backends else ""
        print(f"{args.target_dir}: the {arch} function for Python {args.python}{backends}, {hot_path}")
        return 0
    arches = args.arch or sorted(MACHINES)
    if args.deploy_arch not in arches:
        parser.error(f"--deploy-arch {args.deploy_arch} is not one of the architectures built")
    work = ROOT / "build" / "lambda"
    wheel = build_wheel(work)
    within = True
    for arch in arches:
        target = work / f"python{args.python}-{arch}"
        hot_path = install(wheel, target, arch, args.python, args.with_boto3, args.with_backends)
        zip_path = args.out / f"shipper-lambda-python{args.python}-{arch}.zip"
        unzipped = write_zip(target, zip_path)
        within &= report(
            str(zip_path.relative_to(ROOT) if zip_path.is_relative_to(ROOT) else zip_path),
            zip_path.stat().st_size,
            unzipped,
            hot_path,
        )
        if arch == args.deploy_arch:
            shutil.copyfile(zip_path, args.out / "lambda.zip")
    print(
        f"{args.out / 'lambda.zip'} is the {args.deploy_arch} zip, for Python {args.python}: deploy it with "
        f"Architecture={args.deploy_arch} Runtime=python{args.python}"
    )
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
