"""A student at JupyterLab in headless Chromium: open a notebook, run it from the menus, type into a cell, look.

Each step that fails leaves a screenshot in test-artifacts/browser/ and says what it expected.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

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
  // textContent, not innerText: JupyterLab leaves cells scrolled out of view unrendered, and their innerText is empty.
  const red = [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(o => {
      const source = o.closest('.jp-CodeCell')?.querySelector('.jp-InputArea')?.textContent ?? '';
      return `${o.textContent.trim()}\n(in the cell that begins: ${source.trim().slice(0, 120)})`;
    });
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
            printed = "\n---\n".join(red[-1500:] for red in state["red"])
            self.fail(what, "no error and nothing on stderr", f"{len(state['red'])} red output(s):\n{printed}")
        not_run = [prompt for prompt in state["prompts"] if not re.fullmatch(r"\[\d+\]:?", prompt)]
        if not_run:
            self.fail(what, "every code cell run", f"{len(not_run)} of {len(state['prompts'])} did not run")
