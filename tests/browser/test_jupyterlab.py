"""The lab as a student uses it: JupyterLab in headless Chromium, notebooks run from the Run menu.

Widgets and charts that pass under nbval can still fail to render in the browser; these tests click
through notebook 05's order form and check notebook 06's DLQ chart is drawn. Screenshots go to
test-artifacts/browser/ (and to docs/screenshots/ when LABKIT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from labkit.config import Config
from labkit.lab import Lab
from labkit.observe.widgets import FORM_CLASS, JOURNEY_CLASS
from labkit.session import Clients

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Read at import: the autouse credentials fixture removes LABKIT_* variables before each test.
UPDATE_SCREENSHOTS = os.environ.get("LABKIT_UPDATE_SCREENSHOTS", "") == "1"

VIEWPORT = {"width": 1280, "height": 800}
LOAD_TIMEOUT_MS = 60_000
# Notebook 06 waits for three failed receives 6 s apart, then fixes and redrives the order.
RUN_ALL_TIMEOUT_MS = 150_000
JOURNEY_TIMEOUT_MS = 60_000
# Widgets and images render right after their cell ran; this is only slack for a slow machine.
WIDGET_TIMEOUT_MS = 15_000
# What the student types: every field differs from the form's defaults (the seed's sample order).
ORDER = {"userId": "U456", "item": "Headphones", "quantity": "2", "status": "paid"}
FINAL_LINE = re.compile(r"^(stored|DLQ|pending|error): .*$", re.MULTILINE)

# Null while cells run or wait to run; then the prompts and any red (stderr or error) output of the visible notebook.
# Run All stops at a cell that raises, leaving the cells after it unrun: a red output ends the wait too.
RUN_STATE_JS = """
() => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(p => p.getClientRects().length > 0);
  if (!panel) return null;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  if (!indicator || indicator.dataset.status !== 'idle') return null;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea .jp-InputPrompt')]
    .map(p => p.textContent.trim());
  const red = [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(o => o.innerText.trim());
  if (prompts.some(t => t.includes('*'))) return null;
  if (!red.length && !prompts.every(t => /\\[\\d+\\]/.test(t))) return null;
  return {prompts, red};
}
"""
# After Edit > Clear Outputs of All Cells: no outputs and no execution counts left from the saved notebook.
CLEARED_JS = """
() => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(p => p.getClientRects().length > 0);
  return !!panel && !panel.querySelector('.jp-OutputArea-output')
    && [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].every(p => !/\\d/.test(p.textContent));
}
"""

# Every image in an output of a code cell whose source names the DLQ, with whether the browser decoded it.
DLQ_CHARTS_JS = """
() => [...document.querySelectorAll('.jp-CodeCell')]
  .filter(cell => cell.getClientRects().length > 0)
  .filter(cell => /DLQ/.test(cell.querySelector('.jp-InputArea')?.innerText ?? ''))
  .flatMap(cell => [...cell.querySelectorAll('.jp-OutputArea-output img')])
  .map(img => ({loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth, height: img.naturalHeight}))
"""


# JupyterLab renders a markdown cell when it scrolls into view: true once every one in view has rendered.
IN_VIEW_RENDERED_JS = """
() => [...document.querySelectorAll('.jp-MarkdownCell')]
  .filter(cell => { const r = cell.getBoundingClientRect(); return r.height > 0 && r.bottom > 0 && r.top < innerHeight; })
  .every(cell => (cell.querySelector('.jp-RenderedMarkdown')?.childElementCount ?? 0) > 0)
