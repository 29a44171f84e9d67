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
# The handler's outcomes for an order it took (lambda/code.py): written, or found there already.
SUCCESS_OUTCOMES = ("stored", "updated", "duplicate", "stale")
# Lambda stamps log events with its own clock; allow for a little skew against this machine's.
CLOCK_SKEW_S = 1.0
_REPORT_ID = re.compile(r"^REPORT RequestId: (\S+)")
REPORT_DURATION = re.compile(r"Duration: ([\d.]+) ms\s+Billed Duration: (\d+) ms")
_REPORT_FIELD = re.compile(r"(Memory Size|Max Memory Used|Init Duration): ([\d.]+) (?:MB|ms)")
# `Status: error  Error Type: Runtime.ImportModuleError` ends the REPORT of an invocation that failed in
# the platform's eyes (init error, exit, out of memory), `Status: timeout` one that timed out.
_REPORT_STATUS = re.compile(r"\tStatus: (?P<status>\w+)(?:\tError Type: (?P<type>\S+))?")


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
    # The REPORT line's Status ("error", "timeout") when the platform saw the invocation fail.
    status: str | None = None

    @property
    def failed(self) -> bool:
        """True when the whole invocation failed (an unhandled error or a timeout): SQS retries every record."""
        return self.error is not None or self.timed_out_after is not None or self.status is not None

    @property
    def received_at(self) -> float:
        """When the event reached the function: START less a cold start's init, which runs before it."""
        return self.start - (self.init_ms or 0.0) / 1000

    def reason(self) -> str | None:
        """Why the invocation failed, in one line; None if it did not."""
        if self.timed_out_after is not None:
            return f"Task timed out after {self.timed_out_after:.2f} seconds"
        if self.error is not None:
            return self.error.summary()
        return "Task timed out" if self.status == "timeout" else None


def parse_invocations(events: Iterable[dict[str, Any]]) -> list[Invocation]:
    """Group log events into invocations: each stream's START..END blocks, with their REPORT and timeout lines.

    What a stream logs before a START (a cold start's init: INIT_START, the module's own output, and
    when the init failed the runtime's `[ERROR]` line and INIT_REPORT) belongs to the invocation that
    START opens, as Lambda runs the init for it; an init error is that invocation's error, as its REPORT
    says (`Status: error`, `Error Type: Runtime.ImportModuleError`). An event after a block's END that
    no START follows belongs to no invocation. The error is read by the rules of `labkit.lambdaerrors.parse_errors`:
    one event with the traceback joined by "\\r" (awslambdaric) or, as older runtimes write it, one
    event per line, or the JSON log format's fields; all come out the same.
    """
    ordered = sorted(events, key=lambda e: (e.get("timestamp", 0), e.get("ingestionTime", 0)))
    open_blocks: dict[str, dict[str, Any]] = {}
    done: dict[str, dict[str, Any]] = {}
    before_start: dict[str, list[dict[str, Any]]] = {}
    block: dict[str, Any] | None
    for event in ordered:
        text = event.get("message", "").rstrip("\n")
        stream = event.get("logStreamName", "")
        if match := _START.match(text):
            block = {
                "id": match.group(1),
                "stream": stream,
                "start": event["timestamp"] / 1000,
                "events": [*before_start.pop(stream, []), event],
            }
            open_blocks[stream] = block
            done[block["id"]] = block
        elif match := _REPORT_ID.match(text):
            if (block := done.get(match.group(1))) is not None:
                block["events"].append(event)
                block["report"] = text
            else:
                before_start.pop(stream, None)  # the tail of a block whose START the window cut
        elif (match := TIMEOUT.match(text)) and match["request"]:
            if (block := done.get(match["request"])) is not None:
                block["events"].append(event)
                block["timeout"] = float(match["seconds"])
        elif (block := open_blocks.get(stream)) is not None:
            block["events"].append(event)
            if _END.match(text):
                open_blocks.pop(stream, None)
        elif _END.match(text):
            before_start.pop(stream, None)  # the tail of a block whose START the window cut
        else:
            before_start.setdefault(stream, []).append(event)
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
    status = _REPORT_STATUS.search(report)
    error = reader.errors[-1] if reader.errors else None
    if error is None and status is not None and status["type"]:
        # The platform names the error even when the lines that told it were cut off or never written.
        error = FunctionError(status["type"])
    return Invocation(
        request_id=block["id"],
        stream=block["stream"],
        start=block["start"],
        events=tuple(block["events"]),
        records=tuple(records),
        error=error,
        duration_ms=float(duration.group(1)) if duration else None,
        billed_ms=int(duration.group(2)) if duration else None,
        memory_mb=int(fields["Memory Size"]) if "Memory Size" in fields else None,
        max_memory_mb=int(fields["Max Memory Used"]) if "Max Memory Used" in fields else None,
        init_ms=fields.get("Init Duration"),
        timed_out_after=block.get("timeout"),
        status=status["status"] if status is not None else None,
    )


