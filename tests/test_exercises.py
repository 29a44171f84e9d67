"""The notebooks' exercises: one definition of right (the grader's checks), scored for nbgrader, hard to fool.

A check cell runs the grader's checks of its step and shows them as a list; its plain-text result is the
points earned, which nbgrader's autograder takes as the cell's partial credit
(https://nbgrader.readthedocs.io/en/stable/user_guide/creating_and_grading_assignments.html#autograder-tests-cells-with-partial-credit).
Each classic mistake costs the points of the check it breaks, and no others.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import labkit
from labkit import notebook
from labkit.config import Config
from labkit.experiments import backlog
from labkit.grading import CHECKS, default_rubric
from labkit.lab import Lab
from labkit.localcloud import LocalCloud
from labkit.notebook.exercises import EXERCISES
from labkit.observe import charts, journey
from labkit.resources import sqs

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHECK_CALL = re.compile(r'notebook\.check\(lab, "(\w+)"')


# --- The exercises and the notebooks agree with the rubric ------------------------------------------------------


def test_every_grading_check_belongs_to_exactly_one_exercise() -> None:
    owners = [check_id for exercise in EXERCISES.values() for check_id in exercise.checks]
    assert sorted(owners) == sorted(c.id for c in CHECKS)
    rubric = default_rubric()
    assert set(rubric.points) == {check_id for exercise in EXERCISES.values() for check_id in exercise.ids}


def _notebooks() -> dict[str, dict[str, Any]]:
    return {path.name[:2]: json.loads(path.read_text(encoding="utf-8")) for path in sorted(NOTEBOOKS.glob("*.ipynb"))}


def test_each_check_cell_is_an_autograded_test_worth_its_exercises_points() -> None:
    rubric = default_rubric()
    found: dict[str, str] = {}
    for number, nb in _notebooks().items():
        ids = [cell["metadata"]["nbgrader"]["grade_id"] for cell in nb["cells"]]
        assert len(ids) == len(set(ids)), f"notebook {number}: grade ids repeat"
        solution_seen = False
        for cell in nb["cells"]:
            meta = cell["metadata"]["nbgrader"]
            source = "".join(cell["source"])
            if meta["solution"]:
                assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source
                assert not meta["locked"] and not meta["grade"]
                solution_seen = True
                continue
            assert meta["locked"], f"notebook {number}: a cell that is neither a solution nor a test is not locked"
            if meta["grade"]:
                (name,) = CHECK_CALL.findall(source)
                exercise = EXERCISES[name]
                assert exercise.notebook == number and name not in found
                assert meta["points"] == sum(rubric.points_for(i) for i in exercise.ids)
                assert solution_seen, f"the check of {name} comes before any exercise"
                found[name] = number
    assert found == {name: exercise.notebook for name, exercise in EXERCISES.items()}


# --- On a pipeline ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    cloud = LocalCloud.in_process(Config.from_env({}, function_timeout=1, visibility_timeout=2))
    yield cloud
    cloud.stop()


_PREFIXES = itertools.count(1)


@pytest.fixture
def new_lab(cloud: LocalCloud) -> Iterator[Callable[..., Lab]]:
    labs: list[Lab] = []

    def make(**overrides: Any) -> Lab:
        lab = Lab(cloud.config.with_(prefix=f"x{next(_PREFIXES)}", **overrides), cloud.clients, cloud=cloud)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.down(confirm=True)


@pytest.fixture
def built(new_lab: Callable[..., Lab]) -> Lab:
    lab = new_lab()
    lab.up()
    return lab


def failed(lab: Lab, exercise: str) -> set[str]:
    cell = notebook.check(lab, exercise)
    return {r.id for r in cell.results if not r.passed}


def test_the_builders_pass_every_resource_exercise_and_the_flow(built: Lab) -> None:
    journey.publish_and_track(built, labkit.SAMPLE_ORDER, timeout=20)
    for name in ("table", "topic", "queues", "role", "function", "trigger", "flow"):
        cell = notebook.check(built, name)
        assert cell.passed, str(cell)
        assert cell.score == cell.max_score > 0


def test_the_cell_shows_a_list_and_its_plain_text_is_the_score(built: Lab) -> None:
    built.clients("sqs").set_queue_attributes(
        QueueUrl=sqs.get_queue(built.clients, built.config.queue_name).url,
        Attributes={"RedrivePolicy": json.dumps(sqs.redrive_policy(_dlq_arn(built), 5))},
    )
    cell = notebook.check(built, "queues")
    bundle = cell._repr_mimebundle_()
    assert bundle["text/plain"] == "14" and cell.max_score == 15
    text = str(cell)
    assert text.splitlines()[0] == "Check: Create the queues and subscribe (14 of 15 points)"
    assert "✗ queue.max_receive_count (0/1): Queue" in text and "after 5 receives; the lab asks for 3" in text
    assert "To do: fix what the ✗ lines say" in text
    assert "✓ queue.policy (2/2)" in bundle["text/html"]


def test_unsolved_exercises_fail_with_what_is_missing_and_how_to_do_it(new_lab: Callable[..., Lab]) -> None:
    lab = new_lab()
    for name, missing in [
        ("table", "does not exist: create it first"),
        ("topic", "does not exist: create a standard SNS topic"),
        ("queues", "does not exist"),
        ("role", "does not exist"),
        ("function", "does not exist: create it first"),
        ("trigger", "does not exist"),
        ("flow", "does not exist"),
    ]:
        cell = notebook.check(lab, name)
        assert cell.score == 0 and not cell.passed
        assert all(not r.passed for r in cell.results)
        text = str(cell)
        assert missing in text, text
        assert EXERCISES[name].hint in text and f"catch_up(lab, step={EXERCISES[name].step}, include_this=True)" in text


def _dlq_arn(lab: Lab) -> str:
    dlq = sqs.get_queue(lab.clients, lab.config.dlq_name)
    assert dlq is not None
    return dlq.arn


# Each classic mistake, made as a student makes it (an API call on a working pipeline), costs exactly its checks.
def test_a_number_key_costs_the_key_schema_only(new_lab: Callable[..., Lab]) -> None:
    lab = new_lab()
    lab.clients("dynamodb").create_table(
        TableName=lab.config.table_name,
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert failed(lab, "table") == {"table.key_schema"}
    assert notebook.check(lab, "table").score == 2


def test_no_redrive_policy_costs_the_dlq_target_and_the_count(built: Lab) -> None:
    queue = sqs.get_queue(built.clients, built.config.queue_name)
    assert queue is not None
    built.clients("sqs").set_queue_attributes(QueueUrl=queue.url, Attributes={"RedrivePolicy": ""})
    assert failed(built, "queues") == {"queue.redrive_target", "queue.max_receive_count"}


def test_five_receives_cost_the_count_only(built: Lab) -> None:
    queue = sqs.get_queue(built.clients, built.config.queue_name)
    assert queue is not None
    policy = json.dumps(sqs.redrive_policy(_dlq_arn(built), 5))
    built.clients("sqs").set_queue_attributes(QueueUrl=queue.url, Attributes={"RedrivePolicy": policy})
    assert failed(built, "queues") == {"queue.max_receive_count"}


def test_a_queue_policy_for_another_topic_costs_the_policy_and_the_delivery(new_lab: Callable[..., Lab]) -> None:
    lab = new_lab()
    lab.up(through=3)
    queue = sqs.get_queue(lab.clients, lab.config.queue_name)
    assert queue is not None
    other = lab.clients("sns").create_topic(Name=f"{lab.config.prefix}-Elsewhere")["TopicArn"]
    policy = sqs.queue_policy_for_topic(queue.arn, other)
    lab.clients("sqs").set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy)})
    cell = notebook.check(lab, "queues")
    assert {r.id for r in cell.results if not r.passed} == {"queue.policy", "probe.delivery"}
    delivery = next(r for r in cell.results if r.id == "probe.delivery")
    assert "did not reach queue" in delivery.message and "access policy" in delivery.message


@pytest.mark.parametrize("service", ["sqs", "dynamodb"])
def test_a_role_without_queue_or_table_rights_costs_the_permissions(built: Lab, service: str) -> None:
    iam = built.clients("iam")
    name, policy = built.config.role_name, "OrderProcessorLeastPrivilege"
    document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    document["Statement"] = [s for s in document["Statement"] if not any(a.startswith(service) for a in s["Action"])]
    iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(document))
    assert failed(built, "role") == {"role.permissions"}


def test_batch_size_ten_costs_the_batch_size_only(built: Lab) -> None:
    lam = built.clients("lambda")
    (mapping,) = lam.list_event_source_mappings(FunctionName=built.config.function_name)["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=10)
    assert failed(built, "trigger") == {"mapping.batch_size"}


# --- Catching up, on the record -----------------------------------------------------------------------------------


def test_catching_up_a_step_scores_it_zero_and_says_so_even_after_a_restart(new_lab: Callable[..., Lab]) -> None:
    lab = new_lab()
    note = notebook.catch_up(lab, step=1, include_this=True)
    assert "recorded: step 1 was built by catch_up, not by you" in note
    cell = notebook.check(lab, "table")
    assert all(r.passed for r in cell.results) and cell.score == 0 and not cell.passed
    assert "was built by notebook.catch_up(lab, step=1, include_this=True), not by you" in str(cell)
    # A new kernel (a new Lab on the same cloud) still knows: the table carries the record.
    again = Lab(lab.config, lab.clients, cloud=lab.cloud)
    assert notebook.check(again, "table").score == 0
    # The catch-up of the next notebook builds steps before it, and records nothing.
    assert "recorded" not in notebook.catch_up(again, step=3)
    assert notebook.check(again, "topic").score == 3


def test_a_run_cannot_be_caught_up(new_lab: Callable[..., Lab]) -> None:
    with pytest.raises(labkit.errors.ConfigError, match="Step 6 is a run of this notebook"):
        notebook.catch_up(new_lab(), step=6, include_this=True)


# --- The runs' own checks -----------------------------------------------------------------------------------------


def test_the_failures_check_wants_the_order_fixed_stored_and_out_of_the_dlq(built: Lab) -> None:
    notebook.start_clean(built, timeout=30)
    bad = labkit.sample_order(orderId="BAD-00000001", quantity="2")
    trip = journey.publish_and_track(built, bad, timeout=30)
    assert trip.outcome == "dlq"
    built.session[notebook.STARTED_AT] = trip.steps[0].time - 1

    cell = notebook.check(built, "failures", order=bad)
    (own,) = [r for r in cell.results if r.id == "failures.fixed_and_redriven"]
    assert not own.passed and f"it is still in {built.config.dlq_name}" in own.message
    assert "quantity must be a whole number" in own.message  # why the function failed on it

    fix = journey.fix_orders(lambda order: {**order, "quantity": int(order["quantity"])})
    assert built.redrive(transform=fix, only=[trip.dlq_message_id]) == 1
    assert journey.track_order(built, bad["orderId"], since=trip.steps[-1].time, timeout=20).outcome == "stored"
    cell = notebook.check(built, "failures", order=bad)
    assert cell.passed, str(cell)


def test_the_failures_check_refuses_a_redrive_that_took_other_orders_with_it(built: Lab) -> None:
    earlier = journey.publish_and_track(built, labkit.sample_order(orderId="OLD-00000001", quantity="x"), timeout=30)
    assert earlier.outcome == "dlq"
    notebook.start_clean(built, timeout=30)  # records one message already in the DLQ
    bad = labkit.sample_order(orderId="BAD-00000002", quantity="2")
    trip = journey.publish_and_track(built, bad, timeout=30)
    built.session[notebook.STARTED_AT] = trip.steps[0].time - 1
    # WHEN the student moves everything, with a fix that leaves the earlier order broken
    fix = journey.fix_orders(lambda order: {**order, "quantity": 2})
    assert built.redrive(transform=fix) == 2
    journey.track_order(built, bad["orderId"], since=trip.steps[-1].time, timeout=20)
    (own,) = [r for r in notebook.check(built, "failures", order=bad).results if r.id.startswith("failures")]
    assert not own.passed and "held 1 message(s) from earlier runs" in own.message


def test_the_scale_check_wants_two_batch_sizes_fewer_invocations_and_the_trigger_back(built: Lab) -> None:
    frame = charts.CountsRecorder(built).frame
    one = backlog.BatchRun(1, 10, 1.0, 10, 10, 10, frame)
    ten = backlog.BatchRun(10, 10, 1.0, 1, 10, 10, frame)
    assert notebook.check(built, "scale", runs=[one, ten]).passed
    same = [one, backlog.BatchRun(1, 10, 1.0, 10, 10, 10, frame)]
    (result,) = notebook.check(built, "scale", runs=same).results
    assert not result.passed and "measure at batch size 1 and at a larger one" in result.message
    short = [one, backlog.BatchRun(10, 10, 1.0, 1, 9, 10, frame)]
    assert "logged 9 of 10 orders" in notebook.check(built, "scale", runs=short).results[0].message
    lam = built.clients("lambda")
    (mapping,) = lam.list_event_source_mappings(FunctionName=built.config.function_name)["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=10)
    (result,) = notebook.check(built, "scale", runs=[one, ten]).results
    assert not result.passed and "set its BatchSize back to 1" in result.message
