"""The function's real error, read from its CloudWatch log group with the grader's read-only clients.

The lines themselves are parsed in the core: every shape Lambda writes an error, a traceback or a
timeout in by `labkit.lambdaerrors`, the handler's record lines by `labkit.lambdalog`. What is the
grader's own is reading the log group, the reasons the handler logged for refusing an order, and the
one sentence a failed probe reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code
from labkit.lambdaerrors import FunctionError, message_lines
from labkit.lambdalog import parse_record
from labkit.session import Clients

CLOCK_SKEW_MS = 1_000


def log_messages(clients: Clients, function_name: str, since_ms: int, until_ms: int | None = None) -> list[str]:
    """The messages of function *function_name*'s log events from *since_ms* (epoch ms, less clock skew) to
    *until_ms* (if given), oldest first.

    Raises:
        ClientError: the log group could not be read (other than not existing: then there is nothing).
    """
    kwargs: dict[str, Any] = {
        "logGroupName": f"/aws/lambda/{function_name}",
        "startTime": max(0, since_ms - CLOCK_SKEW_MS),
    }
    if until_ms is not None:
        kwargs["endTime"] = until_ms
    events: list[tuple[int, str]] = []
    try:
        for page in clients("logs").get_paginator("filter_log_events").paginate(**kwargs):
            events.extend((e.get("timestamp", 0), e.get("message", "")) for e in page.get("events", []))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []
        raise
    # Events of several log streams interleave; sorted() keeps the order of events with one timestamp.
    return [text for _, text in sorted(events, key=lambda pair: pair[0])]


def refusals(messages: Iterable[str], order_id: str) -> list[str]:
    """The reasons the handler logged for refusing or failing to store *order_id* (code.py's JSON lines)."""
    records = (parse_record({"message": line}) for message in messages for line in message_lines(message))
    return [
        f"{record.outcome}: {record.reason}"
        for record in records
        if record is not None and record.order_id == order_id and record.outcome in ("invalid", "error")
    ]


def summarise(errors: list[FunctionError]) -> str:
    """One sentence naming the most recent error, and how many invocations failed."""
    if not errors:
        return ""
    last = errors[-1]
    # A traceback says the most; prefer the latest error that has one over a bare `[ERROR]` line.
    with_trace = [e for e in errors if e.frames and e.error_type == last.error_type]
    shown = with_trace[-1] if with_trace else last
    times = f" ({len(errors)} failed invocations)" if len(errors) > 1 else ""
    return f"{shown.describe()}{times}"
