"""Which SQS messages reached the function how often, and how each delivery ended, from its CloudWatch Logs.

The evidence is what AWS records too: the handler's JSON line per record (messageId, outcome,
receiveCount) between Lambda's START and END lines, and the `[ERROR]` line (or Lambda's timeout
or exit line) when an invocation failed as a whole. It tells a retry SQS owed (a failed record, a failed invocation) from a needless one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any, NamedTuple

from labkit.journey import SUCCESS_OUTCOMES
from labkit.logs import log_events

if TYPE_CHECKING:
    from labkit.lab import Lab


class Delivery(NamedTuple):
    """One delivery of an SQS message to the function, from the function's log."""

    receive_count: int
    outcome: str
    invocation_failed: bool


def deliveries(lab: Lab, since: float | None = None) -> dict[str, list[Delivery]]:
    """Each SQS message's deliveries in receive order, from the function's CloudWatch Logs.

    The handler logs one JSON line per record between Lambda's START and END lines; an `[ERROR]`
    line in between (an exception, a timeout) means the whole invocation failed, every record with it.
    """
    blocks: dict[str, list[Any]] = {}
    seen: dict[str, list[Delivery]] = defaultdict(list)
    for event in log_events(lab, since):
        stream, text = event.get("logStreamName", ""), event.get("message", "").strip()
        if text.startswith("START RequestId:"):
            blocks[stream] = [False]
        elif stream in blocks and (text.startswith("[ERROR]") or _platform_failure(text)):
            blocks[stream][0] = True
        elif text.startswith("END RequestId:") and stream in blocks:
            failed, *lines = blocks.pop(stream)
            for line in lines:
                seen[line["messageId"]].append(Delivery(line["receiveCount"] or 0, line["outcome"], failed))
        elif text.startswith("{") and stream in blocks:
            line = _json_line(text)
            if line is not None:
                blocks[stream].append(line)
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


def _platform_failure(text: str) -> bool:
    """Lambda's own line for an invocation that timed out or whose runtime exited."""
    return " Task timed out after " in text or "Error: Runtime exited with error:" in text


def _json_line(text: str) -> dict[str, Any] | None:
    try:
        line = json.loads(text)
    except ValueError:
        return None
    if isinstance(line, dict) and isinstance(line.get("messageId"), str) and "outcome" in line:
        count = line.get("receiveCount")
        return {**line, "receiveCount": count if isinstance(count, int) else 0}
    return None
