"""The platform's lines of a function's log, and their way to CloudWatch Logs.

Lambda writes lines of its own around what the function and the runtime client wrote (START
before, END and REPORT after, INIT_REPORT when initialisation fails) and sends every line as an
event to the log group `/aws/lambda/<function>`, one log stream per execution environment:
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from labkit.localcloud.environment import Outcome
from labkit.session import Clients

log = logging.getLogger(__name__)


def log_text(outcome: Outcome, settings: dict[str, Any]) -> str:
    """The invocation's log as Lambda writes it: init output, START, output, END, REPORT.

    START RequestId: <id> Version: $LATEST
    ...what the function and the runtime client wrote...
    END RequestId: <id>
    REPORT RequestId: <id>  Duration: 1.23 ms  Billed Duration: 2 ms  Memory Size: 128 MB  Max Memory Used: 40 MB  Init Duration: 80.00 ms
    """
    request_id = outcome.request_id
    lines = list(outcome.init_lines)
    if outcome.error_kind == "init" and outcome.error is not None:
        lines.append(
            f"INIT_REPORT Init Duration: {outcome.init_ms or 0:.2f} ms\tPhase: init\tStatus: error\t"
            f"Error Type: {outcome.error.get('errorType')}"
        )
    lines.append(f"START RequestId: {request_id} Version: {settings.get('Version', '$LATEST')}")
    lines.extend(outcome.lines)
    if outcome.error_kind == "timeout" and outcome.error is not None:
        lines.append(outcome.error["errorMessage"])
    lines.append(f"END RequestId: {request_id}")
    lines.append(_report_line(outcome, settings))
    return "\n".join(lines) + "\n"


def _report_line(outcome: Outcome, settings: dict[str, Any]) -> str:
    """The REPORT line. Since August 2025 the billed duration includes a cold start's init:
    https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/
    """
    init = outcome.init_ms
    billed = max(1, math.ceil(outcome.duration_ms + (init or 0.0)))
    parts = [
        f"REPORT RequestId: {outcome.request_id}",
        f"Duration: {outcome.duration_ms:.2f} ms",
        f"Billed Duration: {billed} ms",
        f"Memory Size: {settings.get('MemorySize', 128)} MB",
        f"Max Memory Used: {outcome.max_memory_mb} MB",
    ]
    if init is not None:
        parts.append(f"Init Duration: {init:.2f} ms")
    if outcome.error_kind == "timeout":
        parts.append("Status: timeout")
    elif outcome.error_kind in ("init", "exit", "memory") and outcome.error is not None:
        parts.extend(("Status: error", f"Error Type: {outcome.error.get('errorType')}"))
    return "\t".join(parts)


class LogWriter:
    """Writes invocations' logs to CloudWatch Logs: through *sink* when given, else the Logs API."""

    def __init__(self, clients: Clients, sink: Callable[[str, str, list[dict[str, Any]]], None] | None = None) -> None:
        self._clients = clients
        self._sink = sink
        self._streams: set[tuple[str, str]] = set()

    def put(self, function_name: str, stream: str, text: str) -> None:
        """Write *text* to the function's log group, one event per line, in *stream*."""
        group = f"/aws/lambda/{function_name}"
        now = int(time.time() * 1000)
        # One event per line of output; a "\r" keeps a traceback in one event, as on AWS.
        events = [{"timestamp": now, "message": line} for line in text.split("\n") if line]
        if not events:
            return
        if self._sink is not None:
            self._sink(group, stream, events)
            return
        logs = self._clients("logs")
        try:
            if (group, stream) not in self._streams:
                for create in (
                    lambda: logs.create_log_group(logGroupName=group),
                    lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream),
                ):
                    try:
                        create()
                    except ClientError as exc:
                        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                            raise
                self._streams.add((group, stream))
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except ClientError as exc:
            self._streams.discard((group, stream))
            log.debug("could not write logs of %s: %s", function_name, exc)
