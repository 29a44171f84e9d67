"""The benchmark's instruments: per-order publish and store times, the queue's depth, memory, the machine."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from labkit import sqs
from labkit.errors import InputError

if TYPE_CHECKING:
    from labkit.lab import Lab
    from labkit.session import Clients

HOOK_ID = "labkit-bench"
PUBLISH_EVENT = "provide-client-params.sns.PublishBatch"
# The handler's own put: its order id is read on the way in, its success on the way out.
PUT_EVENTS = ("provide-client-params.dynamodb.PutItem", "after-call.dynamodb.PutItem")


class Clock:
    """Publish and store times per orderId, taken from boto3 event hooks on the way in and out."""

    def __init__(self) -> None:
        self.published: dict[str, float] = {}
        self.stored: dict[str, float] = {}
        self._waiting: set[str] = set()
        self._done = threading.Event()
        self._lock = threading.Lock()

    def expect(self, order_ids: Iterable[str]) -> None:
        """Start waiting for these orders to be stored."""
        with self._lock:
            self._waiting = set(order_ids) - self.stored.keys()
            self._done.clear()
            if not self._waiting:
                self._done.set()

    def wait(self, timeout: float) -> bool:
        """True once every expected order is stored; False after *timeout* seconds."""
        return self._done.wait(timeout)

    def on_publish(self, params: dict[str, Any], **_: Any) -> None:
        """Hook: a PublishBatch call is about to go out with these orders."""
        now = time.perf_counter()
        for entry in params.get("PublishBatchRequestEntries", []):
            order_id = _order_id(entry.get("Message"))
            if order_id is not None:
                self.published.setdefault(order_id, now)

    def on_put_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """Hook: the handler is about to put an item; remember whose."""
        context[HOOK_ID] = params.get("Item", {}).get("orderId", {}).get("S")

    def on_put_done(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """Hook: a put returned; a success stores the order now."""
        order_id = context.get(HOOK_ID)
        if order_id is None or "Error" in parsed or http_response.status_code != 200:
            return
        now = time.perf_counter()
        with self._lock:
            self.stored.setdefault(order_id, now)
            self._waiting.discard(order_id)
            if not self._waiting:
                self._done.set()


class Hooks:
    """Puts the clock on the publisher's SNS client and on the boto3 sessions the handler's clients come from."""

    def __init__(self, clock: Clock, lab: Lab) -> None:
        if lab.cloud is None:
            raise InputError("The benchmark times the local cloud's own Lambda runtime: run it on a local cloud.")
        self._runtime = lab.cloud.runtime
        self._sns_events = lab.clients("sns").meta.events
        self._clock = clock
        self._put_hooks: tuple[tuple[str, Callable[..., Any]], ...] = tuple(
            zip(PUT_EVENTS, (clock.on_put_params, clock.on_put_done), strict=True)
        )

    def __enter__(self) -> None:
        self._sns_events.register(PUBLISH_EVENT, self._clock.on_publish, unique_id=HOOK_ID)
        for name, hook in self._put_hooks:
            self._runtime.register_boto_hook(name, hook)

    def __exit__(self, *exc: object) -> None:
        self._sns_events.unregister(PUBLISH_EVENT, unique_id=HOOK_ID)
        for name, hook in self._put_hooks:
            self._runtime.unregister_boto_hook(name, hook)


class DepthSampler:
    """Reads the queue's counts every *interval* seconds in a thread; keeps the deepest seen."""

    def __init__(self, clients: Clients, url: str, interval: float) -> None:
        self._clients, self._url, self._interval = clients, url, interval
        self.max_visible = 0
        self.max_depth = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="labkit-bench-sampler", daemon=True)

    def __enter__(self) -> DepthSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            counts = sqs.get_queue_counts(self._clients, self._url)
            self.max_visible = max(self.max_visible, counts["visible"])
            self.max_depth = max(self.max_depth, counts["visible"] + counts["in_flight"])
            if self._stop.wait(self._interval):
                return


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process in MB; the peak from getrusage where /proc is absent."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def environment() -> dict[str, str]:
    """The versions and machine the figures come from."""
    import boto3
    import moto

    return {
        "python": platform.python_version(),
        "moto": moto.__version__,
        "boto3": boto3.__version__,
        "cpus": str(os.cpu_count()),
        "platform": platform.platform(terse=True),
    }


def _order_id(body: Any) -> str | None:
    try:
        order = json.loads(body)
    except (TypeError, ValueError):
        return None
    return order.get("orderId") if isinstance(order, dict) else None
