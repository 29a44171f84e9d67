"""The checks of the two exercises that are runs, not resources: notebook 06's fix and redrive, notebook 07's batch sizes.

The grader judges a pipeline; these judge what the student did with it in this notebook, from the
same evidence AWS keeps: the table, the DLQ, the function's log lines and REPORT lines. Each returns
(passed, message); `checkcell.check` scores them with the rubric's points.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labkit.lab import Lab
from labkit.lambdaerrors import advice as lab_advice
from labkit.observe import logs
from labkit.observe.dlq import decode_body, scan_dlq
from labkit.resources import sqs, triggers

if TYPE_CHECKING:
    from labkit.experiments.backlog import BatchRun

# What the session records at its start (`start_clean`), so a check can tell this run's doing from earlier ones'.
STARTED_AT = "started_at"
DLQ_AT_START = "dlq_at_start"


def fixed_and_redriven(lab: Lab, order: Mapping[str, Any] | None = None, **_: Any) -> tuple[bool, str]:
    """Notebook 06: the failed *order* is stored with its quantity fixed, gone from the DLQ, and nothing else was."""
    config = lab.config
    if order is None:
        return False, 'The check needs the failed order: run it as notebook.check(lab, "failures", order=bad).'
    order_id = str(order["orderId"])
    since = float(lab.session.get(STARTED_AT, time.time() - 3600))
    in_dlq = [m for m in scan_dlq(lab) if _order_id(m) == order_id]
    item = lab.get_order(order_id)
    if item is None:
        where = (
            f"it is still in {config.dlq_name}{_last_failure(lab, order_id, since)}"
            if in_dlq
            else f"it is not in {config.dlq_name} either; if you just sent it back, run this cell again in a moment"
        )
        return False, (
            f"Order {order_id} is not in {config.table_name}: {where}. Receive it from {config.dlq_name}, send a "
            f"copy with the quantity fixed to {config.queue_name}, then delete the original from {config.dlq_name}."
        )
    quantity = item.get("quantity")
    if not isinstance(quantity, int | Decimal) or isinstance(quantity, bool):
        return False, f"Order {order_id} is stored with quantity {quantity!r}: send it with the quantity as a number."
    if not any(r.outcome in ("stored", "updated") for r in logs.function_log_records(lab, since, order_id=order_id)):
        return False, (
            f"Order {order_id} is in {config.table_name}, but the function's log shows no write of it since this "
            "notebook started: send the fixed order to the queue, so the function stores it."
        )
    if in_dlq:
        return False, (
            f"Order {order_id} is stored, and its failed message is still in {config.dlq_name} too: delete it there "
            "(delete_message with the receipt handle of your receive)."
        )
    kept = lab.session.get(DLQ_AT_START)
    now = _dlq_count(lab)
    if kept is not None and now < int(kept):
        return False, (
            f"{config.dlq_name} held {kept} message(s) from earlier runs when this notebook started and holds {now} "
            "now: move or delete only your own order's message, the others are failed orders waiting for a fix."
        )
    return True, (
        f"Order {order_id} came back from {config.dlq_name} with its quantity fixed ({quantity}), the function "
        f"stored it, and the {config.dlq_name} messages of earlier runs are still there."
    )


def batch_sizes(lab: Lab, runs: Sequence[BatchRun] | None = None, **_: Any) -> tuple[bool, str]:
    """Notebook 07: runs at batch size 1 and a larger one, every order processed, fewer invocations, trigger back."""
    config = lab.config
    if not runs:
        return (
            False,
            'The check needs the runs: measure at batch size 1 and 10, then notebook.check(lab, "scale", runs=runs).',
        )
    sizes = sorted({run.batch_size for run in runs})
    if len(sizes) < 2 or sizes[0] != 1:
        return False, (
            f"The runs were at batch size {', '.join(map(str, sizes))}: measure at batch size 1 and at a larger one "
            "(change the trigger's BatchSize, then measure again)."
        )
    for run in runs:
        if run.records != run.orders:
            return False, (
                f"At batch size {run.batch_size} the function logged {run.records} of {run.orders} orders: the rest "
                f"is still in {config.queue_name} or in {config.dlq_name}. Look at lab.counts()."
            )
    small = min(runs, key=lambda r: r.batch_size)
    big = max(runs, key=lambda r: r.batch_size)
    if big.invocations >= small.invocations:
        return False, (
            f"Batch size {big.batch_size} took {big.invocations} invocations against {small.invocations} at batch size "
            f"{small.batch_size}: was the trigger's BatchSize really changed before the second measurement?"
        )
    queue = sqs.get_queue(lab.clients, config.queue_name)
    mapping = triggers.find_mapping(lab.clients, config.function_name, queue.arn) if queue else None
    if mapping is None or mapping.get("BatchSize") != config.batch_size or mapping.get("State") != "Enabled":
        found = f"batch size {mapping.get('BatchSize')}, {mapping.get('State')}" if mapping else "no trigger"
        return False, (
            f"The runs are right, but the trigger is now {found}: set its BatchSize back to {config.batch_size}, as the "
            "assignment asks."
        )
    return True, (
        f"Batch size {big.batch_size} processed all {big.orders} orders in {big.invocations} invocations against "
        f"{small.invocations} at batch size 1, and the trigger is back at batch size {config.batch_size}."
    )


def _last_failure(lab: Lab, order_id: str, since: float) -> str:
    """`, where the function last failed on it with <error>` from its log, or nothing when the log says nothing.

    An error of Lambda's own (an import, a timeout, an exit) is the handler's fault, not the order's: then
    it says to fix the handler first, as sending the order back would only fail again.
    """
    failed = [i for i in logs.order_invocations(lab, order_id, since) if i.failed]
    if not failed or not failed[-1].reason():
        return ""
    last = failed[-1]
    said = f", where the function last failed on it with {last.reason()}"
    kind = last.error.error_type if last.error is not None else "Sandbox.Timedout"
    if kind.startswith(("Runtime.", "Sandbox.")):
        advice = last.error.advice() if last.error is not None else lab_advice(kind)
        return f"{said}. That is the handler's fault, not the order's: {advice} Redeploy it first (notebook 04)"
    return said


def stack_deployed(lab: Lab, prefix: str | None = None, **_: Any) -> tuple[bool, str]:
    """Notebook 09: the stack of *prefix* stands (CREATE_COMPLETE) and its pipeline earns full marks, probe included."""
    from labkit.iac import stack_name

    if not prefix:
        return False, 'The check needs the stack\'s prefix: notebook.check(lab, "stack", prefix=STACK_PREFIX).'
    config = lab.config.with_(prefix=prefix)
    name = stack_name(config)
    try:
        (stack,) = lab.clients("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" not in str(exc):
            raise
        return False, f"Stack {name} does not exist: deploy your template (the cell with lab.deploy_stack)."
    status = stack["StackStatus"]
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        why = f" ({stack['StackStatusReason']})" if stack.get("StackStatusReason") else ""
        return False, (
            f"Stack {name} is {status}{why}: its events say which resource failed and why. Fix the template, "
            f"delete the stack (lab.delete_stack(prefix={prefix!r})) and deploy again."
        )
    report = Lab(config, lab.clients, cloud=lab.cloud).grade()
    if report.failed:
        first = report.result(report.failed[0])
        return False, (
            f"Stack {name} is {status}, but its pipeline scores {report.score:g} of {report.max_score:g}: "
            f"{', '.join(report.failed)} failed. {first.id}: {first.message}"
        )
    return True, (
        f"Stack {name} is {status}, and its pipeline scores {report.score:g} of {report.max_score:g} in the "
        "grader, probe order and malformed message included."
    )


def _order_id(message: dict[str, Any]) -> str | None:
    order, _ = decode_body(message.get("Body", ""))
    return order.get("orderId") if isinstance(order, dict) else None


def _dlq_count(lab: Lab) -> int:
    dlq = sqs.get_queue(lab.clients, lab.config.dlq_name)
    return sum(sqs.get_queue_counts(lab.clients, dlq.url).values()) if dlq else 0


OWN_CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "failures.fixed_and_redriven": fixed_and_redriven,
    "scale.batch_sizes": batch_sizes,
    "stack.deployed": stack_deployed,
}
