"""Which SQS messages reached the function how often, and how each delivery ended, from its CloudWatch Logs.

The evidence is what AWS records too: the handler's JSON line per record (messageId, outcome,
receiveCount) between Lambda's START and END lines, and the runtime's `[ERROR]` event (or Lambda's
timeout line) when an invocation failed as a whole. It tells a retry SQS owed (a failed record, a
failed invocation) from a needless one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, NamedTuple

from labkit.observe.journey import SUCCESS_OUTCOMES
from labkit.observe.logs import log_events, parse_invocations

if TYPE_CHECKING:
    from labkit.lab import Lab


class Delivery(NamedTuple):
    """One delivery of an SQS message to the function, from the function's log."""

    receive_count: int
    outcome: str
    invocation_failed: bool


def deliveries(lab: Lab, since: float | None = None) -> dict[str, list[Delivery]]:
    """Each SQS message's deliveries in receive order, from the function's CloudWatch Logs.

    The handler logs one JSON line per record between Lambda's START and END lines; the runtime's
    `[ERROR] <type>: <message>` event in between (an exception) or Lambda's timeout line means the
    whole invocation failed, every record with it (see `labkit.observe.logs.parse_invocations`).
    """
    seen: dict[str, list[Delivery]] = defaultdict(list)
    for invocation in parse_invocations(log_events(lab, since)):
        for record in invocation.records:
            if isinstance(record.message_id, str):
                seen[record.message_id].append(Delivery(record.receive_count or 0, record.outcome, invocation.failed))
    return {message_id: sorted(items) for message_id, items in seen.items()}


def needless_retries(history: dict[str, list[Delivery]]) -> list[str]:
    """Messages delivered again after a delivery that succeeded in an invocation that succeeded.

    SQS retries what the function reports failed and, when an invocation fails as a whole (an
    exception, a timeout), every record of it; anything else coming back was retried needlessly.
    """
    return [
        message_id
        for message_id, items in history.items()
        if any(d.outcome in SUCCESS_OUTCOMES and not d.invocation_failed for d in items[:-1])
    ]
