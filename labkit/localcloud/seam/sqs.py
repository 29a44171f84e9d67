"""SQS, for speed: moto's per-message work replaced with equivalents that return what moto returns.

moto rebuilds every attribute of a queue (three scans of all its messages, each message reading the
clock through two datetimes) for each message it sends or receives, and keeps every SQS message it
ever made, so the pipeline slowed down as the queue grew and its memory grew with every order.
`tests/test_seam.py` compares each replacement with moto's own.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime
from typing import Any

import moto.sqs.models as _sqs_models
from moto.core.common_models import BaseModel
from moto.sqs.models import Queue, SQSBackend

from labkit.localcloud import lifecycle
from labkit.localcloud.patching import Patch, PatchTable

_original_retention_check = SQSBackend.is_message_valid_based_on_retention_period
_original_sqs_unix_time = _sqs_models.unix_time
_original_sqs_unix_time_millis = _sqs_models.unix_time_millis
_original_camelcase = _sqs_models.camelcase_to_underscores


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def _unix_time(dt: datetime | None = None) -> float:
    return time.time() if dt is None else _original_sqs_unix_time(dt)


def _unix_time_millis(dt: datetime | None = None) -> float:
    return time.time() * 1000.0 if dt is None else _original_sqs_unix_time_millis(dt)


# A pure function of a name, called 14 times each time moto builds a queue's attributes.
@functools.lru_cache(maxsize=256)
def _camelcase_to_underscores(argument: str) -> str:
    return _original_camelcase(argument)


def _retention_ok(self: SQSBackend, queue_name: str, message: Any) -> bool:
    # moto reads the period through get_queue_attributes, which rebuilds all attributes three times.
    queue = self.get_queue(queue_name)
    retention = queue.message_retention_period  # type: ignore[attr-defined]  # moto sets it from BASE_ATTRIBUTES
    return retention + message.sent_timestamp / 1000 > _sqs_models.unix_time()


_PATCHES = PatchTable(
    Patch(SQSBackend, "is_message_valid_based_on_retention_period", _retention_ok),
    Patch(_sqs_models, "unix_time", _unix_time),
    Patch(_sqs_models, "unix_time_millis", _unix_time_millis),
    Patch(_sqs_models, "camelcase_to_underscores", _camelcase_to_underscores),
    # moto keeps every model instance it ever made, for its dashboard: each SQS message twice (the
    # copy a receive hands out too), bodies and all, long after it was deleted, about 3 KB an order.
    # Message inherits BaseModel's __new__; the one it gets here is its own, checked in problems().
    Patch(_sqs_models.Message, "__new__", _untracked_new, added=True),
)


def install() -> None:
    """Put the equivalents in moto's place."""
    _PATCHES.install()


def problems() -> list[str]:
    """What this moto lacks of the SQS internals replaced here."""
    found = _PATCHES.missing()
    # lifecycle wraps Queue.attributes; the name is read by the property moto wrote.
    if "camelcase_to_underscores" not in lifecycle.moto_queue_attributes().__code__.co_names:
        found.append("moto's Queue no longer names its attributes through camelcase_to_underscores")
    if "instances_tracked" not in BaseModel.__new__.__code__.co_names or (
        "__new__" in vars(_sqs_models.Message) and _sqs_models.Message.__new__ is not _untracked_new
    ):
        found.append("moto's BaseModel no longer tracks instances the way labkit stops it for SQS messages")
    if "MessageRetentionPeriod" not in Queue.BASE_ATTRIBUTES:
        found.append("moto's Queue no longer keeps MessageRetentionPeriod")
    for prop in (_sqs_models.Message.visible, _sqs_models.Message.delayed):
        if "unix_time_millis" not in prop.fget.__code__.co_names:  # type: ignore[attr-defined]
            found.append("moto's SQS Message no longer reads the clock through unix_time_millis")
    return found
