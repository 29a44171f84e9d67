"""The benchmark's instruments: per-order publish and store times, the queue's depth, memory, CPU time, the machine."""

from __future__ import annotations

import importlib.metadata
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

from labkit.errors import InputError
from labkit.resources import sqs

if TYPE_CHECKING:
    from labkit.lab import Lab
    from labkit.session import Clients

HOOK_ID = "labkit-bench"
PUBLISH_EVENT = "provide-client-params.sns.PublishBatch"
PUBLISH_ONE_EVENT = "provide-client-params.sns.Publish"
# The handler's own put, watched where the local cloud receives it.
PUT_OPERATION = ("dynamodb", "PutItem")


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

    def on_publish_one(self, params: dict[str, Any], **_: Any) -> None:
        """Hook: a Publish call is about to go out with one order."""
        order_id = _order_id(params.get("Message"))
        if order_id is not None:
            self.published.setdefault(order_id, time.perf_counter())

    def on_put(self, call: Any, status: int) -> None:
        """Hook: the handler's put reached the local cloud; a success stores the order now."""
        order_id = call.params.get("Item", {}).get("orderId", {}).get("S")
        if order_id is None or status != 200:
            return
        now = time.perf_counter()
        with self._lock:
            self.stored.setdefault(order_id, now)
            self._waiting.discard(order_id)
            if not self._waiting:
                self._done.set()


class Hooks:
    """Puts the clock on the publisher's SNS client and on the handler's puts as the local cloud receives them."""

    def __init__(self, clock: Clock, lab: Lab) -> None:
        if lab.cloud is None:
            raise InputError("The benchmark times the local cloud's own Lambda runtime: run it on a local cloud.")
        self._sns_events = lab.clients("sns").meta.events
        self._clock = clock
        self._remove_put: Any = None

    def __enter__(self) -> None:
        from labkit.localcloud import intercept

        self._sns_events.register(PUBLISH_EVENT, self._clock.on_publish, unique_id=HOOK_ID)
        self._sns_events.register(PUBLISH_ONE_EVENT, self._clock.on_publish_one, unique_id=HOOK_ID + "-one")
        self._remove_put = intercept.add(*PUT_OPERATION, after=self._clock.on_put)

    def __exit__(self, *exc: object) -> None:
        self._sns_events.unregister(PUBLISH_EVENT, unique_id=HOOK_ID)
        self._sns_events.unregister(PUBLISH_ONE_EVENT, unique_id=HOOK_ID + "-one")
        if self._remove_put is not None:
            self._remove_put()


class _Sampler:
    """Calls `sample()` every *interval* seconds in a thread while the `with` block runs."""

    def __init__(self, interval: float, name: str) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self._interval):
                return

    def sample(self) -> None:
        """Take one reading."""
        raise NotImplementedError


class DepthSampler(_Sampler):
    """Reads the queue's counts every *interval* seconds in a thread; keeps the deepest seen."""

    def __init__(self, clients: Clients, url: str, interval: float) -> None:
        super().__init__(interval, "labkit-bench-sampler")
        self._clients, self._url = clients, url
        self.max_visible = 0
        self.max_depth = 0

    def sample(self) -> None:
        """Read the queue's counts once."""
        counts = sqs.get_queue_counts(self._clients, self._url)
        self.max_visible = max(self.max_visible, counts["visible"])
        self.max_depth = max(self.max_depth, counts["visible"] + counts["in_flight"])


class RssSampler(_Sampler):
    """Samples this process's RSS, and that plus the PSS of the processes *pids* names, every *interval* seconds."""

    def __init__(self, pids: Callable[[], Iterable[int]], interval: float) -> None:
        super().__init__(interval, "labkit-bench-rss")
        self._pids = pids
        self.peak_mb = 0.0
        self.peak_tree_mb = 0.0

    def sample(self) -> None:
        """Read the memory once."""
        own = rss_mb("VmRSS")
        others = sum(process_pss_mb(pid) for pid in self._pids())
        self.peak_mb = max(self.peak_mb, own)
        self.peak_tree_mb = max(self.peak_tree_mb, own + others)


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


def process_pss_mb(pid: int) -> float:
    """Proportional set size of process *pid* in MB (pages shared with its fork server counted once); 0 once gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def tree_cpu_seconds(pid: int) -> tuple[float, list[int]]:
    """CPU seconds (user + system) used by *pid* and every live descendant, and those processes' ids.

    A descendant that has ended and been waited for is counted in its parent's cutime/cstime, so
    the sum misses only what a process still unreaped used. Linux only (/proc).
    """
    parents, times = _processes()
    if pid not in times:
        raise ProcessLookupError(pid)
    tree = {pid}
    while True:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        if not found:
            break
        tree |= found
    return sum(times[p] for p in tree), sorted(tree)


def alive(pid: int) -> bool:
    """True while process *pid* exists and has not ended (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split()[0] not in ("Z", "X")


def _processes() -> tuple[dict[int, int], dict[int, float]]:
    """Every process's parent id and CPU seconds (its own and its reaped children's)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
        fields = text[text.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        times[int(entry)] = (utime + stime + cutime + cstime) / tick
    return parents, times


def environment() -> dict[str, str]:
    """The versions and machine the figures come from."""
    return {
        "python": platform.python_version(),
        "moto": importlib.metadata.version("moto"),
        "boto3": importlib.metadata.version("boto3"),
        "cpus": str(os.cpu_count()),
        "platform": platform.platform(terse=True),
    }


def _order_id(body: Any) -> str | None:
    try:
        order = json.loads(body)
    except (TypeError, ValueError):
        return None
    return order.get("orderId") if isinstance(order, dict) else None
