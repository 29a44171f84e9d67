"""Batch size at scale: let a backlog of orders build up, then measure how each trigger batch size drains it.

Every measurement comes from real APIs on any backend: the queue's counts while it drains, and the
function's CloudWatch Logs (one JSON line per order, one REPORT line per invocation).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from labkit.errors import ResourceError
from labkit.lab import Lab
from labkit.observe import logs
from labkit.observe.charts import CountsRecorder, finish
from labkit.orders import generate_orders
from labkit.resources import sqs, triggers

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# CloudWatch Logs on AWS can lag the work by several seconds; wait this long for every log line.
LOG_WAIT_S = 60.0
LOG_STABLE_READS = 5
PROGRESS_POLL_S = 0.1


class Progress(Protocol):
    """Told how many orders are done; at the end also the rate the run measured, which it then shows."""

    def __call__(self, done: int, rate: float | None = None) -> None: ...


ProgressFactory = Callable[[int, str], contextlib.AbstractContextManager[Progress]]


@dataclass(frozen=True)
class BatchRun:
    """What one load run at one batch size cost, measured from the function's logs (`records`: orders logged).

    `duration_ms` and `init_ms` add up the REPORT lines' Duration and Init Duration; `billed_ms` their
    Billed Duration, which AWS rounds up to the millisecond per invocation (init included where AWS
    bills it): https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html shows such a line.
    """

    batch_size: int
    orders: int
    seconds: float
    invocations: int
    records: int
    billed_ms: int
    counts: pd.DataFrame = field(compare=False, repr=False)
    duration_ms: float = 0.0
    init_ms: float = 0.0
    order_ids: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def orders_per_second(self) -> float:
        """Orders processed per second of the drain: what the progress bar's rate shows."""
        return self.records / self.seconds if self.seconds else 0.0


def drain(
    lab: Lab,
    orders: Sequence[dict[str, Any]],
    batch_size: int,
    on_progress: Progress | None = None,
    timeout: float = 120.0,
) -> BatchRun:
    """Publish *orders* with the trigger paused, then resume it at *batch_size* and measure the drain.

    Every run so starts from the same backlog (as after an outage), and `seconds` is the time from
    resuming the trigger until the queue is empty. *on_progress* gets the number of orders processed
    so far (gone from the queue), from 0 at the resume, so a progress bar shows the processing rate.
    Invocations, measured and billed time come from the REPORT lines Lambda writes to the logs.
    """
    run_lab = Lab(lab.config.with_(batch_size=batch_size), clients=lab.clients, cloud=lab.cloud)
    _set_trigger(run_lab, enabled=False)
    wanted = {order["orderId"] for order in orders}
    queue = sqs.get_queue(lab.clients, lab.config.queue_name)
    if queue is None:
        raise ResourceError(f"The queue {lab.config.queue_name} does not exist yet: build it first (notebook 03).")
    started = time.time()
    with CountsRecorder(run_lab, interval=0.25, orders=False) as recorder:
        # No depth limit: with the trigger paused the queue must hold the whole backlog.
        run_lab.publish_orders(orders, max_queue_depth=0)
        recorder.sample()  # the full backlog
        resumed = time.time()
        if on_progress:
            on_progress(0)  # the processing clock starts now, as `seconds` does
        _set_trigger(run_lab, enabled=True)
        _follow(lab, queue.url, len(orders), on_progress, timeout)
        # Timed where the progress bar stops, so its rate and orders per second are the same figure.
        seconds = time.time() - resumed
        run_lab.wait_until_drained(timeout)
    records = _records_of(lab, started, wanted)
    reports = [i for i in logs.invocations(lab, started, skew=0) if i.billed_ms is not None]
    run = BatchRun(
        batch_size=batch_size,
        orders=len(orders),
        seconds=round(seconds, 2),
        invocations=len(reports),
        records=len({r.order_id for r in records}),
        billed_ms=sum(i.billed_ms or 0 for i in reports),
        counts=recorder.frame,
        duration_ms=round(sum(i.duration_ms or 0.0 for i in reports), 2),
        init_ms=round(sum(i.init_ms or 0.0 for i in reports), 2),
        order_ids=tuple(order["orderId"] for order in orders),
    )
    if on_progress:
        # The bar ends on the run's own figures, so it and the table agree to the digit they show.
        on_progress(run.records, rate=run.orders_per_second)
    return run


def _follow(lab: Lab, queue_url: str, total: int, on_progress: Progress | None, timeout: float) -> None:
    """Report orders processed (gone from the queue: SQS deletes what the function handled) until none wait."""
    deadline = time.monotonic() + timeout
    while True:
        counts = sqs.get_queue_counts(lab.clients, queue_url)
        waiting = counts["visible"] + counts["in_flight"] + counts.get("delayed", 0)
        if on_progress:
            on_progress(max(0, total - waiting))
        if not waiting or time.monotonic() > deadline:
            return
        time.sleep(PROGRESS_POLL_S)


