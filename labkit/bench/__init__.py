"""Benchmark the local cloud: the figures of its performance goals, measured in one run.

`python -m labkit.bench` measures, on a fresh in-process local cloud and then on a `labkit serve`
cloud (`LocalCloud.server()` in this process):

- cold start and warm overhead of an empty handler, through the Invoke API and at the runtime
  (`invocations.py`);
- end-to-end throughput SNS → SQS → Lambda → DynamoDB per trigger batch size, as a ratio to bare
  put_item over the endpoint the function itself calls (`pipeline.py`);
- publish → stored latency of single orders, each stored before the next is published;
- a large backlog's drain rate against a small one's, with peak memory (`drain.py`);
- idle CPU of `labkit serve` as a subprocess with the pipeline deployed (`idle.py`).

What is timed: an order is *published* when the Publish or PublishBatch call that carries it
starts (a boto3 event hook on the publisher's client), and *stored* when the handler's PutItem
for it is answered with success where the local cloud receives it (`labkit.localcloud.intercept`);
nothing in the pipeline changes to be measured. The bench may import labkit's facade and the
local cloud, and nothing imports it but the CLI and notebooks.

May import every layer below it (it drives the local cloud directly to time it); only the CLI sits above.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from labkit.bench.drain import BacklogResult, measure_backlog
from labkit.bench.idle import IdleResult, measure_idle
from labkit.bench.invocations import InvocationResult, Spread, measure_invocations
from labkit.bench.pipeline import (
    LatencyResult,
    ModeResult,
    RunResult,
    measure_mode,
    measure_put_item,
)
from labkit.bench.probes import Clock, Hooks, environment, rss_mb
from labkit.config import Config
from labkit.errors import InputError
from labkit.lab import Lab
from labkit.orders import generate_orders

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BacklogResult",
    "BenchResult",
    "IdleResult",
    "InvocationResult",
    "LatencyResult",
    "ModeResult",
    "RunResult",
    "Sizes",
    "compare_batch_sizes",
    "measure_put_item",
    "run_benchmark",
]

DEFAULT_ORDERS = 1000
DEFAULT_BATCH_SIZES = (1, 10)
SAMPLE_INTERVAL_S = 0.05
MODES = ("in-process", "serve")


@dataclass(frozen=True)
class Sizes:
    """How much work each figure gets; the defaults are the goals' own sizes."""

    orders: int = DEFAULT_ORDERS
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    bound_orders: int | None = None
    warm_invocations: int = 200
    cold_invocations: int = 20
    latency_orders: int = 50
    backlog_small: int = 100
    backlog_large: int = 10_000
    backlog_batch_size: int = 10
    idle_seconds: float = 30.0
    modes: tuple[str, ...] = MODES

    def check(self) -> None:
        """Refuse sizes no run can have."""
        check_sizes(self.orders, self.batch_sizes)
        check_sizes(1, (self.backlog_batch_size,))
        bad = sorted(set(self.modes) - set(MODES))
        if bad or not self.modes:
            raise InputError(f"Modes {bad or '(none)'} are not known: use {', '.join(MODES)}.")
        for name in ("warm_invocations", "cold_invocations", "latency_orders", "backlog_small"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1 (got {getattr(self, name)}).")
        if self.backlog_large < self.backlog_small:
            raise InputError(
                f"The large backlog ({self.backlog_large}) must be at least the small one ({self.backlog_small})."
            )
        if self.idle_seconds < 0:
            raise InputError(f"The idle window must be 0 (skip it) or more seconds (got {self.idle_seconds}).")


@dataclass(frozen=True)
class BenchResult:
    """Everything one benchmark measured."""

    sizes: Sizes
    invocations: InvocationResult
    modes: tuple[ModeResult, ...]
    backlog: BacklogResult
    idle: IdleResult | None
    rss_start_mb: float
    peak_rss_mb: float
    seconds: float
    environment: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, as `--json` prints it."""
        return asdict(self)

    def table(self) -> str:
        """Every figure as Markdown (what the README shows)."""
        inv = self.invocations
        lines = [
            "| empty handler | p50 ms | p95 ms | max ms | n |",
            "|---|---:|---:|---:|---:|",
            _spread_row("warm, runtime (overhead)", inv.warm_runtime),
            _spread_row("warm, Invoke API", inv.warm_api),
            _spread_row("cold, runtime", inv.cold_runtime),
            _spread_row("cold, Invoke API", inv.cold_api),
            _spread_row("cold, Init Duration", inv.cold_init),
            "",
            "| mode | put_item bound/s | batch size | orders | orders/s | of bound | p50 ms | p95 ms | invocations |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for mode in self.modes:
            for r in mode.runs:
                lines.append(
                    f"| {mode.mode} | {mode.put_item_per_s:.0f} | {r.batch_size} | {r.orders} | "
                    f"{r.orders_per_s:.0f} | {r.ratio_to_bound:.2f} | {r.latency_p50_ms:.0f} | "
                    f"{r.latency_p95_ms:.0f} | {r.invocations} |"
                )
        lines += [
            "",
            "| mode | single orders | publish → stored p50 ms | p95 ms | max ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for mode in self.modes:
            if mode.latency is not None:
                lat = mode.latency
                lines.append(f"| {mode.mode} | {lat.orders} | {lat.p50_ms:.0f} | {lat.p95_ms:.0f} | {lat.max_ms:.0f} |")
        b = self.backlog
        lines += [
            "",
            f"backlog at batch size {b.batch_size}: {b.small_orders} orders drain at {b.small_per_s:.0f}/s, "
            f"{b.large_orders} at {b.large_per_s:.0f}/s (ratio {b.ratio:.2f}); peak RSS {b.peak_rss_mb:.0f} MB "
            f"(before {b.rss_before_mb:.0f} MB; {b.peak_rss_with_environments_mb:.0f} MB with the environments); "
            f"publishing the {b.large_orders} behind the disabled trigger took {b.publish_seconds:.1f} s",
        ]
        if self.idle is not None:
            lines.append(
                f"idle `labkit serve` with the pipeline deployed: {self.idle.percent_of_core:.2f}% of a core "
                f"over {self.idle.seconds:.0f} s ({self.idle.cpu_seconds:.2f} CPU s, {self.idle.processes} processes)"
            )
        lines.append(f"peak RSS {self.peak_rss_mb:.0f} MB (start {self.rss_start_mb:.0f} MB); {self.seconds:.1f} s")
        return "\n".join(lines)


def _spread_row(label: str, spread: Spread) -> str:
    return f"| {label} | {spread.p50_ms:.2f} | {spread.p95_ms:.2f} | {spread.max_ms:.2f} | {spread.n} |"


def run_benchmark(sizes: Sizes | None = None, config: Config | None = None) -> BenchResult:
    """Measure every figure on fresh local clouds; see the module docstring."""
    sizes = sizes or Sizes()
    sizes.check()
    started = time.perf_counter()
    config = config or Config.from_env({})
    rss_start = rss_mb("VmRSS")
    modes = []
    invocations = backlog = None
    if "in-process" in sizes.modes:
        from labkit.localcloud import LocalCloud

        with LocalCloud.in_process(config) as cloud:
            lab = Lab(cloud.config, cloud.clients, cloud=cloud)
            invocations, mode, backlog = _measure_cloud(lab, "in-process", sizes, with_backlog=True)
            modes.append(mode)
    if "serve" in sizes.modes:
        from labkit.localcloud import LocalCloud

        with LocalCloud.server(config) as cloud:
            lab = Lab(cloud.config, cloud.clients, cloud=cloud)
            first, mode, later = _measure_cloud(lab, "serve", sizes, with_backlog=backlog is None)
            invocations, backlog = invocations or first, backlog or later
            modes.append(mode)
    assert invocations is not None and backlog is not None
    idle = measure_idle(sizes.idle_seconds) if sizes.idle_seconds else None
    return BenchResult(
        sizes=sizes,
        invocations=invocations,
        modes=tuple(modes),
        backlog=backlog,
        idle=idle,
        rss_start_mb=round(rss_start, 1),
        peak_rss_mb=round(rss_mb("VmHWM"), 1),
        seconds=round(time.perf_counter() - started, 2),
        environment=environment(),
    )


def _measure_cloud(
    lab: Lab, mode: str, sizes: Sizes, with_backlog: bool
) -> tuple[InvocationResult | None, ModeResult, BacklogResult | None]:
    clock = Clock()
    # Hooks first: the publisher's client keeps the hooks it has when the pipeline is built.
    with Hooks(clock, lab):
        lab.up()
        invocations = None
        if mode == "in-process" or "in-process" not in sizes.modes:
            invocations = measure_invocations(lab, sizes.warm_invocations, sizes.cold_invocations)
        # The pipeline function's first invocation unpacks its code and makes its client: no figure's part.
        measure_mode(lab, clock, f"{mode}-warmup", 1, (lab.config.batch_size,), bound_orders=1)
        result = measure_mode(
            lab,
            clock,
            mode,
            sizes.orders,
            sizes.batch_sizes,
            bound_orders=sizes.bound_orders,
            latency_orders=sizes.latency_orders,
            sample_interval=SAMPLE_INTERVAL_S,
        )
        backlog = None
        if with_backlog:
            backlog = measure_backlog(
                lab, clock, sizes.backlog_small, sizes.backlog_large, sizes.backlog_batch_size, SAMPLE_INTERVAL_S
            )
    return invocations, result, backlog


def compare_batch_sizes(
    lab: Lab, n_orders: int = 200, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, timeout: float = 300
) -> pd.DataFrame:
    """Push *n_orders* through *lab*'s pipeline once per trigger batch size; a DataFrame of throughput and invocations.

    Works on every backend: on the in-process local cloud the Lambda service counts invocations;
    elsewhere only the time is known (the invocations column is empty). The trigger is set back to
    the lab's own batch size afterwards. The time includes waiting for the queue to read empty,
    which on AWS takes a few settling reads.
    """
    import pandas as pd

    check_sizes(n_orders, batch_sizes)
    service = lab.cloud.service if lab.cloud is not None else None
    rows = []
    tag = uuid.uuid4().hex[:6]
    try:
        for size in batch_sizes:
            sized = Lab(lab.config.with_(batch_size=size), lab.clients, cloud=lab.cloud)
            sized.ensure_trigger()
            before = Counter(service.stats) if service is not None else Counter()
            begin = time.perf_counter()
            sized.publish_orders(generate_orders(n_orders, prefix=f"CMP{size}-{tag}"))
            sized.wait_until_drained(timeout=timeout)
            seconds = time.perf_counter() - begin
            invocations = records = None
            if service is not None:
                invocations = service.stats["invocations"] - before["invocations"]
                records = service.stats["records"] - before["records"]
            rows.append(
                {
                    "batch_size": size,
                    "orders": n_orders,
                    "seconds": round(seconds, 2),
                    "orders_per_s": round(n_orders / seconds, 1),
                    "invocations": invocations,
                    "records_per_invocation": round(records / invocations, 2) if records and invocations else None,
                }
            )
    finally:
        lab.ensure_trigger()
    return pd.DataFrame(rows).astype({"invocations": "Int64"})


def check_sizes(orders: int, batch_sizes: Sequence[int]) -> None:
    """Refuse a benchmark of no orders or a batch size an SQS trigger does not take."""
    if orders < 1:
        raise InputError(f"Give at least one order to benchmark (got {orders}).")
    if not batch_sizes:
        raise InputError("Give at least one batch size, e.g. 1,10.")
    bad = [b for b in batch_sizes if not 1 <= b <= 10]
    if bad:
        raise InputError(f"Batch sizes {bad} are out of range: an SQS trigger takes 1 to 10.")
