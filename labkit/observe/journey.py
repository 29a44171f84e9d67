"""Follow one order through the pipeline with real AWS APIs: published, in queue, stored or in the DLQ.

The evidence is what AWS itself records: the function's CloudWatch Logs (the handler writes one JSON
line per record with orderId, messageId, outcome, reason and receiveCount, after its write to the
table; the runtime logs an unhandled error with its traceback) and the DLQ's messages. On AWS, log
lines arrive a few seconds late; the journey waits for them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit.errors import InputError
from labkit.lambdalog import SUCCESS_OUTCOMES
from labkit.observe import logs

# decode_body and scan_dlq are read here too by notebooks saved before they moved to observe.dlq.
from labkit.observe.dlq import decode_body, find_in_dlq, scan_dlq  # noqa: F401
from labkit.observe.logs import FunctionError, Invocation
from labkit.resources import sqs, triggers

if TYPE_CHECKING:
    import pandas as pd

    from labkit.lab import Lab

POLL_S = 0.2
# Added to the time retries take, for the function's log lines to arrive (CloudWatch Logs lag on AWS).
TIMEOUT_MARGIN_S = 15.0


@dataclass(frozen=True)
class Step:
    """One stage of an order's journey, with the time (epoch seconds) of the evidence."""

    stage: str
    text: str
    time: float


@dataclass(frozen=True)
class Journey:
    """Where an order went: `outcome` is "stored", "dlq" or "pending"; `steps` in the order they happened."""

    order_id: str | None
    message_id: str | None
    outcome: str
    reason: str | None
    steps: tuple[Step, ...]
    seconds: float
    receive_counts: tuple[int, ...] = field(default=())
    error: FunctionError | None = None
    request_ids: tuple[str, ...] = field(default=())
    # The SQS MessageId of the order's message in the DLQ, when it ended there (for `lab.redrive(only=...)`).
    dlq_message_id: str | None = None

    @property
    def final_line(self) -> str:
        """The last line: `stored: <orderId>`, `DLQ: <orderId> (<reason>)` or `pending: …`."""
        return self.steps[-1].text if self.steps else f"pending: {self.order_id}"

    def lines(self) -> list[str]:
        """One line per step."""
        return [step.text for step in self.steps]

    def frame(self) -> pd.DataFrame:
        """The steps as a DataFrame, with seconds since the first step."""
        import pandas as pd

        start = self.steps[0].time if self.steps else 0.0
        return pd.DataFrame(
            [{"stage": s.stage, "what": s.text, "after_s": round(s.time - start, 2)} for s in self.steps]
        )

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def fix_orders(fix: Callable[[dict[str, Any]], Mapping[str, Any]]) -> Callable[[str], str]:
    """A body rewriter for `lab.redrive(transform=...)` that applies *fix* to the order inside each message.

    The SNS envelope is kept, so the message still says which topic sent it; the handler does not
    check SNS signatures, which the edit invalidates.
    """

    def transform(body: str) -> str:
        order, _ = decode_body(body)
        if not isinstance(order, dict):
            raise InputError(f"This message holds no order to fix ({str(order)[:60]!r}); delete it instead.")
        fixed = json.dumps(dict(fix(dict(order))), ensure_ascii=False, separators=(",", ":"))
        envelope = json.loads(body)
        if isinstance(envelope, dict) and envelope.get("Type") == "Notification":
            envelope["Message"] = fixed
            return json.dumps(envelope, ensure_ascii=False)
        return fixed

    return transform


