"""The checks that judge what the function did: invoked as SQS would, and the order of this run stored.

Both use an order of this run (a fresh orderId), so an item an earlier run stored cannot pass them,
and a failure names the function's error, the line that raised and the traceback.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from labkit import events
from labkit.config import PARTITION_KEY
from labkit.errors import ResourceError
from labkit.lab import Lab
from labkit.lambdaerrors import advice
from labkit.notebook.checks import _function_settings, _queue
from labkit.notebook.display import Note, ok
from labkit.observe import logs
from labkit.resources import sns

if TYPE_CHECKING:
    from labkit.observe.journey import Journey
    from labkit.observe.logs import FunctionError

# How far back a check looks in the function's log for an order it was not given the journey of.
LOOK_BACK_S = 3600.0


def check_invoke(lab: Lab, order: Mapping[str, Any] | None = None) -> Note:
    """Step 4d: invoked as SQS would (the order in an SNS envelope in an SQS record), the function stores the order.

    The order gets a fresh orderId unless given, so only this invocation can have written it; the
    test item is deleted afterwards. A failure names the function's error and the line that raised.
    """
    config = lab.config
    order = dict(order) if order is not None else events.fresh_order("TEST")
    topic_arn = sns.get_topic_arn(config, lab.clients)
    if topic_arn is None:
        raise ResourceError(f"Topic {config.topic_name} does not exist: run the catch-up cell.")
    queue = _queue(lab, config.queue_name, "queue")
    name = _function_settings(lab)["FunctionName"]
    result = lab.invoke(events.sqs_event(order, topic_arn, queue.arn))
    if result.function_error:
        error = logs.error_from_payload(result.payload)
        raise ResourceError(
            f"Function {name} failed on an SQS event holding order {order['orderId']}: "
            + (explain_error(error) if error else str(result.payload))
        )
    failed = result.payload.get("batchItemFailures") if isinstance(result.payload, dict) else None
    if failed:
        raise ResourceError(
            f"Function {name} reported the record of order {order['orderId']} as failed ({failed}); "
            f"its log says why:\n{result.log_tail.strip()}"
        )
    try:
        _compare_stored(lab, order, None)
    finally:
        lab.clients("dynamodb").delete_item(TableName=config.table_name, Key={PARTITION_KEY: {"S": order["orderId"]}})
    return ok(
        f"{name} took an SQS event holding order {order['orderId']} in an SNS envelope: no error, no failed record",
        f"it stored the order in {config.table_name} with every field as sent (test item removed again)",
    )


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
