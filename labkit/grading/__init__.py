"""Instructor grading: deep checks of what a student built and how it behaves, and a gradebook.

`grade()` (also `lab.grade()` and `labkit grade`) scores one check per requirement, grouped by the
assignment's steps 1-5: each resource read back, the wiring as a graph (what delivers to what, around
the dead-letter queue), and by default a probe order through the pipeline whose failure names the
function's real error from its log group (`probe=False` / `--no-probe` only reads). `grade_roster()`
grades a class and `write_gradebook()` writes one CSV row per student.

May import: the core alone, and read-only boto3 calls (the probe's publish and its clean-up aside).
Never `labkit.resources` or the local cloud: it grades what a student clicked in the console as
well as what labkit built, and the same way on every backend.
"""

from labkit.grading.grader import grade, max_score, run_check
from labkit.grading.registry import CHECKS, STEP_TITLES, Check, Outcome
from labkit.grading.report import CheckResult, Report, write_junit
from labkit.grading.roster import (
    GRADEBOOK_COLUMNS,
    GradebookRow,
    RosterEntry,
    grade_roster,
    gradebook_table,
    read_roster,
    write_gradebook,
)
from labkit.grading.rubric import Rubric, default_rubric, load_rubric

__all__ = [
    "CHECKS",
    "GRADEBOOK_COLUMNS",
    "STEP_TITLES",
    "Check",
    "CheckResult",
    "GradebookRow",
    "Outcome",
    "Report",
    "RosterEntry",
    "Rubric",
    "default_rubric",
    "grade",
    "grade_roster",
    "gradebook_table",
    "load_rubric",
    "max_score",
    "read_roster",
    "run_check",
    "write_gradebook",
    "write_junit",
]
