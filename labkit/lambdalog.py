"""Lambda's log lines, parsed as AWS writes them: one START..END block per invocation.

Inside a block come the handler's output (here one JSON line per SQS record), the runtime's
`[ERROR] <type>: <message>` event with the traceback when the handler raised, and after END the
REPORT line with the invocation's measured and billed duration. The shapes are AWS's, documented at
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html (START/END/REPORT lines),
https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html (the error and its traceback) and
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html (the JSON log
format, whose error is the fields errorType, errorMessage and stackTrace).
On AWS the error is one log event whose lines are separated by "\\r"; elsewhere each line may be an
event of its own, and some runtimes put a tab-separated timestamp and request id before `[ERROR]`:
every shape comes out the same `FunctionError`. A timeout is the line `Task timed out after N seconds`.
Pure functions over log events; `labkit.observe.logs` and the grader read the events from CloudWatch Logs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

_START = re.compile(r"^START RequestId: (\S+)")
_END = re.compile(r"^END RequestId: (\S+)")
_REPORT_ID = re.compile(r"^REPORT RequestId: (\S+)")
REPORT_DURATION = re.compile(r"Duration: ([\d.]+) ms\s+Billed Duration: (\d+) ms")
_REPORT_FIELD = re.compile(r"(Memory Size|Max Memory Used|Init Duration): ([\d.]+) (?:MB|ms)")
_BOUNDARY = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START")
# `<timestamp> <request id> Task timed out after 3.00 seconds`, written by Lambda when it stops a function.
_TIMEOUT = re.compile(r"(?:^\S+\s+(?P<request>\S+)\s+)?Task timed out after (?P<seconds>[\d.]+) seconds")
# `RequestId: <id> Error: Runtime exited with error: exit status 1`, then `Runtime.ExitError` (or
# `Runtime.OutOfMemory`): Lambda's lines when the function's process ended during the invocation.
_EXITED = re.compile(r"^RequestId: \S+ Error: Runtime exited with error: .+$")
_EXIT_TYPES = ("Runtime.ExitError", "Runtime.OutOfMemory")
# The runtime's line for an unhandled exception, "[ERROR] KeyError: 'orderId'", at the start of a line or
# after a tab-separated prefix some runtimes add. A `logging.error` record ("[ERROR]\t<time>\t<request
# id>\t<message>") is not one: its field after `[ERROR]` is a timestamp, which no exception's name is.
_ERROR = re.compile(r"(?:^|\t)\[ERROR\]\s+(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
# A frame in these files is the runtime's, not the student's.
_RUNTIME_FILES = ("/var/runtime/", "awslambdaric", "bootstrap.py", "/labkit/")
# awslambdaric joins an error's lines with "\r" and indents the traceback with no-break spaces.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
NO_BREAK_SPACE = "\u00a0"


def message_lines(message: str) -> list[str]:
    """A log message's lines ("\\r" or "\\n" apart), no-break spaces read as spaces."""
    return _LINE_BREAK.split(message.rstrip().replace(NO_BREAK_SPACE, " "))


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
class Frame:
    """One traceback frame: where the error passed, and the source line there if the log shows it."""

    file: str
    line: int
    function: str
    source: str = ""

    def __str__(self) -> str:
        where = f'File "{self.file}", line {self.line}, in {self.function}'
        return f"{where}: {self.source}" if self.source else where


@dataclass(frozen=True)
class FunctionError:
    """An invocation's unhandled error as Lambda logged it: type, message and traceback lines."""

    error_type: str
    message: str = ""
    traceback: tuple[str, ...] = ()

    @property
    def frames(self) -> tuple[Frame, ...]:
        """The traceback's frames, outermost first, each with the source line printed under it."""
        frames: list[Frame] = []
        for line in self.traceback:
            if (match := _FRAME.match(line)) is not None:
                frames.append(Frame(match["file"], int(match["line"]), match["function"]))
            elif frames and not frames[-1].source and line.startswith("    ") and line.strip(" ^~"):
                frames[-1] = replace(frames[-1], source=line.strip())
        return tuple(frames)

    @property
    def where(self) -> Frame | None:
        """The innermost frame in the student's code (else the innermost frame), if there is a traceback."""
        frames = self.frames
        own = [f for f in frames if not any(part in f.file for part in _RUNTIME_FILES)]
        return (own or frames)[-1] if frames else None

    @property
    def head(self) -> str:
        """`KeyError: 'orderId'`: the type, and the message if there is one."""
        return f"{self.error_type}: {self.message}" if self.message else self.error_type

    def summary(self) -> str:
        """`KeyError: 'orderId' (code.py, line 12, in lambda_handler)`, as short as the traceback allows."""
        if (where := self.where) is None:
            return self.head
        return f"{self.head} ({where.file.rsplit('/', 1)[-1]}, line {where.line}, in {where.function})"

    def describe(self) -> str:
        """`KeyError: 'x' (File "/var/task/code.py", line 7, in lambda_handler: ...)` as the grader shows it."""
        return f"{self.head} ({self.where})" if self.where else self.head

    def __str__(self) -> str:
        return "\n".join([self.head, *self.traceback])


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


