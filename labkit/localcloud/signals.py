"""Wake-ups for the local Lambda service, so its pollers sleep until there is work.

AWS's pollers long-poll SQS; the local ones wait on this module instead: moto tells it when a
message is sent, a visibility timeout is changed, or an event source mapping is created, updated
or deleted, and `next_visible_in` says when the next hidden message of a queue comes back. Idle,
the service does nothing at all. This is moto-internal, hence here in the local cloud.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.sqs.models import Queue, SQSBackend
from moto.sqs.models import sqs_backends as _sqs_backends

_changed = threading.Condition()
_generation = 0
_installed = False


def generation() -> int:
    """A number that grows at every change; pass it to `wait` to sleep until the next one."""
    return _generation


def notify() -> None:
    """Wake everything waiting in `wait`."""
    global _generation
    with _changed:
        _generation += 1
        _changed.notify_all()


def wait(seen: int, timeout: float | None) -> None:
    """Sleep until something changed after generation *seen*, or *timeout* seconds (None: no limit)."""
    with _changed:
        _changed.wait_for(lambda: _generation != seen, timeout)


def next_visible_in(queue_arn: str, now_ms: float) -> float | None:
    """Seconds until the next hidden or delayed message of the queue becomes visible; None if it holds none."""
    _, _, _, region, account, name = queue_arn.split(":", 5)
    try:
        queue = _sqs_backends[account][region].queues[name]
    except KeyError:
        return None
    soonest: float | None = None
    for message in list(queue._messages):
        at = max(message.visible_at, getattr(message, "delayed_until", 0) or 0)
        soonest = at if soonest is None else min(soonest, at)
    if soonest is None:
        return None
    return max(0.0, (soonest - now_ms) / 1000)


def _notifying(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        finally:
            notify()

    wrapper.labkit_signals = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Make moto report the changes the pollers wait for; idempotent."""
    global _installed
    if _installed:
        return
    for owner, name in (
        (Queue, "add_message"),
        (SQSBackend, "change_message_visibility"),
        (LambdaBackend, "create_event_source_mapping"),
        (LambdaBackend, "update_event_source_mapping"),
        (LambdaBackend, "delete_event_source_mapping"),
    ):
        method = getattr(owner, name)
        if not getattr(method, "labkit_signals", False):
            setattr(owner, name, _notifying(method))
    _installed = True
