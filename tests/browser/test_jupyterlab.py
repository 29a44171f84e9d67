"""The lab as a student uses it: JupyterLab in headless Chromium, notebooks run from the Run menu.

Widgets and charts that pass under nbval can still fail to render in the browser; these tests click
through notebook 05's order form and check notebook 06's DLQ chart is drawn. Screenshots go to
test-artifacts/browser/ (and to docs/screenshots/ when LABKIT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from labkit.config import Config
from labkit.lab import Lab
from labkit.observe.widgets import FORM_CLASS, JOURNEY_CLASS
from labkit.session import Clients
from student import DLQ_CHARTS_JS, FINAL_LINE, JOURNEY_TIMEOUT_MS, ORDER, WIDGET_TIMEOUT_MS, Student, find_notebook

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Read at import: the autouse credentials fixture removes LABKIT_* variables before each test.
UPDATE_SCREENSHOTS = os.environ.get("LABKIT_UPDATE_SCREENSHOTS", "") == "1"


def publish_screenshot(source: Path, name: str) -> None:
    """Copy a screenshot to docs/screenshots (the README shows them) when asked to refresh them."""
    if UPDATE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, SCREENSHOTS / name)


def get_order(endpoint: str, order_id: str) -> dict[str, Any] | None:
    """Read an order from the table on the local cloud the notebooks' kernels use."""
    config = Config.from_env({"AWS_ENDPOINT_URL": endpoint})
    with Lab(config, Clients(config)) as lab:
        return lab.get_order(order_id)


def test_order_form_publishes_and_reports_stored(student: Student, cloud_endpoint: str) -> None:
    # GIVEN notebook 05 open in JupyterLab and run from the Run menu
    notebook = find_notebook(student.server.root, "05_")
    student.open_notebook(notebook)
    student.run_all(notebook)
    form = student.page.locator(f".{FORM_CLASS}")
    with student.step("find the order form", f"the widget form (.{FORM_CLASS}) rendered with a Publish button"):
        form.get_by_role("button", name="Publish").wait_for(timeout=WIDGET_TIMEOUT_MS)

    # WHEN the student fills in the form by its labels and presses Publish
    for label, value in ORDER.items():
        with student.step(f"type {value!r} into {label}", f"a field labelled {label!r} in the form"):
            field = form.get_by_label(label, exact=True)
            field.fill(value, timeout=WIDGET_TIMEOUT_MS)
            # Leaving the field commits it, as a student tabbing through does (IntText syncs on change).
            field.press("Tab")
    with student.step("press Publish", "an enabled Publish button"):
        form.get_by_role("button", name="Publish").click(timeout=WIDGET_TIMEOUT_MS)

    # THEN the form's journey ends with `stored: <orderId>`
    journey = form.locator(f".{JOURNEY_CLASS}")
    with student.step("wait for the journey", "a final line 'stored: <orderId>' under the form"):
        journey.get_by_text(FINAL_LINE).wait_for(timeout=JOURNEY_TIMEOUT_MS)
    shot = student.show(student.page.locator(".jp-CodeCell", has=form), "lab-05-order-form")
    text = journey.inner_text()
    stored = re.search(r"^stored: (\S+)$", text, re.MULTILINE)
    if not stored:
        student.fail("wait for the journey", "a final line 'stored: <orderId>'", f"the form shows:\n{text}")

    # AND the table holds the order with what the student typed
    item = get_order(cloud_endpoint, stored.group(1))
    typed = None
    if item is not None:
        typed = {
            "userId": item.get("userId"),
            "item": item.get("itemName"),
            "quantity": str(item.get("quantity")),
            "status": item.get("status"),
        }
    if typed != ORDER:
        student.fail(
            "read the order back from the table",
            f"order {stored.group(1)} stored with what was typed, {ORDER}",
            f"the table holds {item}",
        )
    publish_screenshot(shot, "lab-05-order-form.png")


def test_dlq_notebook_draws_its_chart(student: Student) -> None:
    # GIVEN notebook 06 open in JupyterLab
    notebook = find_notebook(student.server.root, "06_")
    student.open_notebook(notebook)

    # WHEN every cell runs from the Run menu (a bad order is retried, dead-lettered, fixed and redriven)
    student.run_all(notebook)

    # THEN the cell that charts the queue and the DLQ shows a picture the browser decoded
    with student.step("find the DLQ chart", "a decoded image under the code cell that charts the DLQ"):
        # JupyterLab renders only the cells near the view: walk up the notebook until the chart is drawn.
        charts = student.page.wait_for_function(
            f"""() => {{
                const found = ({DLQ_CHARTS_JS})();
                if (found.length && found.every(c => c.loaded)) return found;
                const panel = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
                if (panel) panel.scrollTop = panel.scrollTop > 0 ? panel.scrollTop - panel.clientHeight / 2 : panel.scrollHeight;
                return null;
            }}""",
            timeout=WIDGET_TIMEOUT_MS,
            polling=300,
        ).json_value()
    chart_cell = student.page.locator(".jp-CodeCell", has_text="DLQ").filter(has=student.page.locator("img")).first
    shot = student.show(chart_cell, "lab-06-dlq-chart")
    if not all(c["width"] >= 200 and c["height"] >= 100 for c in charts):
        student.fail("find the DLQ chart", "a chart at least 200x100 pixels", f"images {charts}")
    publish_screenshot(shot, "lab-06-dlq-chart.png")


def test_saved_widgets_show_their_text_when_reopened(student: Student) -> None:
    # GIVEN notebook 05 as saved, with the order form's output from its last run
    notebook = find_notebook(student.server.root, "05_")

    # WHEN a student opens it without running anything and scrolls through it
    student.open_notebook(notebook)
    fallback = "Order form (userId, item, quantity, status, Publish): run this cell to use it."
    with student.step("scroll to the order form's saved output", f"the text {fallback!r}"):
        seen = student.page.wait_for_function(
            """(wanted) => {
                const panel = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer')
                    || document.querySelector('.jp-NotebookPanel .jp-Notebook');
                const text = document.querySelector('.jp-NotebookPanel').innerText;
                if (text.includes(wanted)) return text;
                panel.scrollTop += panel.clientHeight / 2;
                return null;
            }""",
            arg=fallback,
            timeout=WIDGET_TIMEOUT_MS,
            polling=300,
        ).json_value()

    # THEN the saved widget reads as that sentence, never as the widget's Python repr
    if re.search(r"\b(VBox|HBox|Box)\(", seen):
        student.fail("read the saved outputs", "no widget shown as VBox(...)", seen[:2000])
    student.screenshot("lab-05-reopened")