def error_from_payload(payload: Any) -> FunctionError | None:
    """The error in an Invoke response's payload (`errorType`, `errorMessage`, `stackTrace`), or None.

    The JSON log format logs an unhandled error with the same three fields.
    """
    if not isinstance(payload, dict) or ("errorType" not in payload and "errorMessage" not in payload):
        return None
    frames = payload.get("stackTrace")
    entries = frames if isinstance(frames, list) else []
    lines = [line.rstrip() for frame in entries if isinstance(frame, str) for line in frame.splitlines()]
    trace = ("Traceback (most recent call last):", *lines) if lines else ()
    return FunctionError(str(payload.get("errorType") or ""), str(payload.get("errorMessage") or ""), trace)


def parse_errors(messages: Iterable[str]) -> list[FunctionError]:
    """The errors in log event messages (oldest first), in any shape above; a timeout is `Sandbox.Timedout`."""
    reader = _ErrorReader(timeouts=True)
    for message in messages:
        reader.read(message)
    return reader.errors


class _ErrorReader:
    """Lambda's error lines in log order: each error with the traceback lines that follow it."""

    def __init__(self, timeouts: bool) -> None:
        self.errors: list[FunctionError] = []
        # In an invocation's block the timeout line belongs to the block (`Invocation.timed_out_after`).
        self.timeouts = timeouts
        # Whether traceback lines of later events still belong to the last error: written one line per
        # event, a traceback follows its `[ERROR]` line; a JSON error carries its own.
        self.open = False

    def read(self, message: str) -> bool:
        """Read one log event's message; True if any of it was an error's."""
        mine = False
        ours = False  # the rest of an event that began or continued an error is that error's
        for line in message_lines(message):
            if not line.strip():
                continue
            if (found := self._starting(line)) is not None:
                self.errors.append(found)
                self.open = ours = not found.traceback
            elif self.errors and line.strip() in _EXIT_TYPES:
                self.errors[-1] = FunctionError(line.strip(), self.errors[-1].message)
            elif line.startswith(_BOUNDARY):
                self.open = ours = False
                continue
            elif self.open and (ours or _is_traceback_line(line)):
                last = self.errors[-1]
                self.errors[-1] = replace(last, traceback=(*last.traceback, line))
                ours = True
            else:
                continue
            mine = True
        return mine

    def _starting(self, line: str) -> FunctionError | None:
        if (match := _ERROR.search(line)) is not None:
            return FunctionError(match["type"], (match["message"] or "").strip())
        if _EXITED.match(line):
            return FunctionError("Runtime.ExitError", line)
        if self.timeouts and (match := _TIMEOUT.search(line)) is not None:
            return FunctionError("Sandbox.Timedout", f"Task timed out after {match['seconds']} seconds")
        return _json_error(line)


def _json_error(line: str) -> FunctionError | None:
    data = _json_object(line)
    if data is not None and isinstance(data.get("message"), dict):
        data = data["message"]  # the JSON log format may nest the error under "message"
    if data is None or not isinstance(data.get("errorType"), str):
        return None
    return error_from_payload(data)


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object a log line holds, or None if it holds none."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _is_traceback_line(line: str) -> bool:
    return line.startswith(("Traceback (most recent call last):", " ", "\t")) or _FRAME.match(line) is not None


def parse_invocations(events: Iterable[dict[str, Any]]) -> list[Invocation]:
    """Group log events into invocations: each stream's START..END blocks, with their REPORT and timeout lines.

    An event outside any block (the start of the window cut it, or a line the runtime writes at
    init) belongs to no invocation. The error is read by `parse_errors`' rules: one event with the
    traceback joined by "\\r" (awslambdaric) or, as older runtimes write it, one event per line, or
    the JSON log format's fields; all come out the same.
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
        elif (match := _TIMEOUT.match(text)) and match["request"]:
            if (block := done.get(match["request"])) is not None:
                block["events"].append(event)
                block["timeout"] = float(match["seconds"])
        elif (block := open_blocks.get(stream)) is not None:
            block["events"].append(event)
            if _END.match(text):
                open_blocks.pop(stream, None)
    return [_invocation(block) for block in done.values()]


def _invocation(block: dict[str, Any]) -> Invocation:
    reader = _ErrorReader(timeouts=False)
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
    line = _json_object(event.get("message", ""))
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
