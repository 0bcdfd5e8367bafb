"""The distribution users install: `lambda-shipper`, Apache-2.0, an sdist whose tests run, `shipper --version`."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import shipper
from shipper.cli import main
from shipper.errors import INSTALL_AWS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built from the work tree the way `python -m build` does, without a network."""
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)]
    completed = subprocess.run(build, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out


def _metadata(dist: Path) -> email.message.Message:
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_the_distribution_is_lambda_shipper_under_apache_2(dist: Path) -> None:
    metadata = _metadata(dist)
    assert metadata["Name"] == "lambda-shipper"
    assert metadata["Version"] == shipper.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert any(n.endswith("licenses/LICENSE") for n in names)
        assert "shipper/cli.py" in names
        assert (
            "shipper = shipper.cli:main"
            in archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        )


def test_the_install_hint_names_the_distribution_users_can_install() -> None:
    assert "lambda-shipper[aws]" in INSTALL_AWS


def test_an_unpacked_sdist_runs_its_own_tests(dist: Path, tmp_path: Path) -> None:
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    [tree] = tmp_path.iterdir()
    for needed in ("LICENSE", "tests/conftest.py", "tests/helpers.py", "examples/sample", "deploy/template.yaml"):
        assert (tree / needed).exists(), needed
    # A quick part of the suite, importing the package from the unpacked sdist rather than this work tree.
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    probe = [sys.executable, "-c", "import shipper; print(shipper.__file__)"]
    assert subprocess.run(
        probe, capture_output=True, text=True, env=environment, cwd=tree, check=True
    ).stdout.startswith(str(tree))
    tests = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_decode.py",
        "tests/test_end_to_end.py",
    ]
    completed = subprocess.run(
        tests, capture_output=True, text=True, env=environment, cwd=tree, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert " passed" in completed.stdout


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    expected = f"shipper {shipper.__version__} (lambda-shipper; hot path {shipper.native.implementation()})"
    assert " ".join(capsys.readouterr().out.split()) == expected
