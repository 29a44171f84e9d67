"""Every way an invocation can fail shows its AWS error type and message wherever the student looks.

The kinds and their types are Lambda's: an exception the handler raised (its own type), an error at
import (`Runtime.ImportModuleError`, `Runtime.UserCodeSyntaxError`), a timeout (`Task timed out after
N seconds`), a process that exited or ran out of memory (`Runtime.ExitError`, `Runtime.OutOfMemory`), and
a reply JSON cannot encode (`Runtime.MarshalError`):
https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html,
https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors and
https://repost.aws/knowledge-center/lambda-runtime-error. The surfaces: the journey (each receive, then
the DLQ with the reason), the order form, notebook 05's and 06's check cells, `labkit status` and
`labkit logs --order`. Each kind runs in a pipeline of its own (its own prefix) on one served local
cloud, all at once, so the retries of the seven overlap in time as a class's would.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit import notebook
from labkit.cli import main
from labkit.errors import ResourceError
from labkit.lab import Lab
from labkit.observe.journey import Journey
from labkit.observe.widgets import OrderForm

GOOD = (Path(__file__).resolve().parents[1] / "lambda" / "code.py").read_text(encoding="utf-8")
HANDLER_DEF = "def lambda_handler(event: Any, context: Any) -> dict[str, list[dict[str, Any]]]:\n"
assert HANDLER_DEF in GOOD


def _first_line(statement: str) -> str:
    """The good handler with *statement* as the first line of lambda_handler."""
    return GOOD.replace(HANDLER_DEF, f"{HANDLER_DEF}    {statement}\n", 1)


# kind: (the handler deployed, what every surface must show)
KINDS = {
    "exception": (_first_line('raise KeyError("orderIdd")'), "KeyError: 'orderIdd'"),
    "import": (
        "import pandas\n" + GOOD,
        "Runtime.ImportModuleError: Unable to import module 'code': No module named 'pandas'",
    ),
    "syntax": (GOOD.replace("def read_order(", "def read_order(:", 1), "Runtime.UserCodeSyntaxError"),
    "timeout": (_first_line("while True: pass"), "Task timed out after 1.00 seconds"),
    "exit": (_first_line("import sys; sys.exit(1)"), "Runtime.ExitError"),
    "memory": (_first_line("hog = bytearray(400 * 1024 * 1024)"), "Runtime.OutOfMemory"),
    "marshal": (_first_line("return {1, 2}"), "Runtime.MarshalError"),
}
# What each kind's advice starts with, so a student reads what to do, not only what happened.
ADVICE = {
    "exception": "The handler raised it",
    "import": "Lambda could not import the handler's module",
    "syntax": "code.py does not compile",
    "timeout": "The handler ran for the function's whole Timeout",
    "exit": "The handler ended its own process",
    "memory": "The handler used more memory",
    "marshal": "The handler returned a value JSON cannot encode",
}


@dataclass
class Run:
    lab: Lab
    form: OrderForm
    trip: Journey


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, Run]]:
    """Each kind's order, published through the order form to a pipeline whose handler fails that way."""
    from labkit.config import Config
    from labkit.localcloud import LocalCloud

    server = LocalCloud.server(Config.from_env({}, function_timeout=1, visibility_timeout=3))
    try:

        def run(kind: str) -> Run:
            config = server.config.with_(backend="endpoint", endpoint_url=server.endpoint_url, prefix=kind)
            lab = Lab(config)
            lab.up()
            lab.ensure_function(source=KINDS[kind][0])
            form = OrderForm(lab, timeout=60)
            trip = form.publish()
            assert trip is not None
            return Run(lab, form, trip)

        with ThreadPoolExecutor(len(KINDS)) as pool:
            yield dict(zip(KINDS, pool.map(run, KINDS), strict=True))
    finally:
        server.stop()


KIND = pytest.mark.parametrize("kind", list(KINDS))


@pytest.fixture
def served(runs: dict[str, Run], monkeypatch: pytest.MonkeyPatch) -> dict[str, Run]:
    """The runs, with the environment a student's terminal has for `labkit` commands on one of them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", next(iter(runs.values())).lab.config.endpoint_url or "")
    return runs


@pytest.mark.slow
@KIND
def test_the_journey_shows_the_error_at_each_receive_and_in_the_dlq(runs: dict[str, Run], kind: str) -> None:
    trip, shown = runs[kind].trip, KINDS[kind][1]
    assert trip.outcome == "dlq", trip
    assert trip.receive_counts == (1, 2, 3)
    receives = [line for line in trip.lines() if line.startswith("receive ")]
    assert len(receives) == 3 and all(shown in line for line in receives), receives
    assert trip.final_line.startswith(f"DLQ: {trip.order_id} (") and shown in trip.final_line


@pytest.mark.slow
@KIND
def test_the_order_form_shows_the_error_and_what_to_do(runs: dict[str, Run], kind: str) -> None:
    shown = html.unescape(runs[kind].form.journey.value)
    assert KINDS[kind][1] in shown
    if kind != "exception":  # the handler's own exception: its traceback says where, as Lambda's log does
        assert ADVICE[kind] in shown


@pytest.mark.slow
@KIND
def test_the_flow_check_names_the_error_and_the_fix_without_labkits_frames(runs: dict[str, Run], kind: str) -> None:
    run = runs[kind]
    order = run.lab.get_order(run.trip.order_id or "")
    assert order is None
    with pytest.raises(ResourceError) as raised:
        notebook.check_order_stored(run.lab, {"orderId": run.trip.order_id}, run.trip)
    message = str(raised.value)
    assert KINDS[kind][1] in message and ADVICE[kind] in message
    # In a notebook the student sees the message, not the frames of labkit that raised it.
    (shown,) = raised.value._render_traceback_()
    assert message in shown and "behaviour.py" not in shown and "Traceback" not in shown.split("\n")[0]


@pytest.mark.slow
@KIND
def test_the_dlq_check_counts_three_receives_and_names_the_error(runs: dict[str, Run], kind: str) -> None:
    note = notebook.check_dead_lettered(runs[kind].lab, runs[kind].trip)
    assert f"failed 3 receives: {KINDS[kind][1]}" in note


@pytest.mark.slow
@KIND
def test_labkit_status_names_the_last_failure(
    served: dict[str, Run], kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABKIT_PREFIX", kind)
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("function ")]
    assert "3 failed invocation(s) in the last 1h" in line and KINDS[kind][1] in line
    assert ADVICE[kind] in out


@pytest.mark.slow
@KIND
def test_labkit_logs_for_the_order_shows_its_three_invocations_and_no_other(
    served: dict[str, Run], kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABKIT_PREFIX", kind)
    capsys.readouterr()
    assert main(["logs", "--order", served[kind].trip.order_id or ""]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"  START RequestId: ", out)) == 3
    expected = KINDS[kind][1].split(" after ")[0]  # a timeout's line gives the seconds as Lambda does
    assert expected.split(":")[0] in out
    others = [run.trip.order_id for other, run in served.items() if other != kind]
    assert not any(order_id and order_id in out for order_id in others)


@pytest.mark.slow
@KIND
def test_notebook_05s_exercise_check_names_the_functions_error(runs: dict[str, Run], kind: str) -> None:
    cell = notebook.check(runs[kind].lab, "flow")
    (logged,) = [r for r in cell.results if r.id == "order.sample_logged"]
    assert not logged.passed
    assert KINDS[kind][1] in logged.message and ADVICE[kind] in logged.message, logged.message
