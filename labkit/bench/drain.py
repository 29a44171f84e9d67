"""Backlog drain: does a deep queue drain as fast as a shallow one, in bounded memory?

Each backlog is published with the trigger disabled (nothing consumes it), then the trigger is
enabled and the drain is timed from that moment to the last order stored. The small backlog is
drained several times and its median rate kept, as a drain of a hundred orders lasts well under a
second and one busy moment of the shared machine would decide it. Memory is sampled while the
large backlog is published and drained: this process's RSS, and with the environments' added.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from labkit.bench.pipeline import RUN_TIMEOUT_S, wait_stored
from labkit.bench.probes import Clock, RssSampler, rss_mb
from labkit.errors import InputError
from labkit.lab import Lab
from labkit.orders import generate_orders

SMALL_REPEATS = 3


@dataclass(frozen=True)
class BacklogResult:
    """Drain rates of a small and a large backlog, their ratio, and memory while the large one drained."""

    batch_size: int
    small_orders: int
    large_orders: int
    small_per_s: float
    large_per_s: float
    ratio: float
    large_seconds: float
    publish_seconds: float
    rss_before_mb: float
    peak_rss_mb: float
    peak_rss_with_environments_mb: float


def measure_backlog(
    lab: Lab,
    clock: Clock,
    small: int = 100,
    large: int = 10_000,
    batch_size: int | None = None,
    sample_interval: float = 0.05,
) -> BacklogResult:
    """Drain a *small* and a *large* backlog at *batch_size* (default the lab's) and compare their rates."""
    if not 1 <= small <= large:
        raise InputError(f"Give backlog sizes with 1 <= small <= large (got {small} and {large}).")
    assert lab.cloud is not None
    size = batch_size or lab.config.batch_size
    sized = Lab(lab.config.with_(batch_size=size), lab.clients, cloud=lab.cloud)
    small_rates = []
    for repeat in range(SMALL_REPEATS):
        rate, _, _ = _drain(sized, clock, list(generate_orders(small, prefix=f"BACKLOG-S{repeat}")))
        small_rates.append(rate)
    runtime = lab.cloud.runtime
    rss_before = rss_mb("VmRSS")
    with RssSampler(runtime.process_ids, sample_interval) as sampler:
        large_rate, seconds, published = _drain(sized, clock, list(generate_orders(large, prefix="BACKLOG-L")))
    small_rate = statistics.median(small_rates)
    return BacklogResult(
        batch_size=size,
        small_orders=small,
        large_orders=large,
        small_per_s=round(small_rate, 1),
        large_per_s=round(large_rate, 1),
        ratio=round(large_rate / small_rate, 3),
        large_seconds=round(seconds, 2),
        publish_seconds=round(published, 2),
        rss_before_mb=round(rss_before, 1),
        peak_rss_mb=round(sampler.peak_mb, 1),
        peak_rss_with_environments_mb=round(sampler.peak_tree_mb, 1),
    )


def _drain(lab: Lab, clock: Clock, orders: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Publish *orders* behind a disabled trigger, enable it, time the drain: (orders/s, drain s, publish s)."""
    ids = [order["orderId"] for order in orders]
    lab.ensure_trigger(enabled=False)
    clock.expect(ids)
    begin = time.perf_counter()
    lab.publish_orders(orders)
    published = time.perf_counter() - begin
    start = time.perf_counter()
    lab.ensure_trigger(enabled=True)
    wait_stored(clock, ids)
    seconds = max(clock.stored[i] for i in ids) - start
    lab.wait_until_drained(timeout=RUN_TIMEOUT_S)
    return len(ids) / seconds, seconds, published
