"""labkit's layers, read from its imports: no circle, and no layer importing one above it.

The layers and what each may import are written in `labkit/__init__.py` and in each folder's
`__init__` docstring; this test is what keeps those sentences true. It reads the source with `ast`
(every import, also those inside functions and under TYPE_CHECKING: each is a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import labkit

PACKAGE = Path(labkit.__file__).parent

CORE = {"config", "errors", "session", "aws", "orders", "events", "lambdaerrors", "lambdalog", "cfnyaml"}
# Rank of each layer; a module may import its own group and any group of a lower rank.
RANKS = {
    "core": 0,
    "resources": 1,
    "localcloud": 1,
    "grading": 1,
    "iac": 1,
    "lab": 2,
    "observe": 3,
    "experiments": 4,
    "notebook": 5,
    "bench": 5,
    "cli": 6,
    "labkit": 6,
    "__main__": 6,
}


def sources() -> dict[str, tuple[str, bool]]:
    """Module name -> (source, whether it is a package's __init__), for every module of labkit."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = (path.read_text(encoding="utf-8"), path.name == "__init__.py")
    return found


def group(module: str) -> str:
    """The layer group of a labkit module: `core`, a folder's name, or a top-level module's."""
    parts = module.split(".")
    if len(parts) == 1:
        return "labkit"
    return "core" if parts[1] in CORE and len(parts) == 2 else parts[1]


def imports(module: str, source: str, is_package: bool, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, imported labkit module) for every import in *source*, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "labkit":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                imported = ".".join(base + ([node.module] if node.module else []))
            else:
                imported = node.module or ""
            if imported.split(".")[0] != "labkit":
                continue
            for alias in node.names:
                # `from labkit.x import y` depends on the module labkit.x.y when there is one, else on labkit.x.
                child = f"{imported}.{alias.name}"
                old = child.startswith("labkit.") and child[len("labkit.") :] in labkit.MOVED
                yield node.lineno, child if child in known or old else imported


def violations(found: dict[str, tuple[str, bool]]) -> list[str]:
    """Every import that breaks the layers: upwards, sideways between groups of one rank, or by an old name."""
    broken = []
    for name, (source, is_package) in found.items():
        own = group(name)
        for line, target in imports(name, source, is_package, set(found)):
            other = group(target)
            if target.startswith("labkit.") and target[len("labkit.") :] in labkit.MOVED:
                broken.append(f"{name}:{line} imports {target}, an old name of {labkit.MOVED[target[7:]]}")
            elif other != own and RANKS.get(other, 99) >= RANKS.get(own, -1):
                broken.append(f"{name}:{line} ({own}) imports {target} ({other})")
    return broken


def circles(found: dict[str, tuple[str, bool]]) -> list[list[str]]:
    """Groups of modules that import each other around a circle (Tarjan's strongly connected components)."""
    graph = {
        name: {target for _, target in imports(name, source, is_package, set(found)) if target in found}
        for name, (source, is_package) in found.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    result: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node] - {node}:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                result.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return result


def test_every_module_belongs_to_a_layer():
    """A new folder or top-level module must be given a place in the layers (here and in labkit's docstring)."""
    assert sorted(name for name in sources() if group(name) not in RANKS) == []


def test_no_layer_imports_one_above_it_or_a_sibling():
    """The resources, the local cloud and the grader stand on the core alone; each layer only on those below."""
    assert violations(sources()) == []


def test_no_import_circle():
    """No two modules depend on each other, directly or around a circle."""
    assert circles(sources()) == []


def test_moto_is_known_only_to_the_local_cloud():
    """`labkit/localcloud/` is the only place that knows moto; the grader and the builders speak AWS's APIs."""
    outside = []
    for name, (source, _) in sources().items():
        if group(name) == "localcloud":
            continue
        for node in ast.walk(ast.parse(source)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            outside += [f"{name}:{node.lineno}" for imported in names if imported.split(".")[0] == "moto"]
    assert outside == []


def test_the_rules_catch_what_they_forbid():
    """Each kind of break is reported: upwards, between the groups on the core, by an old name, in a circle."""
    found = {
        "labkit.config": ("from labkit.lab import Lab\n", False),
        "labkit.lab": ("import labkit.config\n", False),
        "labkit.grading": ("", True),
        "labkit.grading.facts": ("from labkit.resources import sqs\n", False),
        "labkit.resources": ("", True),
        "labkit.resources.sqs": ("def f():\n    from ..localcloud import queues\n", False),
        "labkit.localcloud": ("", True),
        "labkit.localcloud.queues": ("from labkit.config import Config\n", False),
        "labkit.observe": ("", True),
        "labkit.observe.journey": ("from labkit import sqs\n", False),
    }
    assert violations(found) == [
        "labkit.config:1 (core) imports labkit.lab (lab)",
        "labkit.grading.facts:1 (grading) imports labkit.resources.sqs (resources)",
        "labkit.resources.sqs:2 (resources) imports labkit.localcloud.queues (localcloud)",
        "labkit.observe.journey:1 imports labkit.sqs, an old name of labkit.resources.sqs",
    ]
    assert circles(found) == [["labkit.config", "labkit.lab"]]


def test_the_pipeline_as_code_stands_on_the_core_beside_the_others():
    """`labkit.iac` (real AWS APIs) may not reach into the local cloud, the builders or the grader, nor they into it."""
    found = {
        "labkit.iac": ("", True),
        "labkit.iac.export": ("from labkit.resources import sqs\nfrom labkit.cfnyaml import dump_template\n", False),
        "labkit.resources": ("", True),
        "labkit.resources.sqs": ("", False),
        "labkit.localcloud": ("", True),
        "labkit.localcloud.stacks": ("from labkit.iac import names\n", False),
        "labkit.cfnyaml": ("", False),
        "labkit.lab": ("from labkit.iac.facade import StackMethods\n", False),
    }
    assert violations(found) == [
        "labkit.iac.export:1 (iac) imports labkit.resources.sqs (resources)",
        "labkit.localcloud.stacks:1 (localcloud) imports labkit.iac (iac)",
    ]


def test_the_command_stays_on_top_alone():
    """The command is a package of modules, and the rules hold for each: nothing below imports any of them, the
    package's own names and the command do not import each other, and a command module that reaches back to the
    package (which imports it through the parser) closes a circle."""
    found = {
        "labkit": ("from labkit.cli import main\n", True),
        "labkit.lab": ("", False),
        "labkit.cli": ("from labkit.cli import parser\n", True),
        "labkit.cli.parser": ("from labkit.cli import pipeline\n", False),
        "labkit.cli.pipeline": ("from labkit.cli import EXIT_ERROR\nfrom labkit.lab import Lab\n", False),
        "labkit.cli.grade": ("from labkit import connect\n", False),
        "labkit.notebook": ("", True),
        "labkit.notebook.cells": ("from labkit.cli.pipeline import cmd_up\n", False),
    }
    assert violations(found) == [
        "labkit:1 (labkit) imports labkit.cli (cli)",
        "labkit.cli.grade:1 (cli) imports labkit (labkit)",
        "labkit.notebook.cells:1 (notebook) imports labkit.cli.pipeline (cli)",
    ]
    assert circles(found) == [["labkit.cli", "labkit.cli.parser", "labkit.cli.pipeline"]]


@pytest.mark.parametrize(
    "old, new",
    sorted(labkit.MOVED.items()),
)
def test_old_module_names_still_import(old, new):
    """Notebooks saved before the layout (`from labkit import journey`, `labkit.widgets`) keep working."""
    import importlib

    assert importlib.import_module(f"labkit.{old}") is importlib.import_module(new)
    assert getattr(labkit, old) is importlib.import_module(new)


@pytest.mark.parametrize(
    "name", ["MappingInfo", "delete_mapping", "ensure_mapping", "find_mapping", "set_mapping_enabled"]
)
def test_the_triggers_names_still_answer_where_they_were(name):
    """Code written before `resources/triggers.py` calls `labkit.functions.ensure_mapping`, and keeps working."""
    import importlib

    from labkit.resources import triggers

    assert getattr(importlib.import_module("labkit.functions"), name) is getattr(triggers, name)
