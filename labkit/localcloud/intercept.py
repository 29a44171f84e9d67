"""Watch or fail the AWS requests that functions make, at the local cloud's side of the wire.

A function runs in its own process and calls the local cloud over HTTP, so labkit cannot hook its
SDK. Instead the local cloud looks at each request as it arrives: those signed with temporary
credentials (`ASIA...`, what Lambda hands every function) are a function's; labkit's own clients
use a long-term key and are never touched. Fault injection answers a chosen call with the error a
service would send; the benchmark times the calls that succeed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.core.responses import BaseResponse


@dataclass(frozen=True)
class Call:
    """One request a function made: the service, the operation and its JSON parameters."""

    service: str
    operation: str
    params: dict[str, Any]


# Returns (HTTP status, error code, message) to fail the call, or None to let it through.
Before = Callable[[Call], "tuple[int, str, str] | None"]
# Told the HTTP status of the answer.
After = Callable[[Call, int], None]

_lock = threading.Lock()
_hooks: list[tuple[str, str, Before | None, After | None]] = []
_original_call_action = BaseResponse.call_action


def add(service: str, operation: str, before: Before | None = None, after: After | None = None) -> Callable[[], None]:
    """Watch *service*'s *operation* as functions call it; returns the function that stops watching."""
    entry = (service, operation, before, after)
    with _lock:
        _hooks.append(entry)
        BaseResponse.call_action = _call_action  # type: ignore[method-assign]

    def remove() -> None:
        with _lock:
            if entry in _hooks:
                _hooks.remove(entry)

    return remove


def _call_action(self: BaseResponse) -> Any:
    hooks = _hooks
    if not hooks or not str(getattr(self, "access_key", "")).startswith("ASIA"):
        return _original_call_action(self)
    service, operation = getattr(self, "service_name", ""), self._get_action()
    mine = [(before, after) for s, o, before, after in hooks if s == service and o == operation]
    if not mine:
        return _original_call_action(self)
    call = Call(service, operation, _params(self.body))
    for before, _ in mine:
        failure = before(call) if before is not None else None
        if failure is not None:
            status, code, message = failure
            error_body = json.dumps({"__type": f"com.amazonaws.{service}#{code}", "message": message})
            return (
                status,
                {"status": status, "x-amzn-errortype": code, "content-type": "application/x-amz-json-1.0"},
                error_body,
            )
    status, headers, body = _original_call_action(self)
    for _, after in mine:
        if after is not None:
            after(call, int(status))
    return status, headers, body


def _params(body: Any) -> dict[str, Any]:
    # DynamoDB's handler has already parsed the body into a dict by the time the call is made.
    if isinstance(body, dict):
        return body
    try:
        value = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
