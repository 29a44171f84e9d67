"""Grade a class: a roster CSV in, one gradebook CSV out (a column per step, like nbgrader's grades.csv).

A roster row names a `student` and where their pipeline is: a `profile` (their account, optional
`region`), or a `prefix` on a shared account or server (optional `endpoint_url`). A row that cannot be
graded gets zeros and an `error`; it never stops the rest of the class.
"""

from __future__ import annotations

import csv
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from labkit.config import BACKEND_AWS, BACKEND_ENDPOINT, ENV_ENDPOINT, Config
from labkit.errors import ConfigError, InputError, LabkitError
from labkit.grading.grader import RubricSource, grade, max_score
from labkit.grading.report import STEPS, Report, error_suite, format_points
from labkit.grading.rubric import load_rubric
from labkit.session import Clients

log = logging.getLogger(__name__)

GRADEBOOK_COLUMNS = ("student", *(f"step{s}" for s in STEPS), "score", "max_score", "failed_checks", "error")
ROSTER_COLUMNS = ("student", "profile", "region", "prefix", "endpoint_url")


@dataclass(frozen=True)
class RosterEntry:
    """One roster row."""

    student: str
    profile: str = ""
    region: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    line: int = 0


@dataclass(frozen=True)
class GradebookRow:
    """One student's grade, or why there is none."""

    student: str
    report: Report | None
    error: str = ""
    max_score: float = 0

    def junit_suite(self) -> ET.Element:
        """This student's checks as a JUnit <testsuite> named after the student."""
        if self.report is None:
            return error_suite(self.student, self.error)
        return self.report.junit_suite(self.student)

    def as_csv_row(self) -> dict[str, str]:
        """The row as the gradebook CSV holds it."""
        row = {"student": self.student, "error": self.error}
        if self.report is None:
            row.update({f"step{s}": "0" for s in STEPS})
            row.update(score="0", max_score=format_points(self.max_score), failed_checks="")
            return row
        for step, (got, _) in self.report.step_scores().items():
            row[f"step{step}"] = format_points(got)
        row.update(
            score=format_points(self.report.score),
            max_score=format_points(self.report.max_score),
            failed_checks=" ".join(self.report.failed),
        )
        return row


def read_roster(path: str | Path) -> list[RosterEntry]:
    """The rows of a roster CSV (header `student` plus `profile`/`region` or `prefix`/`endpoint_url`)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"Cannot read the roster {source}: {exc.strerror}.") from exc
    reader = csv.DictReader(text.splitlines())
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    if "student" not in header:
        raise InputError(
            f"The roster {source} needs a header row with a 'student' column and 'profile' or 'prefix' "
            f"(columns: {', '.join(ROSTER_COLUMNS)})."
        )
    entries = []
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        if not any(row.values()):
            continue
        entries.append(RosterEntry(line=number, **{k: row.get(k, "") for k in ROSTER_COLUMNS}))
    if not entries:
        raise InputError(f"The roster {source} lists no students.")
    return entries


def config_for(entry: RosterEntry, base: Config, allow_local: bool = True) -> Config:
    """The configuration that reaches one student's pipeline."""
    if not entry.student:
        raise ConfigError(f"Roster line {entry.line} has no student id.")
    changes: dict[str, object] = {"prefix": entry.prefix}
    if entry.region:
        changes["region"] = entry.region
    if entry.profile:
        changes.update(backend=BACKEND_AWS, profile=entry.profile, endpoint_url=None)
    elif entry.endpoint_url:
        changes.update(backend=BACKEND_ENDPOINT, endpoint_url=entry.endpoint_url)
    elif base.is_local and not allow_local:
        raise ConfigError(
            f"No account to grade {entry.student} in: give the row a profile or an endpoint_url, "
            f"or set {ENV_ENDPOINT} to the server the class shares."
        )
    return base.with_(**changes)


def grade_roster(
    roster: str | Path | Iterable[RosterEntry],
    base: Config | None = None,
    probe: bool = True,
    rubric: RubricSource = None,
    allow_local: bool = True,
    clients_for: Callable[[Config], Clients] = Clients,
    on_progress: Callable[[GradebookRow], None] | None = None,
) -> list[GradebookRow]:
    """Grade every student of a roster; a row that cannot be graded gets zeros and an error, never an exception.

    Args:
        roster: a roster CSV path, or entries already read.
        base: settings rows do not override (the shared endpoint, the region); from the environment if omitted.
        probe: run the probe for every student (False: read only).
        rubric: as for `grade()`.
        allow_local: grade rows without profile or endpoint in this process's local cloud.
        clients_for: makes the clients for a row's configuration.
        on_progress: called with each row once graded.
    Returns:
        One gradebook row per roster row, in roster order.
    """
    entries = read_roster(roster) if isinstance(roster, str | Path) else list(roster)
    base = base if base is not None else Config.from_env()
    rules = load_rubric(rubric)
    available = max_score(rules, probe)
    rows = []
    for entry in entries:
        try:
            config = config_for(entry, base, allow_local)
            row = GradebookRow(entry.student, grade(config, clients_for(config), probe=probe, rubric=rules))
        except (LabkitError, ClientError, BotoCoreError) as exc:
            log.warning("could not grade %s: %s", entry.student or f"line {entry.line}", exc)
            row = GradebookRow(entry.student, None, error=_one_line(exc), max_score=available)
        rows.append(row)
        if on_progress is not None:
            on_progress(row)
    return rows


def write_gradebook(rows: Iterable[GradebookRow], path: str | Path) -> Path:
    """Write the gradebook CSV: student, step1..step5, score, max_score, failed_checks, error."""
    target = Path(path)
    try:
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=GRADEBOOK_COLUMNS)
            writer.writeheader()
            writer.writerows(row.as_csv_row() for row in rows)
    except OSError as exc:
        raise InputError(f"Cannot write the gradebook {target}: {exc.strerror}.") from exc
    return target


def gradebook_table(rows: Iterable[GradebookRow]) -> str:
    """The gradebook as readable plain text."""
    data = [row.as_csv_row() for row in rows]
    shown = [c for c in GRADEBOOK_COLUMNS if c not in ("failed_checks", "error")]
    widths = {c: max([len(c), *(len(r[c]) for r in data)]) for c in shown}
    lines = ["  ".join(c.ljust(widths[c]) for c in shown)]
    for r in data:
        line = "  ".join(r[c].ljust(widths[c]) for c in shown)
        lines.append(line + (f"  error: {r['error']}" if r["error"] else ""))
    return "\n".join(line.rstrip() for line in lines)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name} was refused ({error.get('Code')}: {error.get('Message')})"
    return " ".join(str(exc).split()) or type(exc).__name__
