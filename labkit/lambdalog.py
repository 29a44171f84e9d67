"""Lambda's log lines, parsed as AWS writes them: one START..END block per invocation.

Inside a block come the handler's output (here one JSON line per SQS record, a `RecordLog`), the
runtime's error event when the handler raised (read into a `FunctionError` by `labkit.lambdaerrors`),
and after END the REPORT line with the invocation's measured and billed duration, as documented at
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html (START/END/REPORT lines); the line
`<timestamp> <request id> Task timed out after N seconds` joins its invocation by request id. Also here:
an event as the CloudWatch console lists it, and `--since` as `aws logs tail` takes it. Pure functions
over log events; `labkit.observe.logs` and the grader read the events from CloudWatch Logs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from labkit.lambdaerrors import TIMEOUT, ErrorReader, FunctionError, json_object, message_lines

_START = re.compile(r"^START RequestId: (\S+)")
_END = re.compile(r"^END RequestId: (\S+)")
_REPORT_ID = re.compile(r"^REPORT RequestId: (\S+)")
REPORT_DURATION = re.compile(r"Duration: ([\d.]+) ms\s+Billed Duration: (\d+) ms")
_REPORT_FIELD = re.compile(r"(Memory Size|Max Memory Used|Init Duration): ([\d.]+) (?:MB|ms)")


@dataclass(frozen=True)
class RecordLog:
    """One JSON log line the handler wrote for one SQS record."""

    time: float
    order_id: str | None
    message_id: str | None
    outcome: str
    reason: str | None
    receive_count: int | None


@dataclass(frozen=True)
class Invocation:
    """One invocation of the function: its START..END block of log events and its REPORT line."""

    request_id: str
    stream: str
    start: float
    events: tuple[dict[str, Any], ...] = ()
    records: tuple[RecordLog, ...] = ()
    error: FunctionError | None = None
    duration_ms: float | None = None
    billed_ms: int | None = None
    memory_mb: int | None = None
    max_memory_mb: int | None = None
    init_ms: float | None = None
    timed_out_after: float | None = field(default=None)

    @property
    def failed(self) -> bool:
        """True when the whole invocation failed (an unhandled error or a timeout): SQS retries every record."""
        return self.error is not None or self.timed_out_after is not None

    def reason(self) -> str | None:
        """Why the invocation failed, in one line; None if it did not."""
        if self.timed_out_after is not None:
            return f"Task timed out after {self.timed_out_after:.2f} seconds"
        return self.error.summary() if self.error is not None else None


def parse_invocations(events: Iterable[dict[str, Any]]) -> list[Invocation]:
    """Group log events into invocations: each stream's START..END blocks, with their REPORT and timeout lines.

    An event outside any block (the start of the window cut it, or a line the runtime writes at
    init) belongs to no invocation. The error is read by the rules of `labkit.lambdaerrors.parse_errors`:
    one event with the traceback joined by "\\r" (awslambdaric) or, as older runtimes write it, one
    event per line, or the JSON log format's fields; all come out the same.
    """
    ordered = sorted(events, key=lambda e: (e.get("timestamp", 0), e.get("ingestionTime", 0)))
    open_blocks: dict[str, dict[str, Any]] = {}
    done: dict[str, dict[str, Any]] = {}
    block: dict[str, Any] | None
    for event in ordered:
        text = event.get("message", "").rstrip("\n")
        stream = event.get("logStreamName", "")
        if match := _START.match(text):
            block = {"id": match.group(1), "stream": stream, "start": event["timestamp"] / 1000, "events": [event]}
            open_blocks[stream] = block
            done[block["id"]] = block
        elif match := _REPORT_ID.match(text):
            if (block := done.get(match.group(1))) is not None:
                block["events"].append(event)
                block["report"] = text
        elif (match := TIMEOUT.match(text)) and match["request"]:
            if (block := done.get(match["request"])) is not None:
                block["events"].append(event)
                block["timeout"] = float(match["seconds"])
        elif (block := open_blocks.get(stream)) is not None:
            block["events"].append(event)
            if _END.match(text):
                open_blocks.pop(stream, None)
    return [_invocation(block) for block in done.values()]


def _invocation(block: dict[str, Any]) -> Invocation:
    reader = ErrorReader(timeouts=False)
    records: list[RecordLog] = []
    for event in block["events"]:
        if not reader.read(event.get("message", "")) and (record := parse_record(event)) is not None:
            records.append(record)
    report = block.get("report", "")
    duration = REPORT_DURATION.search(report)
    fields = {name: float(value) for name, value in _REPORT_FIELD.findall(report)}
    return Invocation(
        request_id=block["id"],
        stream=block["stream"],
        start=block["start"],
        events=tuple(block["events"]),
        records=tuple(records),
        error=reader.errors[-1] if reader.errors else None,
        duration_ms=float(duration.group(1)) if duration else None,
        billed_ms=int(duration.group(2)) if duration else None,
        memory_mb=int(fields["Memory Size"]) if "Memory Size" in fields else None,
        max_memory_mb=int(fields["Max Memory Used"]) if "Max Memory Used" in fields else None,
        init_ms=fields.get("Init Duration"),
        timed_out_after=block.get("timeout"),
    )


def invocations_of(
    found: Iterable[Invocation], order_id: str | None = None, message_ids: Iterable[str] = ()
) -> list[Invocation]:
    """The invocations that logged a record of *order_id* or of one of *message_ids*.

    With no record to go by (the handler raised before it logged one), an invocation that failed
    and logged no record of any other message is counted too: at batch size 1 it can only have
    held this order when nothing else was in the queue.
    """
    wanted = set(message_ids)
    mine = []
    for invocation in found:
        ours = [r for r in invocation.records if (order_id and r.order_id == order_id) or r.message_id in wanted]
        if ours or (invocation.failed and not invocation.records) or names_order(invocation, order_id):
            mine.append(invocation)
    return mine


def names_order(invocation: Invocation, order_id: str | None) -> bool:
    """True if a line the handler printed (not a JSON record line) names *order_id*."""
    if not order_id:
        return False
    pattern = re.compile(rf"(?<![\w-]){re.escape(order_id)}(?![\w-])")
    return any(pattern.search(e.get("message", "")) for e in invocation.events[1:] if not parse_record(e))


def event_lines(event: dict[str, Any]) -> tuple[str, list[str]]:
    """An event's UTC timestamp (as CloudWatch shows it) and its message's lines ("\\r" or "\\n" apart)."""
    stamp = datetime.fromtimestamp(event.get("timestamp", 0) / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z"), message_lines(event.get("message", ""))


def format_event(event: dict[str, Any]) -> str:
    """One event as the CloudWatch console lists it: the UTC timestamp, then the message (its lines indented)."""
    stamp, lines = event_lines(event)
    pad = " " * (len(stamp) + 2)
    return "\n".join([f"{stamp}  {lines[0]}", *(f"{pad}{line}" for line in lines[1:])])


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds for `--since` as the AWS CLI's `logs tail` takes it: `30s`, `10m`, `2h`, `1d` ago."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write it as 30s, 10m, 2h, 1d or 1w.")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return (time.time() if now is None else now) - float(match.group(1)) * unit


def parse_record(event: dict[str, Any]) -> RecordLog | None:
    """The handler's JSON line for one record in *event*, or None if the event is not one."""
    line = json_object(event.get("message", ""))
    if line is None or "outcome" not in line:
        return None
    count = line.get("receiveCount")
    return RecordLog(
        time=event.get("timestamp", 0) / 1000,
        order_id=line.get("orderId"),
        message_id=line.get("messageId"),
        outcome=str(line["outcome"]),
        reason=line.get("reason"),
        receive_count=count if isinstance(count, int) else None,
    )
