"""The helpers behind the notebooks: journeys, logs, tables and charts, the order form, the step checks."""

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.lib.pretty import pretty

import labkit
from labkit import notebook
from labkit.config import Config
from labkit.errors import ConfigError, InputError, ResourceError
from labkit.experiments import backlog
from labkit.lab import Lab
from labkit.localcloud import LocalCloud
from labkit.observe import charts as observe
from labkit.observe import journey, logs
from labkit.observe.widgets import OrderForm
from labkit.resources import sqs

BAD_ORDER = labkit.sample_order(orderId="BAD-0001", quantity="2")
QUANTITY_REASON = 'quantity must be a whole number from 1 to 1000000 (got "2")'


# One local cloud for the module (starting moto costs seconds); each test gets its own pipeline by
# name prefix, as students sharing an account do, and removes it afterwards.
@pytest.fixture(scope="module")
def shared_cloud() -> Iterator[LocalCloud]:
    cloud = LocalCloud.in_process(Config.from_env({}, function_timeout=1, visibility_timeout=1))
    yield cloud
    cloud.stop()


@pytest.fixture
def make_lab(shared_cloud: LocalCloud, request: pytest.FixtureRequest) -> Iterator[Callable[..., Lab]]:
    labs: list[Lab] = []

    def make(**overrides: Any) -> Lab:
        prefix = f"t{next(_PREFIXES)}"
        lab = Lab(shared_cloud.config.with_(prefix=prefix, **overrides), shared_cloud.clients, cloud=shared_cloud)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.down()


@pytest.fixture
def built_lab(make_lab: Callable[..., Lab]) -> Lab:
    lab = make_lab()
    lab.up()
    return lab


_PREFIXES = itertools.count(1)
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def fix_quantity(order: dict[str, Any]) -> dict[str, Any]:
    order["quantity"] = int(order["quantity"])
    return order


# Journeys: real evidence from logs, table and DLQ.
def test_journey_of_a_good_order_ends_stored(built_lab: Lab) -> None:
    trip = journey.publish_and_track(built_lab, labkit.SAMPLE_ORDER, timeout=10)

    assert trip.outcome == "stored"
    assert trip.final_line == "stored: 01234"
    # SQS delivers at least once: under load a second delivery (a "duplicate" receive) may come before the end.
    stages = [s.stage for s in trip.steps]
    assert stages[:3] == ["published", "in queue", "received"] and stages[-1] == "stored"
    assert set(stages[3:-1]) <= {"received"} and trip.receive_counts[0] == 1
    assert trip.message_id and trip.reason is None
    assert str(trip).splitlines() == trip.lines() == [s.text for s in trip.steps]
    assert list(trip.frame().columns) == ["stage", "what", "after_s"]


def test_journey_of_a_bad_order_ends_in_the_dlq_with_the_reason(built_lab: Lab) -> None:
    # GIVEN an order with quantity "2" (text, not a number), while the counts are recorded
    with observe.CountsRecorder(built_lab, interval=0.2) as recorder:
        trip = journey.publish_and_track(built_lab, BAD_ORDER, timeout=20)

    # THEN the function refused it on each of 3 receives, and the queue moved it to the DLQ
    assert trip.outcome == "dlq"
    assert trip.reason == QUANTITY_REASON
    assert trip.receive_counts == (1, 2, 3)
    assert trip.final_line == f"DLQ: BAD-0001 ({QUANTITY_REASON})"
    assert [s.stage for s in trip.steps] == ["published", "in queue", "received", "received", "received", "dlq"]
    frame = recorder.frame
    assert frame["dlq_visible"].iloc[0] == 0 and frame["dlq_visible"].iloc[-1] == 1
    assert frame["queue_in_flight"].max() == 1
    assert notebook.check_dead_lettered(built_lab, trip).endswith(
        f"then the queue moved it to {built_lab.config.dlq_name}"
    )

    # AND the DLQ table says why and how often, without consuming the message
    table = observe.dlq_frame(built_lab)
    assert table.to_dict("records") == [
        {"orderId": "BAD-0001", "receives": 3, "last error": QUANTITY_REASON, "order": json.dumps(BAD_ORDER)}
    ]
    assert built_lab.counts()["dlq_visible"] == 1

    # AND a fixed copy redriven by hand lands in the table, and the DLQ is empty
    since = time.time()
    assert built_lab.redrive(transform=journey.fix_orders(fix_quantity)) == 1
    fixed = journey.track_order(built_lab, "BAD-0001", since=since, timeout=10)
    assert fixed.final_line == "stored: BAD-0001"
    assert notebook.check_order_stored(built_lab, fix_quantity(dict(BAD_ORDER)))
    assert built_lab.counts()["dlq_visible"] == 0

    # AND the chart marks each receive, and its title names the DLQ
    fig = observe.counts_chart(frame, title="OrderQueue and OrderDLQ", journey=trip)
    ax = fig.axes[0]
    assert "DLQ" in ax.get_title()
    assert [line.get_label() for line in ax.get_lines()[:3]] == ["queue: visible", "queue: in flight", "DLQ: visible"]
    assert [t.get_text() for t in ax.texts] == ["receive 1", "receive 2", "receive 3", "in the DLQ"]


