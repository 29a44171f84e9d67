"""The function's CloudWatch Logs: its events, its invocations (see `labkit.lambdalog`), what the viewer shows.

The parsed forms and their parsers live in the core, `Invocation` and `RecordLog` in `labkit.lambdalog`,
`FunctionError` and its `Frame` in `labkit.lambdaerrors`, and are importable from here too.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labkit.aws import error_code, raise_if_denied
from labkit.lambdaerrors import NO_BREAK_SPACE, Frame, FunctionError, error_from_payload
from labkit.lambdalog import (
    CLOCK_SKEW_S,
    REPORT_DURATION,
    Invocation,
    RecordLog,
    event_lines,
    format_event,
    invocations_of,
    parse_invocations,
    parse_record,
    parse_since,
)

if TYPE_CHECKING:
    from labkit.lab import Lab

__all__ = [
    "CLOCK_SKEW_S",
    "NO_BREAK_SPACE",
    "Frame",
    "FunctionError",
    "Invocation",
    "RecordLog",
    "delete_function_logs",
    "error_from_payload",
    "event_lines",
    "format_event",
    "function_log_records",
    "function_reports",
    "invocations",
    "invocations_of",
    "log_events",
    "log_group",
    "order_invocations",
    "parse_invocations",
    "parse_since",
    "receive_rules",
    "select_events",
]

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def log_group(lab: Lab) -> str:
    """The function's CloudWatch log group."""
    return f"/aws/lambda/{lab.config.function_name}"


def log_events(
    lab: Lab, since: float | None = None, pattern: str | None = None, skew: float = CLOCK_SKEW_S
) -> list[dict[str, Any]]:
    """Every event of the function's log group since *since* (epoch seconds), optionally filtered by *pattern*."""
    kwargs: dict[str, Any] = {"logGroupName": log_group(lab)}
    if since is not None:
        kwargs["startTime"] = max(0, int((since - skew) * 1000))
    if pattern:
        kwargs["filterPattern"] = pattern
    events: list[dict[str, Any]] = []
    try:
        for page in lab.clients("logs").get_paginator("filter_log_events").paginate(**kwargs):
            events.extend(page.get("events", []))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []  # the function has not run yet, so it has no log group
        raise_if_denied(exc, f"log group {log_group(lab)}", "read")
        raise
    return events


def invocations(lab: Lab, since: float | None = None, skew: float = CLOCK_SKEW_S) -> list[Invocation]:
    """The function's invocations since *since* (epoch seconds, less *skew*), oldest first."""
    return sorted(parse_invocations(log_events(lab, since, skew=skew)), key=lambda i: i.start)


def receive_rules(lab: Lab) -> tuple[float, int | None]:
    """The order queue's visibility timeout (how far apart one message's receives come) and maxReceiveCount."""
    from labkit.resources import sqs

    queue = sqs.get_queue(lab.clients, lab.config.queue_name)
    if queue is not None:
        try:
            attributes = lab.clients("sqs").get_queue_attributes(
                QueueUrl=queue.url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
            )["Attributes"]
            redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
            count = redrive.get("maxReceiveCount")
            return float(attributes["VisibilityTimeout"]), int(count) if count is not None else None
        except (ClientError, KeyError, ValueError, TypeError):
            pass  # unreadable: the configured values are the best guess
    return float(lab.config.visibility_timeout), lab.config.max_receive_count


def order_invocations(
    lab: Lab, order_id: str, since: float | None = None, found: list[Invocation] | None = None
) -> list[Invocation]:
    """The invocations since *since* that received *order_id*'s message (see `invocations_of`).

    The evidence: the handler's lines naming the order, and when the order sits in the DLQ its message
    (its id and when it was sent), from which the failures that logged nothing are matched to it.
    """
    from labkit.observe.dlq import find_in_dlq, sent_at

    found = invocations(lab, since) if found is None else found
    dead = find_in_dlq(lab, order_id, since=since)
    sent = sent_at(dead) if dead is not None else None
    ids = (dead["MessageId"],) if dead is not None else ()
    visibility, receives = receive_rules(lab)
    return invocations_of(found, order_id, ids, since=sent, visibility_timeout=visibility, max_receives=receives)


def select_events(
    lab: Lab, since: float | None = None, order_id: str | None = None, request_id: str | None = None
) -> list[dict[str, Any]]:
    """The log events the viewer shows: all since *since*, or the whole blocks of one order or one request.

    An order's blocks are those of `order_invocations`: its record lines, a printed line naming it, or a
    failure that logged nothing where its message's receives fall; each with its init lines.
    """
    events = log_events(lab, since)
    if order_id is None and request_id is None:
        return sorted(events, key=lambda e: e.get("timestamp", 0))
    chosen = parse_invocations(events)
    if request_id is not None:
        chosen = [i for i in chosen if i.request_id == request_id]
    if order_id is not None:
        chosen = order_invocations(lab, order_id, since, found=chosen)
    picked = [event for invocation in chosen for event in invocation.events]
    return sorted(picked, key=lambda e: e.get("timestamp", 0))


def function_log_records(
    lab: Lab,
    since: float | None = None,
    order_id: str | None = None,
    message_ids: tuple[str, ...] = (),
    skew: float = CLOCK_SKEW_S,
) -> list[RecordLog]:
    """The handler's per-record log lines since *since* (epoch seconds, less *skew*), for an order and/or messages."""
    terms = ([f'($.orderId = "{order_id}")'] if order_id else []) + [f'($.messageId = "{m}")' for m in message_ids]
    quotable = all(_SAFE_ID.match(value) for value in (order_id, *message_ids) if value)
    # CloudWatch filters on the server; the same test runs below as well, since not every backend does.
    pattern = "{ " + " || ".join(terms) + " }" if terms and quotable else None
    records = []
    for event in log_events(lab, since, pattern, skew):
        record = parse_record(event)
        if record is None:
            continue
        if (order_id or message_ids) and record.order_id != order_id and record.message_id not in message_ids:
            continue
        records.append(record)
    return sorted(records, key=lambda r: (r.time, r.receive_count or 0))


def function_reports(
    lab: Lab, since: float | None = None, skew: float = CLOCK_SKEW_S
) -> list[tuple[float, float, int]]:
    """The REPORT line of each invocation since *since* (less *skew*): (time, duration ms, billed duration ms)."""
    reports = []
    for event in log_events(lab, since, "REPORT", skew):
        match = REPORT_DURATION.search(event.get("message", ""))
        if match:
            reports.append((event["timestamp"] / 1000, float(match.group(1)), int(match.group(2))))
    return reports


def delete_function_logs(lab: Lab) -> bool:
    """Delete the function's log group (Lambda creates it; deleting the function leaves it); True if it existed."""
    try:
        lab.clients("logs").delete_log_group(logGroupName=log_group(lab))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    return True
