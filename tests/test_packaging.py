"""pyproject.toml (pip users) and environment.yml (conda users) agree; CI runs the README's test command."""

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Conda has no extras: what `moto[server]` pulls in through pip is listed by name there.
CONDA_ONLY = {"python", "pip", "flask", "flask-cors"}
# Not on conda-forge: environment.yml installs these from PyPI, in its `pip:` list.
PYPI_ONLY = {"awslambdaric"}


def _split(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(3).replace(" ", "")


def pip_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = dict(_split(r) for r in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        found.update(_split(r) for r in extra)
    return found


def _environment() -> list[Any]:
    return yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]


def conda_requirements() -> dict[str, str]:
    """What environment.yml installs from conda-forge."""
    return dict(_split(d) for d in _environment() if isinstance(d, str))


def pypi_requirements() -> dict[str, str]:
    """What environment.yml's `pip:` list installs from PyPI, less the project itself (`-e .[dev]`)."""
    lists = [d["pip"] for d in _environment() if isinstance(d, dict) and "pip" in d]
    assert len(lists) == 1, "environment.yml should have one `pip:` list (it installs the project)"
    assert "-e .[dev]" in lists[0], "environment.yml's `pip:` list should install the project: -e .[dev]"
    return dict(_split(r) for r in lists[0] if not r.startswith("-"))


def test_every_pip_requirement_is_in_the_conda_environment_with_the_same_bound():
    pip, conda = pip_requirements(), {**conda_requirements(), **pypi_requirements()}
    assert {name: conda.get(name) for name in pip} == pip


def test_the_conda_environment_adds_nothing_pip_lacks():
    extra = set(conda_requirements()) - set(pip_requirements())
    assert extra <= CONDA_ONLY, f"environment.yml lists {sorted(extra - CONDA_ONLY)} that pyproject.toml does not"


def test_only_packages_missing_from_conda_forge_come_from_pypi():
    pypi, conda = set(pypi_requirements()), set(conda_requirements())
    assert pypi == PYPI_ONLY, f"environment.yml's `pip:` list should hold {sorted(PYPI_ONLY)}, not {sorted(pypi)}"
    assert not pypi & conda, f"{sorted(pypi & conda)} listed twice in environment.yml"


def test_requirements_pin_lower_bounds_not_exact_versions():
    for name, spec in pip_requirements().items():
        version = spec.split(";")[0]  # an environment marker may follow, and compares with ==
        assert version.startswith(">="), f"{name} should have a lower bound: {spec!r}"
        assert "==" not in version, f"{name} is pinned exactly"


def test_ci_runs_the_test_command_the_readme_gives():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", readme, re.DOTALL)
    commands = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    assert "make test" in commands, "the README should show `make test` in a code block"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE), ".ci/run must call the README's test command"


def test_the_handler_and_both_editions_ship_inside_the_wheel():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    force = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    editions = {
        f"{folder}/{notebook.name}": f"labkit/editions/{target}/{notebook.name}"
        for folder, target in (("student", "student"), ("notebooks", "instructor"))
        for notebook in sorted((ROOT / folder).glob("*.ipynb"))
    }
    assert force == {"lambda/code.py": "labkit/lambda_code/code.py", **editions}
