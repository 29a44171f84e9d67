"""A student at the student edition: notebook 01's exercise done wrong once, then right, in JupyterLab.

The student edition is what nbgrader made (`student/`): the exercise cell holds `# YOUR CODE HERE`. Run
as it is, the check cell scores 0 of 5 and says what to do; with a Number key it scores 2 (the table
exists, its key schema is wrong) and names the fix; after the fix, 5 of 5. Screenshots of the three
states go to test-artifacts/browser/ (docs/screenshots/ with LABKIT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from student import Student, find_notebook

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
# The `jupyter` fixture serves a copy of this folder.
EDITION = ROOT / "student"
SCREENSHOTS = ROOT / "docs" / "screenshots"
UPDATE_SCREENSHOTS = os.environ.get("LABKIT_UPDATE_SCREENSHOTS", "") == "1"
CHECK_TIMEOUT_MS = 60_000

WRONG = (
    'dynamodb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}], '
    'AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "N"}], BillingMode="PAY_PER_REQUEST")\n'
    'dynamodb.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1})'
)
# A key cannot be changed: the fix is a new table.
RIGHT = (
    "dynamodb.delete_table(TableName=TABLE)\n"
    'dynamodb.get_waiter("table_not_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1})\n'
    'dynamodb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}], '
    'AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST", '
    "Tags=TAG_LIST)\n"
    'dynamodb.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1})'
)


def cell_with(student: Student, text: str) -> object:
    """The code cell whose source holds *text*."""
    return student.page.locator(".jp-CodeCell").filter(has_text=text).first


def run_cell(student: Student, cell: object, what: str) -> None:
    """Select *cell* and run it with Shift+Enter, as a student does."""
    with student.step(f"run {what}", "the cell selected and run"):
        cell.locator(".jp-InputArea-editor").click()  # type: ignore[attr-defined]
        student.page.keyboard.press("Shift+Enter")


def check_says(student: Student, points: int) -> str:
    """Run the check cell and wait for its heading; returns what it shows."""
    check = cell_with(student, 'notebook.check(lab, "table")')
    run_cell(student, check, "the check cell")
    heading = f"({points} of 5 points)"
    with student.step("read the check", f"the check to say {heading}"):
        output = check.locator(".jp-OutputArea-output")  # type: ignore[attr-defined]
        output.get_by_text(heading, exact=False).wait_for(timeout=CHECK_TIMEOUT_MS)
        return str(output.inner_text())


def type_into_exercise(student: Student, code: str) -> None:
    """Replace what the exercise cell (the code cell after the one making the client) holds with *code*; run it."""
    with student.step("find the exercise", "the code cell after the DynamoDB client's"):
        cells = student.page.locator(".jp-CodeCell")
        sources = [cells.nth(i).locator(".jp-InputArea").inner_text() for i in range(cells.count())]
        (index,) = [i for i, text in enumerate(sources) if 'dynamodb = lab.clients("dynamodb")' in text]
        exercise = cells.nth(index + 1)
    with student.step("type into the exercise", "the exercise cell's editor"):
        editor = exercise.locator(".cm-content")  # type: ignore[attr-defined]
        editor.click()
        student.page.keyboard.press("Control+a")
        student.page.keyboard.insert_text(code)
    run_cell(student, exercise, "the exercise")


def test_the_table_exercise_wrong_once_and_right_once(student: Student) -> None:
    # GIVEN the student edition's notebook 01, run up to the check as it came (nothing written yet)
    notebook = find_notebook(student.server.root, "01_")
    student.open_notebook(notebook)
    check = cell_with(student, 'notebook.check(lab, "table")')
    with student.step("select the check cell", "the check cell"):
        check.locator(".jp-InputArea-editor").click()  # type: ignore[attr-defined]
    student.menu("Run", "Run All Above Selected Cell")
    unsolved = check_says(student, 0)
    assert "table.exists (0/2)" in unsolved and "To do:" in unsolved and "create_table" in unsolved
    shots = [student.show(check, "exercise-01-unsolved")]

    # WHEN the student writes a Number key, runs it, then runs the check
    type_into_exercise(student, WRONG)
    wrong = check_says(student, 2)

    # THEN the check passes the table and fails the key, naming the fix
    assert "✓ table.exists (2/2)" in wrong and "✗ table.key_schema (0/3)" in wrong
    assert re.search(r"partition key orderId \(Number\)", wrong) and "delete the table and create it again" in wrong
    shots.append(student.show(check, "exercise-01-wrong"))

    # WHEN the student deletes it and creates it again with a String key
    type_into_exercise(student, RIGHT)
    right = check_says(student, 5)

    # THEN every check passes, and nothing went to stderr on the way
    assert "✗" not in right and "To do" not in right
    shots.append(student.show(check, "exercise-01-right"))
    if UPDATE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copyfile(shot, SCREENSHOTS / shot.name)
