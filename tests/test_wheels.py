"""The lab installs from binary wheels on every laptop students bring: nothing is built from source.

pip's own resolver runs in dry-run mode for each target's platform tags and Python version, with
`--only-binary=:all:`: a dependency without a wheel there fails the resolution, as it would fail
`pip install` on a laptop without a compiler. pip evaluates environment markers for the machine it
runs on, never for `--platform`, so this test evaluates them for each target itself: the project's
own requirements before pip sees them, and every resolved package's requirements afterwards, adding
any that the target needs and pip left out (`colorama` on Windows, `appnope` on macOS) and resolving
again. https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-platform

Fifteen resolutions take two to three minutes of both cores, so `make test` leaves them to
`make test-wheels`, which CI runs. PyPI unreachable: the test is skipped with the reason, unless
`LABKIT_REQUIRE_PYPI=1` (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_PYPI = os.environ.get("LABKIT_REQUIRE_PYPI", "") == "1"
PYTHONS = ("3.11", "3.12", "3.13")


def _manylinux(arch: str) -> list[str]:
    # pip takes --platform literally: a glibc 2.28 laptop (Debian 10, RHEL 8 and newer) accepts every older tag.
    return [f"manylinux_2_{minor}_{arch}" for minor in range(28, 16, -1)] + [f"manylinux2014_{arch}"]


def _environment(sys_platform: str, system: str, os_name: str, machine: str) -> dict[str, str]:
    return {
        "sys_platform": sys_platform,
        "platform_system": system,
        "os_name": os_name,
        "platform_machine": machine,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_version": "",
    }


# Each target: the platform tags pip may pick (it widens macOS versions itself) and its marker variables.
TARGETS: dict[str, tuple[list[str], dict[str, str]]] = {
    "linux-x86_64": (_manylinux("x86_64"), _environment("linux", "Linux", "posix", "x86_64")),
    "linux-aarch64": (_manylinux("aarch64"), _environment("linux", "Linux", "posix", "aarch64")),
    "macos-arm64": (["macosx_11_0_arm64"], _environment("darwin", "Darwin", "posix", "arm64")),
    "macos-x86_64": (["macosx_12_0_x86_64"], _environment("darwin", "Darwin", "posix", "x86_64")),
    "windows-amd64": (["win_amd64"], _environment("win32", "Windows", "nt", "AMD64")),
}


def project_requirements() -> list[Requirement]:
    """What `pip install -e .[dev]` (make's set-up) asks for: the lab's dependencies and the developers'."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def applies(requirement: Requirement, environment: dict[str, str], extras: list[str]) -> bool:
    """True when *requirement*'s marker holds on the target, for the package itself or one of its requested extras."""
    if requirement.marker is None:
        return True
    marker = Marker(str(requirement.marker))
    return any(marker.evaluate({**environment, "extra": extra}) for extra in ["", *extras])


def unmarked(requirement: Requirement) -> str:
    """The requirement without its marker, which the caller has already evaluated for the target."""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}{requirement.specifier}"


def dry_run(requirements: list[str], platforms: list[str], python: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    command += ["--only-binary=:all:", f"--python-version={python}", "--report=-"]
    command += [f"--platform={tag}" for tag in platforms]
    return subprocess.run([*command, *requirements], capture_output=True, text=True, timeout=600)


def resolve(target: str, python: str) -> dict[str, str]:
    """Package name -> the wheel pip picked for *target* and *python*; fails with pip's words if one has none."""
    platforms, environment = TARGETS[target]
    environment = {**environment, "python_version": python, "python_full_version": f"{python}.0"}
    wanted = [unmarked(r) for r in project_requirements() if applies(r, environment, [])]
    for _ in range(5):
        run = dry_run(wanted, platforms, python)
        assert run.returncode == 0, f"{target}, Python {python}: pip could not resolve wheels only:\n{run.stderr}"
        chosen = json.loads(run.stdout)["install"]
        names = {canonicalize_name(item["metadata"]["name"]) for item in chosen}
        missing = {
            unmarked(requirement)
            for item in chosen
            for requirement in map(Requirement, item["metadata"].get("requires_dist") or [])
            if applies(requirement, environment, item.get("requested_extras") or [])
            and canonicalize_name(requirement.name) not in names
        }
        if not missing:
            return {item["metadata"]["name"]: item["download_info"]["url"].rsplit("/", 1)[-1] for item in chosen}
        wanted += sorted(missing)
    raise AssertionError(f"{target}, Python {python}: the requirements did not settle: {wanted}")


@pytest.fixture(scope="module")
def pypi() -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "awslambdaric"], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        reason = f"PyPI is unreachable, so pip cannot resolve: {probe.stderr.strip().splitlines()[-1:]}"
        if REQUIRE_PYPI:
            pytest.fail(f"{reason} (LABKIT_REQUIRE_PYPI=1 makes this a failure, not a skip)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def resolutions(pypi: None) -> dict[tuple[str, str], dict[str, str]]:
    # Fifteen resolutions, mostly waiting on the index: side by side they take a fraction of the time.
    pairs = [(target, python) for target in TARGETS for python in PYTHONS]
    with ThreadPoolExecutor(max_workers=5) as pool:
        return dict(zip(pairs, pool.map(lambda pair: resolve(*pair), pairs), strict=True))


@pytest.mark.wheels
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_dependency_installs_from_a_wheel(resolutions: dict[tuple[str, str], Any], target: str) -> None:
    """pip resolves the lab and its developer tools to wheels alone, for Python 3.11 to 3.13 on *target*."""
    for python in PYTHONS:
        wheels = resolutions[(target, python)]
        assert all(name.endswith(".whl") for name in wheels.values()), wheels
        assert {"boto3", "moto", "pandas", "jupyterlab", "psutil"} <= {n.lower() for n in wheels}


@pytest.mark.wheels
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_awslambdaric_is_asked_for_only_where_it_has_wheels(
    resolutions: dict[tuple[str, str], Any], target: str
) -> None:
    """AWS's runtime client comes with the lab on Linux; macOS and Windows run labkit's portable runtime instead."""
    for python in PYTHONS:
        names = {name.lower() for name in resolutions[(target, python)]}
        assert ("awslambdaric" in names) == target.startswith("linux"), (target, python)