def test_a_fix_that_cannot_apply_leaves_the_message_in_the_dlq(built_lab: Lab) -> None:
    trip = journey.publish_and_track(built_lab, labkit.MALFORMED_BODY, timeout=20)
    assert trip.outcome == "dlq" and trip.order_id is None
    assert trip.final_line.startswith(f"DLQ: message {trip.message_id} (SNS Message is not valid JSON")

    with pytest.raises(InputError, match="holds no order to fix"):
        built_lab.redrive(transform=journey.fix_orders(fix_quantity))

    # Released at once, not after the redrive's 60 s visibility timeout: nothing waits, nothing is lost.
    assert built_lab.counts()["dlq_visible"] == 1
    assert len(journey.scan_dlq(built_lab)) == 1
    assert built_lab.counts()["dlq_visible"] == 1


def test_journey_without_a_trigger_stays_pending_and_says_why(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab()
    lab.up(through=3)

    trip = journey.publish_and_track(lab, labkit.SAMPLE_ORDER, timeout=0.5)

    assert trip.outcome == "pending"
    assert trip.final_line.startswith("pending: 01234 (")
    assert f"no trigger connects {lab.config.queue_name}" in trip.final_line
    assert lab.counts()["queue_visible"] == 1


def test_decode_body_unwraps_the_sns_envelope() -> None:
    envelope = json.dumps({"Type": "Notification", "MessageId": "m-1", "TopicArn": "t", "Message": '{"a": 1}'})
    assert journey.decode_body(envelope) == ({"a": 1}, "m-1")
    assert journey.decode_body('{"a": 2}') == ({"a": 2}, None)
    assert journey.decode_body("not json") == ("not json", None)
    rewritten = journey.fix_orders(lambda order: {**order, "a": 3})(envelope)
    assert json.loads(rewritten)["MessageId"] == "m-1"
    assert json.loads(json.loads(rewritten)["Message"]) == {"a": 3}


def test_logs_give_per_record_lines_and_one_report_per_invocation(built_lab: Lab) -> None:
    assert logs.function_log_records(built_lab) == []  # no log group before the first run
    since = time.time()
    ids = built_lab.publish_orders(labkit.generate_orders(3, prefix="LOG"))
    built_lab.wait_until_drained(timeout=10)

    records = logs.function_log_records(built_lab, since)
    assert sorted(r.order_id for r in records) == ["LOG-000000", "LOG-000001", "LOG-000002"]
    assert {r.outcome for r in records} == {"stored"}
    assert [r.order_id for r in logs.function_log_records(built_lab, order_id="LOG-000001")] == ["LOG-000001"]
    assert len(logs.function_reports(built_lab, since)) == len(ids) == 3
    assert logs.delete_function_logs(built_lab) is True
    assert logs.delete_function_logs(built_lab) is False


# The order form.
def test_order_form_publishes_and_shows_the_journey(built_lab: Lab) -> None:
    form = OrderForm(built_lab, timeout=10)
    assert [w.description for w in (form.user_id, form.item, form.quantity, form.status, form.button)] == [
        "userId",
        "item",
        "quantity",
        "status",
        "Publish",
    ]
    form.user_id.value, form.item.value, form.quantity.value, form.status.value = "U7", "Phone", 2, "paid"

    form.button.click()

    trip = form.last_journey
    assert trip is not None and trip.outcome == "stored"
    stored = built_lab.get_order(trip.order_id)
    assert stored is not None and (stored["userId"], stored["itemName"], stored["quantity"]) == ("U7", "Phone", 2)
    assert f"<li>stored: {trip.order_id}</li>" in form.journey.value
    assert f"<li>published to {built_lab.config.topic_name}</li>" in form.journey.value
    assert not form.button.disabled


def test_order_form_shows_the_dlq_reason(built_lab: Lab) -> None:
    form = OrderForm(built_lab, timeout=20)
    form.quantity.value = 0

    trip = form.publish()

    assert trip is not None and trip.outcome == "dlq"
    reason = "quantity must be a whole number from 1 to 1000000 (got 0)"
    assert f"<li>DLQ: {trip.order_id} ({reason})</li>" in form.journey.value
    assert form.journey.value.count("<li>receive ") == 3
    assert "<pre" not in form.journey.value  # the handler's own reason explains it: no traceback to show


def test_order_form_shows_an_error_instead_of_raising(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab()  # nothing built: there is no topic
    form = OrderForm(lab)

    assert form.publish() is None
    assert f"error: Topic {lab.config.topic_name} does not exist yet" in form.journey.value


# Tables and charts.
def test_orders_chart_has_a_bar_per_status_and_per_item() -> None:
    frame = pd.DataFrame(list(labkit.generate_orders(30)))
    fig = observe.orders_chart(frame)
    by_status, by_item = fig.axes
    assert len(by_status.patches) == frame["status"].nunique()
    assert len(by_item.patches) == frame["itemName"].nunique()
    assert sum(p.get_height() for p in by_item.patches) == 30
    assert by_status.get_title() == "Stored orders by status"


def test_watch_counts_until_drained(built_lab: Lab) -> None:
    with pytest.raises(ValueError, match="seconds"):
        observe.watch_counts(built_lab)
    built_lab.publish_orders(labkit.generate_orders(5, prefix="W"))

    frame = observe.watch_counts(built_lab, until_drained=True, interval=0.1, timeout=10)

    assert frame.iloc[-1]["queue_visible"] == 0 and frame.iloc[-1]["queue_in_flight"] == 0
    assert frame.iloc[-1]["orders"] == 5


def test_recorder_raises_what_the_sampler_hit(built_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = observe.CountsRecorder(built_lab, interval=0.05).start()

    def broken(*args: Any) -> Any:
        raise ResourceError("queue gone")

    with monkeypatch.context() as patch:
        patch.setattr(sqs, "get_queue_counts", broken)
        time.sleep(0.3)
        with pytest.raises(ResourceError, match="queue gone"):
            recorder.stop()


def test_backlog_compare_measures_batch_sizes_and_restores_the_trigger(built_lab: Lab) -> None:
    runs = backlog.compare(built_lab, n=20, batch_sizes=(1, 5))

    small, big = runs
    assert (small.batch_size, small.orders, small.records, small.invocations) == (1, 20, 20, 20)
    assert (big.batch_size, big.records) == (5, 20)
    assert 4 <= big.invocations < 20
    assert small.counts["queue_visible"].max() == 20  # the whole backlog waited before the drain
    assert list(backlog.table(runs).index) == [1, 5]
    assert notebook.check(built_lab, "scale", runs=runs).passed
    assert notebook.check(built_lab, "trigger").passed
    fig = backlog.chart(runs)
    assert len(fig.axes[0].get_lines()) == 2
    assert [p.get_height() for p in fig.axes[1].patches] == [20, big.invocations]


# The notebook helpers and the checks of each step.
def test_catch_up_builds_only_the_earlier_steps(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab()
    c = lab.config
    legend = "(found: it was there already; built: just now):"
    assert notebook.catch_up(lab, step=1) == "Step 1 needs nothing built before it."
    assert notebook.catch_up(lab, step=2) == f"Step 1 in place {legend}\n  built  table {c.table_name}"
    assert notebook.catch_up(lab, step=3).splitlines()[1:] == [
        f"  found  table {c.table_name}",
        f"  built  topic {c.topic_name}",
    ]
    assert notebook.check(lab, "topic").passed
    assert lab.counts()["queue_visible"] is None
    lab.ensure_queues()  # step 3 built elsewhere (the console, another notebook): found, not built
    assert notebook.catch_up(lab, step=8).splitlines() == [
        f"Steps 1-4 in place {legend}",
        f"  found  table {c.table_name}",
        f"  found  topic {c.topic_name}",
        f"  found  queue {c.dlq_name}",
        f"  found  queue {c.queue_name}",
        f"  found  subscription {c.topic_name} -> {c.queue_name}",
        f"  built  role {c.role_name}",
        f"  built  function {c.function_name}",
        f"  built  trigger {c.queue_name} -> {c.function_name}",
    ]
    assert notebook.check(lab, "trigger").passed


def test_check_order_stored_compares_every_field(built_lab: Lab) -> None:
    with pytest.raises(ResourceError, match=f"Order 01234 is not in {built_lab.config.table_name}"):
        notebook.check_order_stored(built_lab, labkit.SAMPLE_ORDER)
    journey.publish_and_track(built_lab, labkit.SAMPLE_ORDER, timeout=10)
    assert notebook.check_order_stored(built_lab, labkit.SAMPLE_ORDER).startswith("✓ order 01234 is stored")
    with pytest.raises(ResourceError, match="status is 'new', expected 'paid'"):
        notebook.check_order_stored(built_lab, labkit.sample_order(status="paid"))


def test_check_dead_lettered_refuses_a_wrong_journey(built_lab: Lab) -> None:
    stored = journey.Journey("X", None, "stored", None, (journey.Step("stored", "stored: X", 0.0),), 0.1, (1,))
    with pytest.raises(ResourceError, match="ended: stored: X"):
        notebook.check_dead_lettered(built_lab, stored)
    twice = journey.Journey("X", None, "dlq", "r", (journey.Step("dlq", "DLQ: X (r)", 0.0),), 0.1, (1, 2))
    with pytest.raises(ResourceError, match="received the order 2 times"):
        notebook.check_dead_lettered(built_lab, twice)


def test_require_passed_names_failed_grader_checks(built_lab: Lab) -> None:
    journey.publish_and_track(built_lab, labkit.SAMPLE_ORDER, timeout=10)
    assert notebook.require_passed(built_lab.grade()) == "✓ every check of the grader passed"
    built_lab.ensure_trigger(enabled=False)
    with pytest.raises(ResourceError, match=r"check\(s\) failed"):
        notebook.require_passed(built_lab.grade())


def test_check_removed_after_down(built_lab: Lab) -> None:
    with pytest.raises(ResourceError, match=r"Still there after lab\.down"):
        notebook.check_removed(built_lab)
    built_lab.down()
    assert notebook.check_removed(built_lab) == "✓ table, topic, queues, function, trigger and role are gone"


def test_connect_prefers_least_privilege_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, Any]] = []

    class Connected:
        def __init__(self) -> None:
            self.session: dict[str, Any] = {}

    monkeypatch.setattr(notebook, "_connect", lambda **overrides: asked.append(overrides) or Connected())

    notebook.connect(visibility_timeout=6)
    monkeypatch.setenv("LABKIT_ROLE_POLICY", "managed")
    notebook.connect()

    assert asked == [{"visibility_timeout": 6, "role_policy": "least-privilege"}, {}]


def test_env_check_with_a_lab_asks_its_backend(built_lab: Lab) -> None:
    assert notebook.env_check(built_lab).splitlines() == [
        "✓ boto3, moto, pandas, matplotlib, ipywidgets, tqdm are installed",
        "✓ the moto backend answers",
    ]


def test_env_check_names_a_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = notebook.importlib.metadata.version

    def version(name: str) -> str:
        if name == "tqdm":
            raise notebook.importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(notebook.importlib.metadata, "version", version)
    with pytest.raises(ConfigError, match="the package tqdm is not installed"):
        notebook.env_check()


def test_show_backend_warns_about_cost_on_aws() -> None:
    aws = Lab(Config(backend="aws", profile="class"))
    assert "REAL AWS account" in notebook.show_backend(aws) and "notebook 08" in notebook.show_backend(aws)
    endpoint = Lab(Config(backend="endpoint", endpoint_url="http://127.0.0.1:5055"))
    assert "http://127.0.0.1:5055" in notebook.show_backend(endpoint)
    assert "inside this kernel" in notebook.show_backend(Lab(Config()))


def test_progress_bar_counts_and_leaves_its_final_rate_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.notebook import progressbar

    clock = iter([100.0, 101.0, 102.0])
    monkeypatch.setattr(progressbar.time, "monotonic", lambda: next(clock))
    bar = notebook.ProgressBar(30, "batch size 1")

    for done in (0, 10, 30):
        bar.update(done)

    assert bar.rate == 15.0  # 30 orders in the 2 s since the first update
    assert bar.bar.value == 30
    bundle = bar._repr_mimebundle_()
    assert bundle["text/plain"] == "batch size 1: 30/30 orders, 15.0 orders/s"
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_widgets_save_a_sentence_as_their_text_never_a_box_repr(built_lab: Lab) -> None:
    form = OrderForm(built_lab)
    bundle = form._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Order form (userId, item, quantity, status, Publish)")
    # What the saved notebooks show once the widgets' state is gone (reopened, on GitHub).
    saved = [
        output["data"]["text/plain"]
        for path in sorted(NOTEBOOKS.glob("*.ipynb"))
        for cell in json.loads(path.read_text())["cells"]
        for output in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert saved and not [text for text in saved if "Box(" in "".join(text)]


def test_notes_and_code_display_as_they_are() -> None:
    assert pretty(notebook.Note("a\nb")) == "a\nb"
    shown = notebook.show_json({"quantity": 1})
    assert shown._repr_markdown_() == '```json\n{\n  "quantity": 1\n}\n```'
    assert pretty(shown) == '{\n  "quantity": 1\n}'
    assert "def lambda_handler" in notebook.show_code(labkit.resources.functions.handler_source()).data
    # A fence longer than any run of backticks inside, so the block cannot end early.
    assert notebook.show_code("x = '```'")._repr_markdown_().startswith("````python\n")
