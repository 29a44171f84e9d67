"""SQS at depth: sending, receiving and deleting cost the same with 10,000 messages queued as with 10.

moto lists every visible message of a queue for each ReceiveMessage, rebuilds the whole list for
each DeleteMessage, and counts every message three times for each SendMessage (it reads one
attribute through the property that builds them all), so a backlog filled and drained slower the
deeper it was. Here the visible messages are walked lazily (a receive stops once it has its batch,
which sits near the front), a delete removes its message where it stands (a received message is
near the front too), a send skips the counts it never reads, and a count (GetQueueAttributes)
reads the clock once for all its counts, not twice per message. What each returns is what moto returns;
tests/test_queues.py compares them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import Any

import moto.sqs.models as _sqs_models
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Queue, SQSBackend

from labkit.localcloud.patching import Patch, PatchTable

_original_delete = Queue.delete_message
_original_send = SQSBackend.send_message
_original_receive = SQSBackend.receive_message
_original_get_attributes = SQSBackend.get_queue_attributes
# A receive that moves a message to its DLQ takes it out of the queue, then puts it in the DLQ; a
# count read in between would see it in neither. AWS's counts are never short of a message.
_moves = threading.RLock()
_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
_sending = threading.local()
# One clock reading for all the counts of a GetQueueAttributes. Read per count, a message whose
# visibility ran out between two of them was neither visible nor in flight: the queue looked empty
# while it held a message, and a wait for a drained queue ended before the redrive.
_reading = threading.local()


class _VisibleMessages:
    """The queue's visible, undelayed messages, walked only as far as the reader goes."""

    __slots__ = ("_messages",)

    def __init__(self, messages: list[Any]) -> None:
        self._messages = messages

    def __iter__(self) -> Iterator[Any]:
        return (m for m in list(self._messages) if m.visible and not m.delayed)

    def __bool__(self) -> bool:
        return any(True for _ in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _messages(self: Queue) -> _VisibleMessages:
    return _VisibleMessages(self._messages)


def _delete_message(self: Queue, receipt_handle: str) -> None:
    if receipt_handle in self.deleted_messages:
        return  # deleting twice is allowed, as in moto and SQS
    for index, message in enumerate(self._messages):
        if message.had_receipt_handle(receipt_handle):
            del self._messages[index]
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]  # as moto's own does
            return
    raise ReceiptHandleIsInvalid()


def _send_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
    _sending.active = True
    try:
        return _original_send(self, *args, **kwargs)
    finally:
        _sending.active = False


def _receive_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
    wait = kwargs.get("wait_seconds_timeout", args[2] if len(args) > 2 else 0)
    if wait:
        # A long poll sleeps inside moto; it must not hold up every other receive and count.
        return _original_receive(self, *args, **kwargs)
    with _moves:
        return _original_receive(self, *args, **kwargs)


def _get_queue_attributes(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
    with _moves:
        _reading.now = _sqs_models.unix_time_millis()
        try:
            return _original_get_attributes(self, *args, **kwargs)
        finally:
            _reading.now = None


def _count(self: Queue, which: str) -> int:
    if getattr(_sending, "active", False):
        return 0  # SendMessage builds every attribute to read one flag; no count is ever used there
    now = getattr(_reading, "now", None) or _sqs_models.unix_time_millis()
    messages = list(self._messages)
    if which == "approximate_number_of_messages_delayed":
        return sum(1 for m in messages if now < m.delayed_until)
    if which == "approximate_number_of_messages_not_visible":
        return sum(1 for m in messages if not now > m.visible_at)
    return sum(1 for m in messages if now > m.visible_at and not now < m.delayed_until)


_PATCHES = PatchTable(
    Patch(Queue, "messages", property(_messages)),
    Patch(Queue, "delete_message", _delete_message),
    Patch(SQSBackend, "send_message", _send_message),
    Patch(SQSBackend, "receive_message", _receive_message),
    Patch(SQSBackend, "get_queue_attributes", _get_queue_attributes),
    *(Patch(Queue, name, property(functools.partial(_count, which=name))) for name in _COUNTS),
)


def install() -> None:
    """Replace moto's per-queue scans; idempotent."""
    _PATCHES.install()


def problems() -> list[str]:
    """What no longer fits in the moto installed."""
    found = _PATCHES.missing()
    if "had_receipt_handle" not in _original_delete.__code__.co_names:
        found.append("moto's Queue.delete_message no longer matches receipt handles")
    for prop, field in ((_sqs_models.Message.visible, "visible_at"), (_sqs_models.Message.delayed, "delayed_until")):
        if field not in prop.fget.__code__.co_names:  # type: ignore[attr-defined]
            found.append(f"moto's SQS Message no longer keeps {field}")
    return found