def _set_trigger(lab: Lab, enabled: bool) -> None:
    lab.ensure_trigger(enabled=enabled)
    if lab.cloud is not None:
        # AWS reports a mapping as Enabled/Disabled once its pollers follow; the local service rereads
        # mappings in its own thread when one changes, so make it read them now.
        lab.cloud.service.refresh()


def _records_of(lab: Lab, since: float, order_ids: set[str]) -> list[logs.RecordLog]:
    """The log lines of these orders, waiting while CloudWatch Logs still delivers them (seconds on AWS)."""
    deadline = time.monotonic() + LOG_WAIT_S
    previous, unchanged = -1, 0
    while True:
        records = [r for r in logs.function_log_records(lab, since, skew=0) if r.order_id in order_ids]
        seen = len({r.order_id for r in records})
        unchanged = unchanged + 1 if seen == previous else 0
        if seen >= len(order_ids) or unchanged >= LOG_STABLE_READS or time.monotonic() > deadline:
            return records
        previous = seen
        time.sleep(1)


def measure(lab: Lab, n: int = 200, progress: ProgressFactory | None = None) -> BatchRun:
    """Drain a backlog of *n* generated orders at the batch size the trigger has now (see `drain`); leaves it so.

    The student changes the trigger's BatchSize (notebook 07's exercise); this measures what that did.
    """
    queue = sqs.get_queue(lab.clients, lab.config.queue_name)
    mapping = triggers.find_mapping(lab.clients, lab.config.function_name, queue.arn) if queue else None
    if queue is None or mapping is None:
        raise ResourceError(
            f"No trigger connects {lab.config.queue_name} to {lab.config.function_name}: add it first (notebook 04)."
        )
    size = int(mapping["BatchSize"])
    orders = list(generate_orders(n, prefix=f"B{size:02d}-{uuid.uuid4().hex[:6].upper()}"))
    bar = progress(n, f"batch size {size}") if progress else contextlib.nullcontext(None)
    with bar as on_progress:
        return drain(lab, orders, size, on_progress=on_progress)


def compare(
    lab: Lab, n: int = 200, batch_sizes: Sequence[int] = (1, 10), progress: ProgressFactory | None = None
) -> list[BatchRun]:
    """Drain a backlog of *n* generated orders at each batch size (see `drain`), then restore the configured one.

    Unlike `labkit.bench.compare_batch_sizes` (orders flow in while the function consumes), every run
    here starts from the same full queue, so batch sizes compare on equal terms on any backend.
    """
    runs = []
    run = uuid.uuid4().hex[:6].upper()
    try:
        for size in batch_sizes:
            # Fresh ids per run: orders of an earlier run would come back as duplicates and change the timings.
            orders = list(generate_orders(n, prefix=f"B{size:02d}-{run}"))
            bar = progress(n, f"batch size {size}") if progress else contextlib.nullcontext(None)
            with bar as on_progress:
                runs.append(drain(lab, orders, size, on_progress=on_progress))
    finally:
        lab.ensure_trigger()
    return runs


def table(runs: Iterable[BatchRun]) -> pd.DataFrame:
    """One row per run: the drain's orders, seconds and orders/s; invocations; measured and billed milliseconds."""
    rows = [
        {
            "batch_size": run.batch_size,
            "orders": run.orders,
            "seconds": run.seconds,
            "orders_per_s": round(run.orders_per_second, 1),
            "invocations": run.invocations,
            "orders_per_invocation": round(run.records / run.invocations, 1) if run.invocations else None,
            "duration_ms": round(run.duration_ms, 1),
            "init_ms": round(run.init_ms, 1),
            "billed_ms": run.billed_ms,
        }
        for run in runs
    ]
    return pd.DataFrame(rows).set_index("batch_size")


def chart(runs: Sequence[BatchRun], title: str = "Batch size: queue drain and invocations") -> Figure:
    """Left: messages waiting in the queue over time for each run; right: invocations per run."""
    import matplotlib.pyplot as plt

    fig, (drain, calls) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    for run in runs:
        waiting = run.counts["queue_visible"].fillna(0) + run.counts["queue_in_flight"].fillna(0)
        drain.plot(run.counts["seconds"], waiting, drawstyle="steps-post", label=f"batch size {run.batch_size}")
    drain.set_title("messages in the queue")
    drain.set_xlabel("seconds")
    drain.legend()
    calls.bar([str(run.batch_size) for run in runs], [run.invocations for run in runs], color="#DD8452")
    calls.set_title("function invocations")
    calls.set_xlabel("batch size")
    fig.suptitle(title)
    return finish(fig)
