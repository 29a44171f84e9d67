"""CloudWatch Logs: the Lambda service writes a function's log events straight into moto's backend, as
AWS's service writes them from inside AWS, instead of one API request per invocation.
"""

from __future__ import annotations

from typing import Any

from moto.logs.models import LogsBackend
from moto.logs.models import logs_backends as _logs_backends

from labkit.localcloud.patching import gone_lines


def put_function_logs(account: str, region: str, group: str, stream: str, events: list[dict[str, Any]]) -> None:
    """Append *events* to a CloudWatch Logs stream, creating the group and stream first if need be.

    The Lambda service writes a function's logs from inside AWS; through the API that was one more
    request per invocation.
    """
    backend = _logs_backends[account][region]
    if group not in backend.groups:
        backend.create_log_group(group, {})
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)
    backend.put_log_events(group, stream, events)


def problems() -> list[str]:
    """What this moto lacks of the CloudWatch Logs internals used here."""
    return gone_lines((LogsBackend, name) for name in ("create_log_group", "create_log_stream", "put_log_events"))
