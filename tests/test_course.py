"""Grading with nbgrader's own cycle: the student edition it makes, then autograde, feedback and export.

nbgrader runs here as an instructor runs it (its command line, in a course directory that `labkit course`
lays out): `generate_assignment` makes the student edition, `autograde` runs each submitted notebook in a
fresh kernel (on a local cloud of its own) and scores its autograded test cells, `generate_feedback` writes
each student's HTML report and `export` the grades CSV
(https://nbgrader.readthedocs.io/en/stable/user_guide/what_is_nbgrader.html). Three students: one hands
in the instructor edition (full marks), one the untouched student edition (nothing, and nothing breaks),
one the instructor edition with a classic mistake in notebook 03 (five receives before the DLQ, not three).

The cycle takes minutes, so it is its own step: `make test-course` (CI runs it) grades every notebook of the
first two students, and the third hands in 01 and 03; run alone, without LABKIT_COURSE_NOTEBOOKS=all, it grades
notebooks 01 and 03 (a minute and a half).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.grading import default_rubric
from labkit.notebook import editions
from labkit.notebook.exercises import EXERCISES

pytest.importorskip("nbgrader", reason="nbgrader is the instructor extra: pip install -e '.[instructor]'")
pytestmark = pytest.mark.course

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SUBSET = ("01", "03")
# The third student's mistake is in 03; 01 shows that it costs nothing elsewhere.
MISTAKEN = ("01", "03")
MISTAKE = ('"maxReceiveCount": 3}', '"maxReceiveCount": 5}')


# Read at import: the autouse credentials fixture in tests/conftest.py removes LABKIT_* variables before each test.
WANTED = os.environ.get("LABKIT_COURSE_NOTEBOOKS", "")


def chosen() -> list[str]:
    """The notebook numbers this run grades."""
    wanted = WANTED
    if wanted == "all":
        return sorted(path.name[:2] for path in NOTEBOOKS.glob("*.ipynb"))
    return list(wanted.split(",")) if wanted else list(SUBSET)


def points_of(number: str) -> float:
    rubric = default_rubric()
    return sum(rubric.points_for(i) for e in EXERCISES.values() if e.notebook == number for i in e.ids)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A course whose three students' submissions have been autograded, given feedback and exported."""
    course = tmp_path_factory.mktemp("course")
    source = editions.write_course(course, NOTEBOOKS)
    for notebook in source.glob("*.ipynb"):
        if notebook.name[:2] not in chosen():
            notebook.unlink()
    editions.nbgrader(course, "generate_assignment", editions.ASSIGNMENT, "--force")
    release = course / "release" / editions.ASSIGNMENT
    for student, edition in (("alice", source), ("bob", release), ("carol", source)):
        folder = course / "submitted" / student / editions.ASSIGNMENT
        shutil.copytree(edition, folder)
        if student == "carol":
            for notebook in folder.glob("*.ipynb"):
                if notebook.name[:2] not in MISTAKEN:
                    notebook.unlink()
    queues = next((course / "submitted" / "carol" / editions.ASSIGNMENT).glob("03_*.ipynb"), None)
    if queues is not None:
        notebook = json.loads(queues.read_text(encoding="utf-8"))
        (cell,) = [
            c for c in notebook["cells"] if c["metadata"]["nbgrader"]["solution"] and MISTAKE[0] in "".join(c["source"])
        ]
        cell["source"] = "".join(cell["source"]).replace(*MISTAKE)
        queues.write_text(json.dumps(notebook), encoding="utf-8")
    editions.nbgrader(course, "autograde", editions.ASSIGNMENT)
    editions.nbgrader(course, "generate_feedback", editions.ASSIGNMENT)
    editions.nbgrader(course, "export")
    yield course


def grades(course: Path) -> dict[str, dict[str, str]]:
    with (course / "grades.csv").open(encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def scores(course: Path, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(editions.ASSIGNMENT, student)
        return {nb.name[:2]: (nb.score, nb.max_score) for nb in submission.notebooks}


def autograded(course: Path, student: str) -> list[tuple[str, dict[str, Any]]]:
    folder = course / "autograded" / student / editions.ASSIGNMENT
    return [(path.name, json.loads(path.read_text(encoding="utf-8"))) for path in sorted(folder.glob("*.ipynb"))]


@pytest.mark.slow
def test_the_instructor_edition_earns_full_marks(course: Path) -> None:
    expected = sum(points_of(n) for n in chosen())
    row = grades(course)["alice"]
    assert float(row["score"]) == float(row["max_score"]) == expected
    assert all(score == most for score, most in scores(course, "alice").values())


@pytest.mark.slow
def test_the_untouched_student_edition_earns_nothing_and_every_cell_runs(course: Path) -> None:
    assert float(grades(course)["bob"]["score"]) == 0
    assert all(score == 0 for score, _ in scores(course, "bob").values())
    for name, notebook in autograded(course, "bob"):
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            assert cell["execution_count"] is not None, f"{name}: a cell did not run"
            broken = [o for o in cell["outputs"] if o["output_type"] == "error" or o.get("name") == "stderr"]
            assert not broken, f"{name}: {''.join(cell['source'])[:80]!r} -> {broken}"
        checks = [c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        for cell in checks:
            (result,) = cell["outputs"]
            html = "".join(result["data"]["text/html"])
            assert "".join(result["data"]["text/plain"]) == "0" and "To do: fix what the ✗ lines say" in html


@pytest.mark.slow
def test_a_classic_mistake_costs_exactly_its_checks_points_and_the_feedback_says_why(course: Path) -> None:
    if "03" not in chosen():
        pytest.skip("notebook 03 is not graded in this run")
    alice, carol = scores(course, "alice"), scores(course, "carol")
    assert carol["03"] == (alice["03"][0] - default_rubric().points_for("queue.max_receive_count"), alice["03"][1])
    assert carol["01"] == alice["01"]
    (feedback,) = (course / "feedback" / "carol" / editions.ASSIGNMENT).glob("03_*.html")
    text = feedback.read_text(encoding="utf-8")
    assert "moves a message to the DLQ after 5 receives; the lab asks for 3" in text
