"""Notebook 07 runs, and every figure it prints agrees with the others and with the words around them.

Billed Duration is each invocation's Duration rounded up to the millisecond (plus the Init Duration where
AWS bills it), as the REPORT lines at https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
show; a run's Lambda bill is its requests and its billed GB-seconds at https://aws.amazon.com/lambda/pricing/.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from labkit.config import FUNCTION_MEMORY_MB
from labkit.experiments import costs

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_scale_out.ipynb"
PROGRESS = re.compile(r"^batch size (\d+): (\d+)/(\d+) orders, ([\d.]+) orders/s$")
RUN = re.compile(
    r"^batch size (\d+): (\d+) orders in ([\d.]+) s \(([\d.]+) orders/s\), (\d+) invocations, ([\d.]+) ms measured"
    r"(?: \+ ([\d.]+) ms init)?, (\d+) ms billed, Lambda bill \$([\d.]+)$"
)
VERDICT = re.compile(
    r"^batch size (\d+) against (\d+): the Lambda bill was (?:the same|(\d+)% (lower|higher)) "
    r"\((?:as many requests|(\d+) (fewer|more) requests), (?:as much billed time|(\d+) ms (less|more) billed time)\), "
    r"and the backlog drained (?:as fast \(([\d.]+) s each\)|in ([\d.]+) s against ([\d.]+) s \(([\d.]+)× the rate\))\.$"
)


def texts(cell: Any) -> list[str]:
    out = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            out.append(output["text"])
        elif "text/plain" in output.get("data", {}):
            out.append(output["data"]["text/plain"])
    return out


def table_rows(text: str) -> dict[int, dict[str, float]]:
    """Rows of a pandas DataFrame's text, indexed by batch size, across the blocks pandas wraps it into."""
    rows: dict[int, dict[str, float]] = {}
    columns: list[str] = []
    for line in text.splitlines():
        tokens = line.replace("\\", "").split()
        if not tokens or tokens == ["batch_size"]:
            continue
        if not tokens[0].isdigit():
            columns = tokens
            continue
        rows.setdefault(int(tokens[0]), {}).update(zip(columns, map(float, tokens[1:]), strict=True))
    return rows


@pytest.fixture(scope="module")
def executed() -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return notebook


def cell_output(notebook: nbformat.NotebookNode, source: str) -> str:
    """The text outputs of the cells whose source holds *source* (at least one), in order."""
    cells = [c for c in notebook.cells if c.cell_type == "code" and source in c.source]
    assert cells, f"no cell holds {source!r}"
    for cell in cells:
        stderr = [o for o in cell.outputs if o.get("name") == "stderr"]
        assert not stderr, f"stderr in the cell {source!r}: {stderr}"
    return "\n".join(text for cell in cells for text in texts(cell))


def assert_change(percent: str | None, word: str | None, before: float, after: float, words: tuple[str, str]) -> None:
    """The summary's "N% lower/higher" from *before* to *after*: the word by direction, N within a point.

    No percentage at all means the two are equal. *words* are (when after is less, when it is more).
    """
    if percent:
        assert word == (words[0] if after < before else words[1])
        assert abs(int(percent) - abs(after - before) / before * 100) <= 1
    else:
        assert before == after


def test_notebook_07_figures_agree(executed: nbformat.NotebookNode) -> None:
    progress = {int(m[1]): m for m in map(PROGRESS.match, cell_output(executed, "backlog.measure(").splitlines()) if m}
    summary = cell_output(executed, "notebook.batch_summary(runs)").splitlines()
    runs = {int(m[1]): m for m in map(RUN.match, summary) if m}
    table = table_rows(cell_output(executed, "backlog.table(runs)"))
    prices = costs.load_prices()

    assert set(progress) == set(runs) == set(table) == {1, 10}
    for size, run in runs.items():
        orders, seconds, rate, invocations = int(run[2]), float(run[3]), float(run[4]), int(run[5])
        duration, init, billed, bill = float(run[6]), float(run[7] or 0), int(run[8]), float(run[9])
        # The progress bar counted every order, at the processing rate the summary and the table give.
        assert (int(progress[size][2]), int(progress[size][3])) == (orders, orders) == (200, 200)
        # ... to the digit both show
        assert progress[size][4] == run[4]
        assert rate == pytest.approx(orders / seconds, rel=0.01, abs=0.1)
        assert table[size] == {
            "orders": orders,
            "seconds": seconds,
            "orders_per_s": rate,
            "invocations": invocations,
            "orders_per_invocation": pytest.approx(orders / invocations, abs=0.05),
            "duration_ms": duration,
            "init_ms": init,
            "billed_ms": billed,
        }
        assert invocations >= math.ceil(orders / size)  # a batch holds at most batch-size records
        # Billed time follows measured time: each invocation rounded up to the next millisecond.
        assert duration <= billed <= duration + init + invocations
        expected = prices["lambda_request"].cost(invocations) + prices["lambda_gb_second"].cost(
            billed / 1000 * FUNCTION_MEMORY_MB / 1024
        )
        assert bill == pytest.approx(expected, abs=1e-8)

    # The comparison is worded by the numbers.
    (verdict,) = [m for m in map(VERDICT.match, summary) if m]
    small, big = runs[1], runs[10]
    # The table prints rounded bills; the sentence's percentage comes from the unrounded ones.
    assert_change(verdict[3], verdict[4], float(small[9]), float(big[9]), ("lower", "higher"))
    requests = int(small[5]) - int(big[5])
    assert (int(verdict[5]), verdict[6]) == (abs(requests), "fewer" if requests > 0 else "more")
    billed = int(small[8]) - int(big[8])
    if billed:
        assert (int(verdict[7]), verdict[8]) == (abs(billed), "less" if billed > 0 else "more")
    else:
        assert verdict[7] is None
    if verdict[9] is not None:
        assert float(verdict[9]) == float(small[3]) == float(big[3])
    else:
        # the two drain times as the summary's lines print them, and the ratio of the two rates
        assert (verdict[10], verdict[11]) == (big[3], small[3])
        assert float(verdict[12]) == pytest.approx(float(big[4]) / float(small[4]), abs=0.06)

    # And the exercise's check agrees with the summary's counts, and scored its points.
    (check,) = [c for c in executed.cells if 'notebook.check(lab, "scale"' in c.source]
    (result,) = check.outputs
    assert result["data"]["text/plain"] == "3"
    assert f"in {int(big[5])} invocations against {int(small[5])} at batch size 1" in result["data"]["text/html"]
