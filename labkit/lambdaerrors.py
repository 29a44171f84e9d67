"""A Lambda function's unhandled error, read from its log lines or an Invoke response into one `FunctionError`.

The runtime logs an unhandled exception as the event `[ERROR] <type>: <message>` followed by the
traceback (https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html), and the JSON log
format logs it as the fields errorType, errorMessage and stackTrace, the same three an Invoke
response's payload holds
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html).
On AWS the error is one log event whose lines are separated by "\\r"; elsewhere each line may be an
event of its own, and some runtimes put a tab-separated timestamp and request id before `[ERROR]`:
every shape comes out the same `FunctionError`. A timeout is the line `Task timed out after N seconds`,
and a process that ended mid-invocation is `Runtime.ExitError`. Pure functions over log messages;
`labkit.lambdalog` groups the events into invocations with `ErrorReader`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

# A traceback written one line per event ends where an invocation's block opens or closes.
_BOUNDARY = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START", "INIT_REPORT")
# `<timestamp> <request id> Task timed out after 3.00 seconds`, written by Lambda when it stops a function.
TIMEOUT = re.compile(r"(?:^\S+\s+(?P<request>\S+)\s+)?Task timed out after (?P<seconds>[\d.]+) seconds")
# `RequestId: <id> Error: Runtime exited with error: exit status 1`, then `Runtime.ExitError` (or
# `Runtime.OutOfMemory`): Lambda's lines when the function's process ended during the invocation.
_EXITED = re.compile(r"^RequestId: \S+ Error: Runtime exited with error: .+$")
_EXIT_TYPES = ("Runtime.ExitError", "Runtime.OutOfMemory")
# The runtime's line for an unhandled exception, "[ERROR] KeyError: 'orderId'", at the start of a line or
# after a tab-separated prefix some runtimes add. A `logging.error` record ("[ERROR]\t<time>\t<request
# id>\t<message>") is not one: its field after `[ERROR]` is a timestamp, which no exception's name is.
_ERROR = re.compile(r"(?:^|\t)\[ERROR\]\s+(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
# Lambda's message for a process that ended names the request first; a one-line summary need not.
_REQUEST_PREFIX = re.compile(r"(?<=: )RequestId: \S+ Error: ")
# A frame in these files is the runtime's, not the student's.
_RUNTIME_FILES = ("/var/runtime/", "awslambdaric", "bootstrap.py", "/labkit/")
# awslambdaric joins an error's lines with "\r" and indents the traceback with no-break spaces.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
NO_BREAK_SPACE = "\u00a0"


def message_lines(message: str) -> list[str]:
    """A log message's lines ("\\r" or "\\n" apart), no-break spaces read as spaces."""
    return _LINE_BREAK.split(message.rstrip().replace(NO_BREAK_SPACE, " "))


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
        head = _REQUEST_PREFIX.sub("", self.head, count=1)
        if (where := self.where) is None:
            return head
        return f"{head} ({where.file.rsplit('/', 1)[-1]}, line {where.line}, in {where.function})"

    def advice(self) -> str:
        """What to do about this error, in one or two sentences (see `advice`)."""
        return advice(self.error_type, self.message)

    def describe(self) -> str:
        """`KeyError: 'x' (File "/var/task/code.py", line 7, in lambda_handler: ...)` as the grader shows it."""
        return f"{self.head} ({self.where})" if self.where else self.head

    def __str__(self) -> str:
        return "\n".join([self.head, *self.traceback])


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
    reader = ErrorReader(timeouts=True)
    for message in messages:
        reader.read(message)
    return reader.errors


class ErrorReader:
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
        if self.timeouts and (match := TIMEOUT.search(line)) is not None:
            return FunctionError("Sandbox.Timedout", f"Task timed out after {match['seconds']} seconds")
        return _json_error(line)


def _json_error(line: str) -> FunctionError | None:
    data = json_object(line)
    if data is not None and isinstance(data.get("message"), dict):
        data = data["message"]  # the JSON log format may nest the error under "message"
    if data is None or not isinstance(data.get("errorType"), str):
        return None
    return error_from_payload(data)


def json_object(text: str) -> dict[str, Any] | None:
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


# What to do about the errors Lambda itself reports, by type; anything else is the handler's own
# exception, raised at the line its traceback names. The types are those of
# https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html and the Invoke API's errors
# (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors).
_ADVICE = {
    "Runtime.ImportModuleError": (
        "Lambda could not import the handler's module. A function's package holds only what you deployed: "
        "Python's standard library and boto3 are there, other libraries (pandas, requests) are not. Remove the "
        "import, or deploy the library with the code."
    ),
    "Runtime.UserCodeSyntaxError": (
        "code.py does not compile, so no invocation can run it: fix the line the error names "
        "(`python -m py_compile lambda/code.py` finds it before you deploy)."
    ),
    "Runtime.HandlerNotFound": (
        "The function's Handler setting names a function that code.py does not define: set it to "
        "code.lambda_handler (Runtime settings)."
    ),
    "Sandbox.Timedout": (
        "The handler ran for the function's whole Timeout and was stopped: look for a loop that never ends or a "
        "call that waits, or raise the Timeout (keep the queue's visibility timeout at six times it)."
    ),
    "Runtime.ExitError": (
        "The handler ended its own process (sys.exit, os._exit or a crash) before it returned: return a value "
        "or raise an exception instead, so Lambda can report it."
    ),
    "Runtime.OutOfMemory": (
        "The handler used more memory than the function's MemorySize allows: process one record at a time, or "
        "raise MemorySize."
    ),
    "Runtime.MarshalError": (
        "The handler returned a value JSON cannot encode (a set, a Decimal, a datetime): return plain dicts, "
        "lists, strings and numbers."
    ),
}


def advice(error_type: str, message: str = "") -> str:
    """What a student should do about a function error of *error_type*: the fix, in a sentence or two."""
    if error_type == "Runtime.ImportModuleError" and re.search(r"No module named '(code|lambda_function)'", message):
        return (
            "The function's Handler setting names a file that is not in its package: set it to "
            "code.lambda_handler (the file code.py, the function lambda_handler)."
        )
    if error_type in _ADVICE:
        return _ADVICE[error_type]
    if error_type.startswith("Task timed out") or error_type == "Sandbox.Timedout":
        return _ADVICE["Sandbox.Timedout"]
    return "The handler raised it: fix the line the traceback names."
