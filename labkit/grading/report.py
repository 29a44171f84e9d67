"""A grading report: one result per check, scores per step, and the forms instructors read it in."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from labkit.errors import InputError
from labkit.grading.registry import STEP_TITLES

STEPS = tuple(sorted(STEP_TITLES))


@dataclass(frozen=True)
class CheckResult:
    """The result of one check."""

    id: str
    step: int
    title: str
    points: float
    max_points: float
    passed: bool
    message: str
    warning: str | None = None


@dataclass(frozen=True)
class Report:
    """Every check's result for one student's pipeline."""

    checks: tuple[CheckResult, ...]
    probe: bool = False
    target: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    rubric: str = "default"

    @property
    def score(self) -> float:
        """Points earned."""
        return _number(sum(c.points for c in self.checks))

    @property
    def max_score(self) -> float:
        """Points available."""
        return _number(sum(c.max_points for c in self.checks))

    @property
    def failed(self) -> list[str]:
        """Ids of the checks that failed."""
        return [c.id for c in self.checks if not c.passed]

    @property
    def warnings(self) -> list[str]:
        """Warnings of all checks (they cost no points)."""
        return [c.warning for c in self.checks if c.warning]

    def result(self, check_id: str) -> CheckResult:
        """The result of one check by id."""
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(check_id)

    def step_scores(self) -> dict[int, tuple[float, float]]:
        """Points earned and available per step (1-5)."""
        return {
            step: (
                _number(sum(c.points for c in self.checks if c.step == step)),
                _number(sum(c.max_points for c in self.checks if c.step == step)),
            )
            for step in STEPS
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data: score, max_score, steps, checks, target."""
        return {
            "score": self.score,
            "max_score": self.max_score,
            "probe": self.probe,
            "rubric": self.rubric,
            "target": dict(self.target),
            "steps": {
                str(step): {"title": STEP_TITLES[step], "score": got, "max_score": out_of}
                for step, (got, out_of) in self.step_scores().items()
            },
            "checks": [asdict(c) for c in self.checks],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_table(self, width: int = 110) -> str:
        """The report as readable plain text: a block per step, one line per check, then the total."""
        where = ", ".join(f"{k} {v}" for k, v in self.target.items() if v)
        lines = [f"Orders Lab grade ({where})" if where else "Orders Lab grade"]
        id_width = max((len(c.id) for c in self.checks), default=10)
        for step, (got, out_of) in self.step_scores().items():
            checks = [c for c in self.checks if c.step == step]
            if not checks:
                continue
            lines.append("")
            lines.append(f"Step {step}: {STEP_TITLES[step]} ({format_points(got)}/{format_points(out_of)})")
            for c in checks:
                points = f"{format_points(c.points)}/{format_points(c.max_points)}"
                head = f"  {'PASS' if c.passed else 'FAIL'}  {c.id:<{id_width}}  {points:>5}  "
                text = c.message + (f" Warning: {c.warning}" if c.warning else "")
                wrapped = textwrap.wrap(text, width=max(40, width - len(head)), break_on_hyphens=False) or [""]
                lines.append(head + wrapped[0])
                lines.extend(" " * len(head) + more for more in wrapped[1:])
        lines.append("")
        percent = 100 * self.score / self.max_score if self.max_score else 0
        lines.append(f"Score: {format_points(self.score)}/{format_points(self.max_score)} ({percent:.0f}%)")
        if self.failed:
            lines.append(f"Failed: {', '.join(self.failed)}")
        if not self.probe:
            lines.append("Behaviour not checked: no probe order was sent (read-only grading).")
        return "\n".join(lines)

    def junit_suite(self, name: str = "labkit grade") -> ET.Element:
        """The report as a JUnit <testsuite>: one testcase per check, a <failure> for each failed one."""
        suite = ET.Element(
            "testsuite",
            name=name,
            tests=str(len(self.checks)),
            failures=str(len(self.failed)),
            errors="0",
            skipped="0",
            time="0",
        )
        properties = ET.SubElement(suite, "properties")
        for key, value in (("score", self.score), ("max_score", self.max_score), ("probe", self.probe)):
            ET.SubElement(properties, "property", name=key, value=str(value).lower() if key == "probe" else str(value))
        for c in self.checks:
            case = ET.SubElement(suite, "testcase", classname=f"step{c.step}", name=c.id, time="0")
            if not c.passed:
                failure = ET.SubElement(case, "failure", message=c.message, type="check failed")
                failure.text = f"{c.title}: {c.message}"
            out = ET.SubElement(case, "system-out")
            out.text = f"{format_points(c.points)}/{format_points(c.max_points)} points. {c.message}" + (
                f" Warning: {c.warning}" if c.warning else ""
            )
        return suite

    def to_junit(self, path: str | Path, name: str = "labkit grade") -> Path:
        """Write the report as JUnit XML for CI systems; returns the path."""
        return write_junit([self.junit_suite(name)], path)


def error_suite(name: str, message: str) -> ET.Element:
    """A JUnit <testsuite> for a student who could not be graded: one testcase with an <error>."""
    suite = ET.Element("testsuite", name=name, tests="1", failures="0", errors="1", skipped="0", time="0")
    case = ET.SubElement(suite, "testcase", classname="grading", name="grade", time="0")
    ET.SubElement(case, "error", message=message, type="not graded").text = message
    return suite


def write_junit(suites: list[ET.Element], path: str | Path) -> Path:
    """Write JUnit <testsuite> elements under one <testsuites> root."""
    root = ET.Element(
        "testsuites",
        name="labkit grade",
        tests=str(sum(int(s.get("tests", 0)) for s in suites)),
        failures=str(sum(int(s.get("failures", 0)) for s in suites)),
        errors=str(sum(int(s.get("errors", 0)) for s in suites)),
    )
    root.extend(suites)
    ET.indent(root)
    target = Path(path)
    try:
        ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise InputError(f"Cannot write the JUnit report {target}: {exc.strerror}.") from exc
    return target


def _number(value: float) -> float:
    # Rubric points may be fractions; whole totals stay ints so JSON and CSV show 30, not 30.0.
    return int(value) if float(value).is_integer() else round(value, 2)


def format_points(value: float) -> str:
    return str(_number(value))
