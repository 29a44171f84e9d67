"""The student's working copies of the notebooks, so running the lab never changes the tracked ones.

The notebooks in `notebooks/` keep the outputs that `pytest --nbval` compares; a student runs
copies of them in a git-ignored folder beside it (`labkit lab` opens that folder). A copy is made
once and then left alone: it holds the student's work.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from labkit.errors import ConfigError

WORK_DIR = "workspace"


def working_copy(source: Path, target: Path | None = None) -> tuple[Path, list[str]]:
    """Copy each notebook of *source* missing from *target* (default: `workspace/` beside it); keep the rest.

    Returns:
        The folder to open, and the names of the notebooks copied now (empty when every copy existed).
    Raises:
        ConfigError: *source* holds no notebooks.
    """
    notebooks = sorted(source.glob("*.ipynb"))
    if not notebooks:
        raise ConfigError(f"No notebooks in {source}: run from the repository or pass --notebooks.")
    target = target if target is not None else source.resolve().parent / WORK_DIR
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for notebook in notebooks:
        copy = target / notebook.name
        if not copy.exists():
            shutil.copyfile(notebook, copy)
            copied.append(notebook.name)
    return target, copied
