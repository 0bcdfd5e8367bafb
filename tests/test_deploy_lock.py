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


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.txt", []), ("requirements-aws.txt", PROJECT["optional-dependencies"]["aws"])]
)
def test_every_dependency_is_pinned_with_hashes_within_the_projects_ranges(lock: str, extras: list[str]) -> None:
    pinned = pins(ROOT / "deploy" / lock)
    for text in [*PROJECT["dependencies"], *extras]:
        requirement = Requirement(text)
        version, _ = pinned[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), (lock, text, version)
    assert all(hashes >= 1 for _, hashes in pinned.values()), lock
    assert ("boto3" in pinned) == bool(extras)  # the default package leaves boto3 to the runtime
