"""The function's real error, read from its CloudWatch log group the way Lambda writes it there.

Lambda's Python runtime logs an unhandled exception as `[ERROR] KeyError: 'x'`, followed by
`Traceback (most recent call last):` and `  File "/var/task/code.py", line N, in lambda_handler`
lines; on AWS these are one log event whose lines are separated by "\\r" (or "\\n"), elsewhere each
line may be an event of its own. With the JSON log format the same facts are the fields
errorType, errorMessage and stackTrace. A timeout is the line `Task timed out after N seconds`.
https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code
from labkit.session import Clients

_LINES = re.compile(r"\r\n|\r|\n")
# At the start of a line, or after a tab-separated prefix (a timestamp and request id) some runtimes add.
_ERROR = re.compile(r"(?:^|\t)\[ERROR\]\s+(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)\s*$')
_TIMEOUT = re.compile(r"Task timed out after (?P<seconds>[\d.]+) seconds")
_BOUNDARY = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START")
# A frame in these files is the runtime's, not the student's.
_RUNTIME_FILES = ("/var/runtime/", "awslambdaric", "bootstrap.py", "/labkit/")
CLOCK_SKEW_MS = 1_000


@dataclass(frozen=True)
class Frame:
    """One traceback line: where the error passed, and the source line there if the log shows it."""

    file: str
    line: int
    function: str
    source: str = ""

    def __str__(self) -> str:
        where = f'File "{self.file}", line {self.line}, in {self.function}'
        return f"{where}: {self.source}" if self.source else where


@dataclass
class FunctionError:
    """One failed invocation as its log shows it: the error's type and message, and its traceback."""

    error_type: str
    message: str = ""
    frames: list[Frame] = field(default_factory=list)

    @property
    def where(self) -> Frame | None:
        """The innermost frame in the student's code (else the innermost frame), if there is a traceback."""
        own = [f for f in self.frames if not any(part in f.file for part in _RUNTIME_FILES)]
        frames = own or self.frames
        return frames[-1] if frames else None

    def describe(self) -> str:
        """`KeyError: 'x' (File "/var/task/code.py", line 7, in lambda_handler: ...)` as messages show it."""
        text = f"{self.error_type}: {self.message}" if self.message else self.error_type
        return f"{text} ({self.where})" if self.where else text


def parse_errors(messages: Iterable[str]) -> list[FunctionError]:
    """The errors in log event messages (oldest first), whichever of the shapes above they take."""
    errors: list[FunctionError] = []
    current: FunctionError | None = None
    for message in messages:
        for line in _LINES.split(message):
            stripped = line.strip()
            if not stripped:
                continue
            found = _from_json(stripped) or _from_error_line(stripped) or _from_timeout(stripped)
            if found is not None:
                errors.append(found)
                current = found if not found.frames else None
                continue
            if current is None:
                continue
            frame = _FRAME.match(line)
            if frame:
                current.frames.append(Frame(frame["file"], int(frame["line"]), frame["function"]))
            elif stripped.startswith(_BOUNDARY):
                current = None
            elif current.frames and not current.frames[-1].source and line.startswith("    "):
                last = current.frames[-1]
                current.frames[-1] = Frame(last.file, last.line, last.function, stripped)
    return errors


def _from_error_line(line: str) -> FunctionError | None:
    match = _ERROR.search(line)
    return FunctionError(match["type"], (match["message"] or "").strip()) if match else None


def _from_timeout(line: str) -> FunctionError | None:
    match = _TIMEOUT.search(line)
    return FunctionError("Sandbox.Timedout", f"Task timed out after {match['seconds']} seconds") if match else None


def _from_json(line: str) -> FunctionError | None:
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("message"), dict):
        data = data["message"]  # the JSON log format may nest the error under "message"
    if not isinstance(data, dict) or not isinstance(data.get("errorType"), str):
        return None
    error = FunctionError(data["errorType"], str(data.get("errorMessage") or ""))
    trace = data.get("stackTrace")
    for entry in trace if isinstance(trace, list) else []:
        lines = _LINES.split(str(entry))
        frame = _FRAME.match(lines[0])
        if frame:
            source = lines[1].strip() if len(lines) > 1 else ""
            error.frames.append(Frame(frame["file"], int(frame["line"]), frame["function"], source))
    return error


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
    reasons = []
    for message in messages:
        for line in _LINES.split(message):
            try:
                data = json.loads(line) if line.lstrip().startswith("{") else None
            except ValueError:
                continue
            if (
                isinstance(data, dict)
                and data.get("orderId") == order_id
                and data.get("outcome") in ("invalid", "error")
            ):
                reasons.append(f"{data['outcome']}: {data.get('reason')}")
    return reasons


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