def invocations_of(
    found: Iterable[Invocation],
    order_id: str | None = None,
    message_ids: Iterable[str] = (),
    since: float | None = None,
    visibility_timeout: float | None = None,
    max_receives: int | None = None,
) -> list[Invocation]:
    """The invocations that received one order's message, oldest first.

    An invocation is the order's when it logged a record of *order_id* or of one of *message_ids*, or
    printed the order's id. One that failed before the handler logged anything (an init error, a crash
    or a timeout before its line) names no message; it is the order's when it falls where the message's
    receives fall. SQS hands a message that was not deleted out again once its visibility timeout runs
    out, so one message's receives come *visibility_timeout* seconds apart
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html):
    the chain runs forward from the first failed invocation after *since* (when the order was sent) that
    is not itself the retry of an earlier message, and backward and forward from the order's own
    invocations, for at most *max_receives* receives (the queue's maxReceiveCount: after that many SQS moves
    the message to the DLQ, and a failure a visibility timeout later is another message's). Without
    *visibility_timeout* no anonymous failure is counted.
    """
    wanted = set(message_ids)
    everything = sorted(found, key=lambda i: i.received_at)
    own = {
        i.request_id: i
        for i in everything
        if any((order_id and r.order_id == order_id) or r.message_id in wanted for r in i.records)
        or names_order(i, order_id)
    }
    if visibility_timeout is None:
        return list(own.values())
    anonymous = [i for i in everything if i.failed and not i.records and i.request_id not in own]
    chain = _ReceiveChain(anonymous, everything, float(visibility_timeout))
    mine = dict(own)
    first_seen = any(_first_receive(i, order_id, wanted) for i in own.values())
    if since is not None and not first_seen:
        first = chain.first_after(since)
        earliest = min((i.received_at for i in own.values()), default=None)
        if first is not None and (earliest is None or first.received_at < earliest):
            mine[first.request_id] = first
    limit = max(max_receives or 0, len(mine)) if max_receives else None
    grown = True
    while grown and (limit is None or len(mine) < limit):
        grown = False
        for invocation in sorted(mine.values(), key=lambda i: i.received_at):
            neighbours = [chain.after(invocation)] if invocation.failed else []
            starts = invocation.request_id in own and _first_receive(invocation, order_id, wanted)
            if not starts and (since is None or invocation.received_at - visibility_timeout >= since - CLOCK_SKEW_S):
                neighbours.append(chain.before(invocation))
            for neighbour in neighbours:
                if neighbour is not None and neighbour.request_id not in mine:
                    if limit is not None and len(mine) >= limit:
                        break
                    mine[neighbour.request_id] = neighbour
                    grown = True
    return sorted(mine.values(), key=lambda i: i.received_at)


# How late after its visibility timeout a message may be taken again: the pause before a poller receives
# it, and a new execution environment's start (at least the first, at most the second, half the timeout between).
RECEIVE_LATE_S = (2.0, 5.0)


def _first_receive(invocation: Invocation, order_id: str | None, wanted: set[str]) -> bool:
    counts = [
        r.receive_count for r in invocation.records if (order_id and r.order_id == order_id) or r.message_id in wanted
    ]
    return bool(counts) and min(c or 0 for c in counts) == 1


class _ReceiveChain:
    """Finds the failed invocations that one message's receives, a visibility timeout apart, fit."""

    def __init__(self, anonymous: list[Invocation], everything: list[Invocation], visibility_timeout: float) -> None:
        self.anonymous = anonymous
        self.failures = [i for i in everything if i.failed]
        self.timeout = visibility_timeout
        self.late = min(RECEIVE_LATE_S[1], max(RECEIVE_LATE_S[0], visibility_timeout / 2))

    def _near(self, candidates: list[Invocation], at: float, early: float, late: float) -> Invocation | None:
        fitting = [i for i in candidates if at - early <= i.received_at <= at + late]
        return min(fitting, key=lambda i: abs(i.received_at - at), default=None)

    def after(self, invocation: Invocation) -> Invocation | None:
        """The anonymous receive that follows *invocation*'s, a visibility timeout later."""
        return self._near(self.anonymous, invocation.received_at + self.timeout, CLOCK_SKEW_S, self.late)

    def before(self, invocation: Invocation) -> Invocation | None:
        """The anonymous receive that *invocation*'s follows."""
        return self._near(self.anonymous, invocation.received_at - self.timeout, self.late, CLOCK_SKEW_S)

    def first_after(self, since: float) -> Invocation | None:
        """The first anonymous receive after *since* that is not the retry of a message received before it."""
        for invocation in self.anonymous:
            if invocation.received_at < since - CLOCK_SKEW_S:
                continue
            earlier = self._near(self.failures, invocation.received_at - self.timeout, self.late, CLOCK_SKEW_S)
            if earlier is None or earlier.received_at >= since - CLOCK_SKEW_S:
                return invocation
        return None


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
