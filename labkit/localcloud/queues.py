"""SQS at depth: receiving and deleting cost the same with 10,000 messages queued as with 10.

moto lists every visible message of a queue for each ReceiveMessage and rebuilds the whole list
for each DeleteMessage, so a backlog drained slower the deeper it was. Here the visible messages
are walked lazily (a receive stops once it has its batch, which sits near the front) and a delete
removes its message where it stands (a received message is near the front too). What either
returns is what moto returns; tests/test_queues.py compares them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Queue

_original_messages = Queue.messages
_original_delete = Queue.delete_message


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
            self.deleted_messages.update(message.all_receipt_handles)
            return
    raise ReceiptHandleIsInvalid()


def install() -> None:
    """Replace moto's per-queue scans; idempotent."""
    Queue.messages = property(_messages)  # type: ignore[assignment,method-assign]
    Queue.delete_message = _delete_message  # type: ignore[method-assign]


def problems() -> list[str]:
    """What no longer fits in the moto installed."""
    found = []
    if not isinstance(_original_messages, property):
        found.append("moto's Queue.messages is no longer a property")
    if "had_receipt_handle" not in _original_delete.__code__.co_names:
        found.append("moto's Queue.delete_message no longer matches receipt handles")
    return found
