"""The student edition in the repository is what nbgrader makes of the instructor edition, now.

`nbgrader generate_assignment` replaces each solution with the stub `nbgrader_config.py` names, clears the
outputs and locks the cells the instructor edition locks
(https://nbgrader.readthedocs.io/en/stable/command_line_tools/nbgrader-generate-assignment.html).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.notebook import editions

pytest.importorskip("nbgrader", reason="nbgrader is the instructor extra: pip install -e '.[instructor]'")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


@pytest.mark.slow
def test_the_student_edition_in_the_repository_is_what_nbgrader_makes(tmp_path: Path) -> None:
    made = editions.generate_student_edition(NOTEBOOKS, tmp_path / "student")
    committed = sorted((ROOT / editions.STUDENT_DIR).glob("*.ipynb"))
    assert [p.name for p in made] == [p.name for p in committed]
    for new, old in zip(made, committed, strict=True):
        assert new.read_bytes() == old.read_bytes(), f"{old.name} is stale: run `make student` and commit it"
    # Solutions become nbgrader's stub; outputs are gone.
    queues = json.loads((tmp_path / "student" / "03_create_queues.ipynb").read_text(encoding="utf-8"))
    solutions = [c for c in queues["cells"] if c["metadata"]["nbgrader"]["solution"]]
    assert solutions and all("".join(c["source"]) == "# YOUR CODE HERE" for c in solutions)
    assert all(not c.get("outputs") for c in queues["cells"] if c["cell_type"] == "code")
