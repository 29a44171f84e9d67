"""The registry of grading checks: what a check returns and how checks are declared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from labkit.grading.facts import Facts
from labkit.grading.rubric import Rubric

STEP_TITLES = {
    1: "DynamoDB table",
    2: "SNS topic",
    3: "SQS queues and subscription",
    4: "Lambda function, role and trigger",
    5: "Test: orders flow through",
}


@dataclass(frozen=True)
class Outcome:
    """What one check found: passed or not, a message, and an optional warning that costs no points."""

    passed: bool
    message: str
    warning: str | None = None


def ok(message: str, warning: str | None = None) -> Outcome:
    """A passed check."""
    return Outcome(True, message, warning)


def fail(message: str, warning: str | None = None) -> Outcome:
    """A failed check."""
    return Outcome(False, message, warning)


CheckFunction = Callable[[Facts, Rubric], Outcome]


@dataclass(frozen=True)
class Check:
    """One requirement: a stable id, its step, a title and the function that checks it."""

    id: str
    step: int
    title: str
    run: CheckFunction
    probe: bool = False


CHECKS: list[Check] = []


def check(check_id: str, step: int, title: str, probe: bool = False) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under a stable id."""

    def register(func: CheckFunction) -> CheckFunction:
        if any(c.id == check_id for c in CHECKS):
            raise ValueError(f"check id {check_id} registered twice")
        CHECKS.append(Check(check_id, step, title, func, probe))
        return func

    return register
