"""The function's CloudWatch Logs: the handler's per-record JSON lines and Lambda's REPORT lines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labkit.aws import error_code, raise_if_denied

if TYPE_CHECKING:
    from labkit.lab import Lab

# Lambda stamps log events with its own clock; allow for a little skew against this machine's.
CLOCK_SKEW_S = 1.0
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_REPORT = re.compile(r"Duration: ([\d.]+) ms\s+Billed Duration: (\d+) ms")


@dataclass(frozen=True)
class RecordLog:
    """One JSON log line the handler wrote for one SQS record."""

    time: float
    order_id: str | None
    message_id: str | None
    outcome: str
    reason: str | None
    receive_count: int | None


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
        record = _parse_record(event)
        if record is None:
            continue
        if (order_id or message_ids) and record.order_id != order_id and record.message_id not in message_ids:
            continue
        records.append(record)
    return sorted(records, key=lambda r: (r.time, r.receive_count or 0))


def _parse_record(event: dict[str, Any]) -> RecordLog | None:
    message = event.get("message", "").strip()
    if not message.startswith("{"):
        return None
    try:
        line = json.loads(message)
    except ValueError:
        return None
    if not isinstance(line, dict) or "outcome" not in line:
        return None
    count = line.get("receiveCount")
    return RecordLog(
        time=event["timestamp"] / 1000,
        order_id=line.get("orderId"),
        message_id=line.get("messageId"),
        outcome=str(line["outcome"]),
        reason=line.get("reason"),
        receive_count=count if isinstance(count, int) else None,
    )


def function_reports(
    lab: Lab, since: float | None = None, skew: float = CLOCK_SKEW_S
) -> list[tuple[float, float, int]]:
    """The REPORT line of each invocation since *since* (less *skew*): (time, duration ms, billed duration ms)."""
    reports = []
    for event in log_events(lab, since, "REPORT", skew):
        match = _REPORT.search(event.get("message", ""))
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