def track_order(
    lab: Lab,
    order_id: str | None,
    message_id: str | None = None,
    since: float | None = None,
    timeout: float | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> Journey:
    """Follow an order until it is stored or in the DLQ, or *timeout* runs out.

    Each receive is an invocation of the function that logged a line for the order or, when the
    handler raised before it logged one, an invocation since *since* that failed and logged no
    other message's line (see `logs.invocations_of`); its error names the file and line that raised.

    Args:
        lab: the pipeline.
        order_id: the order's orderId (None for a body that is not an order; then give *message_id*).
        message_id: the SNS message id `publish_order` returned, if it was published.
        since: epoch seconds the order was sent; older log lines and DLQ messages are not its own.
        timeout: seconds to wait; default: long enough for maxReceiveCount retries plus a margin.
        on_step: called with each new step as it is seen (a live display).
    Returns:
        The journey, whose `final_line` reads `stored: <id>`, `DLQ: <id> (<reason>)` or `pending: …`.
    """
    config = lab.config
    if timeout is None:
        timeout = config.max_receive_count * (config.visibility_timeout + config.function_timeout) + TIMEOUT_MARGIN_S
    started = time.monotonic()
    steps: list[Step] = []
    seen: set[str] = set()
    counts: list[int] = []
    request_ids: list[str] = []
    last: dict[str, Any] = {"reason": None, "error": None}
    label = order_id if order_id is not None else f"message {message_id}"
    visibility, receives = logs.receive_rules(lab)

    def add(stage: str, text: str, at: float | None = None) -> None:
        step = Step(stage, text, time.time() if at is None else at)
        steps.append(step)
        if on_step:
            on_step(step)

    def take(found: list[Invocation], message_ids: tuple[str, ...] = ()) -> str | None:
        """Add a step per new invocation of this order; returns the outcome of a success, if one is seen."""
        success = None
        for invocation in logs.invocations_of(found, order_id, message_ids, since, visibility, receives):
            if invocation.request_id in seen:
                continue
            seen.add(invocation.request_id)
            request_ids.append(invocation.request_id)
            if not any(s.stage == "in queue" for s in steps):
                add("in queue", f"in queue {config.queue_name}", invocation.start)
            mine = [
                r
                for r in invocation.records
                if (order_id is not None and r.order_id == order_id) or r.message_id in message_ids
            ]
            record = mine[-1] if mine else None
            count = (record.receive_count if record else None) or len(counts) + 1
            counts.append(count)
            if record is not None:
                outcome, reason = record.outcome, record.reason
            else:
                outcome, reason = "failed", invocation.reason()
            if invocation.error is not None and record is None:
                # Unexplained by a line of the handler's own: the error and its traceback say why.
                last["error"] = invocation.error
            if reason:
                last["reason"] = reason
            why = f" ({reason})" if reason else ""
            if record is not None and invocation.failed and record.outcome in SUCCESS_OUTCOMES:
                # The write happened, but SQS saw the invocation fail and will deliver the message again.
                why = f", but the invocation failed ({invocation.reason()})"
            add("received", f"receive {count} by {config.function_name}: {outcome}{why}", invocation.start)
            if outcome in SUCCESS_OUTCOMES and success is None:
                success = outcome
        return success

    def finish(outcome: str, reason: str | None, text: str, dlq_message_id: str | None = None) -> Journey:
        add(outcome, text)
        return Journey(
            order_id,
            message_id,
            outcome,
            reason,
            tuple(steps),
            time.monotonic() - started,
            tuple(counts),
            last["error"],
            tuple(request_ids),
            dlq_message_id,
        )

    if message_id:
        add("published", f"published to {config.topic_name}", since)
    while True:
        done = take(logs.invocations(lab, since)) if order_id or since is not None else None
        if done is not None:
            note = "" if done in ("stored", "updated") else f" (already stored: {done})"
            return finish("stored", None, f"stored: {label}{note}")
        dead = find_in_dlq(lab, order_id, message_id, since)
        if dead is not None:
            take(logs.invocations(lab, since), (dead["MessageId"],))
            reason = last["reason"] or "no reason in the function's logs"
            return finish("dlq", reason, f"DLQ: {label} ({reason})", dead["MessageId"])
        if time.monotonic() - started > timeout:
            return finish("pending", None, f"pending: {label} ({_pending_hint(lab, timeout)})")
        time.sleep(POLL_S)


def publish_and_track(
    lab: Lab,
    order: Mapping[str, Any] | str,
    timeout: float | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> Journey:
    """Publish *order* (a dict or any body) and follow it; see `track_order`."""
    since = time.time()
    message_id = lab.publish_order(order)
    order_id = order.get("orderId") if isinstance(order, Mapping) else None
    return track_order(
        lab, order_id if isinstance(order_id, str) else None, message_id, since, timeout=timeout, on_step=on_step
    )


def _pending_hint(lab: Lab, timeout: float) -> str:
    queue = sqs.get_queue(lab.clients, lab.config.queue_name)
    if queue is None:
        return f"the queue {lab.config.queue_name} does not exist: build it (notebook 03)"
    mapping = triggers.find_mapping(lab.clients, lab.config.function_name, queue.arn)
    if mapping is None:
        return f"not stored after {timeout:.0f}s: no trigger connects {queue.name} to the function (notebook 04)"
    if mapping["State"] != "Enabled":
        return f"not stored after {timeout:.0f}s: the trigger is {mapping['State']}"
    return f"not stored and not in the DLQ after {timeout:.0f}s: wait longer, or check the function's logs"
