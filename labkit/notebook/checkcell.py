"""The check cell of an exercise: the grader's checks of its step, shown as a short pass/fail list, and its score.

`check(lab, "queues")` runs the exercise's checks (`labkit.notebook.exercises`): the grader's, by id,
through `lab.grade(only=...)`, and for a run (notebooks 06 and 07) its own. The cell shows one line
per check, the points it earned, and for a failure what was found and what to do, then where to
start. Its plain-text form is the score alone: nbgrader's autograder reads a test cell's result as
the points it earned (partial credit), so a mistake costs exactly the points of the check it fails.
A step built by `catch_up(include_this=True)` scores 0, and the cell says so.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkit.errors import ConfigError
from labkit.grading import CheckResult, default_rubric
from labkit.lab import Lab
from labkit.notebook.catchup import caught_up
from labkit.notebook.exercises import EXERCISES, Exercise
from labkit.notebook.runchecks import OWN_CHECKS, STARTED_AT

PASS, FAIL = "✓", "✗"


@dataclass(frozen=True)
class CheckCell:
    """What an exercise's check found: one result per check, and whether the step was caught up instead."""

    exercise: Exercise
    results: tuple[CheckResult, ...]
    caught_up: bool = False

    @property
    def max_score(self) -> float:
        """The exercise's points."""
        return sum(r.max_points for r in self.results)

    @property
    def score(self) -> float:
        """The points earned: 0 for a step built by catch_up."""
        return 0.0 if self.caught_up else sum(r.points for r in self.results)

    @property
    def passed(self) -> bool:
        """True when every check passed and the student did the step."""
        return not self.caught_up and all(r.passed for r in self.results)

    def lines(self) -> list[str]:
        """The list as text: a heading, one line per check, then what to do."""
        head = f"Check: {self.exercise.title} ({_points(self.score)} of {_points(self.max_score)} points)"
        rows = [
            f"{PASS if r.passed else FAIL} {r.id} ({_points(r.points)}/{_points(r.max_points)}): {r.message}"
            for r in self.results
        ]
        return [head, *rows, *self._advice()]

    def _advice(self) -> list[str]:
        step = self.exercise.step
        if self.caught_up:
            return [
                f"{FAIL} Step {step} was built by notebook.catch_up(lab, step={step}, include_this=True), not by you: "
                "this exercise scores 0. Delete what it built and do the exercise to earn its points."
            ]
        if self.passed:
            return []
        return [
            f"To do: fix what the ✗ lines say, then run this cell again. The calls: {self.exercise.hint}. "
            f"Stuck? notebook.catch_up(lab, step={step}, include_this=True) builds it for you (no points)."
        ]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        # text/plain is the score alone: what nbgrader's autograder reads as the cell's partial credit.
        return {"text/plain": _points(self.score), "text/html": self._html()}

    def _html(self) -> str:
        colour = "#1a7f37" if self.passed else "#b00020"
        head, *rest = self.lines()
        items = "".join(
            f'<li style="color:{"#1a7f37" if line.startswith(PASS) else "#b00020" if line.startswith(FAIL) else "inherit"}">'
            f"{html.escape(line)}</li>"
            for line in rest
        )
        return (
            f'<div class="labkit-check"><b style="color:{colour}">{html.escape(head)}</b>'
            f'<ul style="list-style:none;padding-left:0.5em;margin:0.3em 0">{items}</ul></div>'
        )


def check(lab: Lab, exercise: str, **context: Any) -> CheckCell:
    """Run the checks of *exercise* ("table", "queues", ...) and show them; *context* is what a run's own check needs."""
    found = EXERCISES.get(exercise)
    if found is None:
        raise ConfigError(f"No exercise {exercise!r}: the exercises are {', '.join(EXERCISES)}.")
    results: list[CheckResult] = []
    if found.checks:
        results.extend(lab.grade(only=found.checks, since=lab.session.get(STARTED_AT)).checks)
    rubric = default_rubric()
    for check_id in found.own:
        own: Callable[..., tuple[bool, str]] = OWN_CHECKS[check_id]
        passed, message = own(lab, **context)
        worth = rubric.points_for(check_id)
        results.append(CheckResult(check_id, found.step, found.title, worth if passed else 0, worth, passed, message))
    return CheckCell(found, tuple(results), caught_up(lab, found.step))


def _points(value: float) -> str:
    return f"{value:g}"
