"""The Lambda package's dependency locks (deploy/requirements*.txt, `make lock`) pin every dependency with hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\$")


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """Name -> (version, number of hashes) for each requirement of a pip-compile lock with hashes."""
    found: dict[str, tuple[str, int]] = {}
    name = None
    for line in lock.read_text().splitlines():
        if match := _PIN.match(line):
            name = canonicalize_name(match.group(1))
            found[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name is not None:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
        elif line and not line.startswith(("#", " ")):
            pytest.fail(f"{lock.name}: not a pinned requirement with hashes: {line!r}")
    return found


LOCKS = {
    "requirements.txt": [],
    "requirements-aws.txt": ["aws"],
    "requirements-backends.txt": ["otlp", "snappy"],
    "requirements-aws-backends.txt": ["aws", "otlp", "snappy"],
}
"""Each lock and the extras it is compiled with (the Makefile's `lock`; deploy/package.py's LOCKS)."""


def test_the_packager_installs_from_each_lock_and_make_lock_writes_each() -> None:
    assert sorted(path.name for path in (ROOT / "deploy").glob("requirements*.txt")) == sorted(LOCKS)
    makefile = (ROOT / "Makefile").read_text()
    for lock, extras in LOCKS.items():
        assert "".join(f"--extra {extra} " for extra in extras) + f"--output-file deploy/{lock}" in makefile


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_every_dependency_is_pinned_with_hashes_within_the_projects_ranges(lock: str, extras: list[str]) -> None:
    pinned = pins(ROOT / "deploy" / lock)
    wanted = [*PROJECT["dependencies"], *(text for extra in extras for text in PROJECT["optional-dependencies"][extra])]
    for text in wanted:
        requirement = Requirement(text)
        version, _ = pinned[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), (lock, text, version)
    assert all(hashes >= 1 for _, hashes in pinned.values()), lock
    # The default package leaves boto3 to the runtime, and the backends' extras to those who use them.
    assert ("boto3" in pinned) == ("aws" in extras)
    assert ("opentelemetry-proto" in pinned) == ("otlp" in extras)
    assert ("cramjam" in pinned) == ("snappy" in extras)
