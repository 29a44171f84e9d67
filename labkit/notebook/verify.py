"""The notebooks' checks that are not exercises: what an order did, that a failed one sat in the DLQ, and clean-up.

`check_order_stored` and `check_dead_lettered` verify a journey the notebook itself started (a fresh
orderId, so an earlier run's item cannot pass them) and, when it went wrong, name the function's
error, the line that raised and what to do. The graded checks of the exercises are in `checkcell`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from labkit.errors import ResourceError
from labkit.lab import Lab
from labkit.lambdaerrors import advice
from labkit.notebook.display import Note, ok
from labkit.observe import logs
from labkit.resources import functions, sns, sqs

if TYPE_CHECKING:
    from labkit.grading import Report
    from labkit.observe.journey import Journey
    from labkit.observe.logs import FunctionError

# How far back a check looks in the function's log for an order it was not given the journey of.
LOOK_BACK_S = 3600.0


def check_order_stored(lab: Lab, order: Mapping[str, Any], journey: Journey | None = None) -> Note:
    """Step 5: the table holds *order*, field for field (the timestamp as the same instant).

    Give the order a fresh orderId (`labkit.events.fresh_order`) so an item stored by an earlier run
    cannot pass; with its *journey*, a failure says what the function logged for it.
    """
    _compare_stored(lab, order, journey)
    return ok(f"order {order['orderId']} is stored in {lab.config.table_name} with every field as published")


def explain_error(error: FunctionError) -> str:
    """The function's error for a student: what it raised, where, the traceback, and what to do."""
    at = error.where
    where = f" in {at.file.rsplit('/', 1)[-1]}, line {at.line} ({at.function})" if at is not None else ""
    # A traceback that is its header alone (an import error's) says nothing.
    trace = "".join(f"{line}\n" for line in error.traceback) if len(error.traceback) > 1 else ""
    return f"{error.head}{where}.\n{trace}{error.advice()} {REDEPLOY}"


REDEPLOY = "Then redeploy the function (notebook 04) and send the order again."


def _compare_stored(lab: Lab, order: Mapping[str, Any], journey: Journey | None) -> None:
    order_id = order["orderId"]
    item = lab.get_order(order_id)
    if item is None:
        raise ResourceError(
            f"Order {order_id} is not in {lab.config.table_name}: {_what_happened(lab, order_id, journey)}"
        )
    wrong = [
        f"{key} is {item.get(key)!r}, expected {value!r}"
        for key, value in order.items()
        if not (key == "timestamp" and _same_instant(item.get(key), value)) and item.get(key) != value
    ]
    if wrong:
        raise ResourceError(f"Order {order_id} is stored, but " + "; ".join(wrong) + ".")


def _what_happened(lab: Lab, order_id: str, journey: Journey | None) -> str:
    if journey is not None and journey.error is not None:
        return f"the function failed on it with {explain_error(journey.error)}"
    if journey is not None and journey.outcome == "dlq" and journey.reason:
        tries = len(journey.receive_counts)
        if journey.reason.startswith("Task timed out"):
            return (
                f"the function failed on it {tries} time(s) ({journey.reason}) and SQS moved it to "
                f"{lab.config.dlq_name}. {advice(journey.reason)} {REDEPLOY}"
            )
        return (
            f"the function refused it {tries} time(s) ({journey.reason}) and SQS moved it to {lab.config.dlq_name}. "
            "Either the order must change (fix it and send it back, as notebook 06 shows) or the handler, if it "
            "should have taken it."
        )
    if journey is not None and journey.outcome != "stored":
        return f"its journey ended {journey.final_line!r}. Read the function's log: `labkit logs --order {order_id}`."
    if journey is None:
        # Without a journey, the order's own invocations are those its log lines or its DLQ message point to.
        mine = logs.order_invocations(lab, order_id, since=time.time() - LOOK_BACK_S)
        failed = [i.error for i in mine if i.error is not None]
        if failed:
            return f"the function failed on it with {explain_error(failed[-1])}"
    return (
        "is it still in the queue, or in the DLQ? Look at lab.counts() and the function's log "
        f"(`labkit logs --order {order_id}`)."
    )


def _same_instant(stored: Any, sent: Any) -> bool:
    try:
        return datetime.fromisoformat(str(stored)) == datetime.fromisoformat(str(sent))
    except ValueError:
        return False


def check_dead_lettered(lab: Lab, journey: Journey) -> Note:
    """Step 6: the order failed maxReceiveCount receives in a row, then sat in the DLQ."""
    expected = tuple(range(1, lab.config.max_receive_count + 1))
    if journey.outcome != "dlq":
        raise ResourceError(f"Expected the order in {lab.config.dlq_name}, but its journey ended: {journey.final_line}")
    if journey.receive_counts != expected:
        raise ResourceError(
            f"The function received the order {len(journey.receive_counts)} times {journey.receive_counts}; "
            f"the queue's redrive policy should allow {len(expected)}. Check maxReceiveCount (notebook 03)."
        )
    return ok(
        f"order {journey.order_id} failed {len(expected)} receives: {journey.reason}",
        f"then the queue moved it to {lab.config.dlq_name}",
    )


def check_removed(lab: Lab) -> Note:
    """After `lab.down()`: nothing of the pipeline is left."""
    config = lab.config
    left = [f"queue {name}" for name in (config.queue_name, config.dlq_name) if sqs.get_queue(lab.clients, name)]
    if lab.counts()["orders"] is not None:
        left.append(f"table {config.table_name}")
    if sns.get_topic_arn(config, lab.clients) is not None:
        left.append(f"topic {config.topic_name}")
    if (function := functions.find_function(config, lab.clients)) is not None:
        left.append(f"function {function}")
    with contextlib.suppress(lab.clients("iam").exceptions.NoSuchEntityException):
        lab.clients("iam").get_role(RoleName=config.role_name)
        left.append(f"role {config.role_name}")
    if left:
        raise ResourceError(
            f"Still there after lab.down(): {', '.join(left)}. What lab.down() kept carries no labkit tags (made "
            "without them, or by hand): delete it with lab.down(confirm=True, untagged=True), or in the console."
        )
    return ok("table, topic, queues, function, trigger and role are gone")


def require_passed(report: Report) -> Note:
    """Raise ResourceError naming every failed check of a grading report; else say so."""
    if report.failed:
        lines = [f"{check_id}: {report.result(check_id).message}" for check_id in report.failed]
        raise ResourceError(f"{len(lines)} check(s) failed:\n" + "\n".join(lines))
    return ok("every check of the grader passed")