"""


def find_notebook(folder: Path, prefix: str) -> str:
    """The one notebook in *folder* whose name starts with *prefix* (e.g. "05_")."""
    names = sorted(path.name for path in folder.glob(f"{prefix}*.ipynb"))
    if len(names) != 1:
        pytest.fail(f"Expected one notebook {prefix}*.ipynb in notebooks/, found {names or 'none'}", pytrace=False)
    return names[0]


class Student:
    """Drives one JupyterLab page step by step; a step that fails leaves a screenshot and says what was expected."""

    def __init__(self, page: Any, server: Any, artifacts: Path, name: str) -> None:
        self.page = page
        self.server = server
        self.artifacts = artifacts
        self.name = name
        self.console_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def screenshot(self, label: str) -> Path:
        """Save the whole window as test-artifacts/browser/<label>.png."""
        path = self.artifacts / f"{label}.png"
        self.page.screenshot(path=str(path))
        return path

    def show(self, cell: Any, label: str) -> Path:
        """Scroll *cell* to the middle of the notebook, let the cells around it render, and take a screenshot."""
        with self.step(f"show {label}", "the cells in view rendered"):
            cell.evaluate("element => element.scrollIntoView({block: 'center'})")
            self.page.wait_for_function(IN_VIEW_RENDERED_JS, timeout=10_000, polling="raf")
        return self.screenshot(label)

    def fail(self, what: str, expected: str, detail: str) -> NoReturn:
        """Fail the test naming the step, what was expected and what happened, with a screenshot of the page."""
        shot = self.screenshot(f"{self.name}-failed")
        errors = "\n    ".join(self.console_errors[-5:]) or "none"
        message = (
            f"Step '{what}' failed: expected {expected}.\n"
            f"  {detail}\n"
            f"  last screenshot: {shot}\n"
            f"  JupyterLab log: {self.server.log}\n"
            f"  browser console errors: {errors}"
        )
        # `from None`: a step that failed inside Playwright reports this message, not Playwright's traceback.
        raise pytest.fail.Exception(message, pytrace=False) from None

    @contextlib.contextmanager
    def step(self, what: str, expected: str) -> Iterator[None]:
        """Run one step; a Playwright timeout or error in it fails the test through `fail`."""
        from playwright.sync_api import Error as PlaywrightError

        failure: PlaywrightError | None = None
        try:
            yield
        except PlaywrightError as exc:
            failure = exc
        if failure is not None:
            lines = str(failure).strip().splitlines()
            self.fail(what, expected, lines[0] if lines else type(failure).__name__)

    def open_notebook(self, notebook: str) -> None:
        """Open *notebook* in a workspace of its own and wait until its kernel is idle."""
        with self.step(f"open {notebook}", "the notebook open with its kernel idle"):
            self.page.goto(self.server.lab_url(notebook, workspace=self.name), timeout=LOAD_TIMEOUT_MS)
            self.page.locator(".jp-NotebookPanel").first.wait_for(timeout=LOAD_TIMEOUT_MS)
            status = self.page.locator("#jp-main-statusbar")
            status.get_by_text(re.compile(r"\|\s*Idle")).wait_for(timeout=LOAD_TIMEOUT_MS)

    def menu(self, menu: str, item: str) -> None:
        """Click *item* in the menu bar's *menu*, as a student does."""
        with self.step(f"{menu} > {item}", f"the {menu} menu with its {item} item"):
            self.page.get_by_role("menuitem", name=menu, exact=True).click()
            self.page.get_by_role("menuitem", name=item, exact=True).click()

    def run_all(self, notebook: str) -> None:
        """Clear the saved outputs, then Run > Run All Cells; wait until every code cell ran and the kernel is idle."""
        # Without clearing, the outputs saved in the notebook (a chart among them) would pass for fresh ones.
        self.menu("Edit", "Clear Outputs of All Cells")
        with self.step(f"clear the outputs of {notebook}", "no output and no execution count left"):
            self.page.wait_for_function(CLEARED_JS, timeout=10_000)
        self.menu("Run", "Run All Cells")
        with self.step(f"run every cell of {notebook}", "all code cells to finish and the kernel to be idle"):
            state = self.page.wait_for_function(RUN_STATE_JS, timeout=RUN_ALL_TIMEOUT_MS, polling=250).json_value()
        what = f"run every cell of {notebook}"
        if state["red"]:
            self.fail(what, "no error and nothing on stderr", f"a cell printed:\n{state['red'][0][-2000:]}")
        not_run = [prompt for prompt in state["prompts"] if not re.fullmatch(r"\[\d+\]:?", prompt)]
        if not_run:
            self.fail(what, "every code cell run", f"{len(not_run)} of {len(state['prompts'])} did not run")


@pytest.fixture
def student(request: pytest.FixtureRequest, browser: Any, jupyter: Any, artifacts: Path) -> Iterator[Student]:
    """A fresh browser context (no cookies, no stored layout) on the running JupyterLab."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        yield Student(context.new_page(), jupyter, artifacts, name=request.node.name.removeprefix("test_"))
    finally:
        context.close()


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
