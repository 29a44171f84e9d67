"""Benchmark the whole pipeline on the in-process local cloud, and compare trigger batch sizes on any backend.

`python -m labkit.bench [--orders N] [--batch-sizes 1,10] [--json]` measures, in one process: the
bound (DynamoDB put_item throughput on the same moto, making the handler's own conditional write),
end-to-end throughput SNS → SQS → Lambda service → DynamoDB per batch size and its ratio to that
bound, the latency from publish to stored (p50/p95), peak memory, and the deepest the queue got.

What is timed: an order is *published* when the PublishBatch call that carries it starts, and
*stored* when the handler's PutItem for it returns without error; both come from boto3's own event
hooks, so nothing in the pipeline changes to be measured. Throughput is orders divided by the time
from the first publish to the last store. The queue's depth is sampled every 50 ms.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from labkit import sqs
from labkit.bench.probes import Clock, DepthSampler, Hooks, environment, percentile, rss_mb
from labkit.config import Config
from labkit.errors import InputError, NotReadyError
from labkit.lab import Lab
from labkit.orders import generate_orders

if TYPE_CHECKING:
    import pandas as pd

    from labkit.session import Clients

__all__ = ["BenchResult", "RunResult", "compare_batch_sizes", "measure_put_item", "run_benchmark"]

DEFAULT_ORDERS = 1000
DEFAULT_BATCH_SIZES = (1, 10)
# Enough writes for a steady rate; more only lengthens the run.
MAX_BOUND_ORDERS = 2000
SAMPLE_INTERVAL_S = 0.05
RUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class RunResult:
    """One end-to-end run at one trigger batch size."""

    batch_size: int
    orders: int
    seconds: float
    orders_per_s: float
    ratio_to_bound: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_max_ms: float
    invocations: int
    records_per_invocation: float
    retried: int
    max_queue_visible: int
    max_queue_depth: int


@dataclass(frozen=True)
class BenchResult:
    """Everything one benchmark measured."""

    orders: int
    put_item_per_s: float
    put_item_plain_per_s: float
    runs: tuple[RunResult, ...]
    rss_start_mb: float
    rss_end_mb: float
    peak_rss_mb: float
    seconds: float
    environment: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, as `--json` prints it."""
        return asdict(self)

    def table(self) -> str:
        """The runs as a Markdown table (what the README shows)."""
        lines = [
            f"put_item bound: {self.put_item_per_s:.0f} orders/s (the handler's conditional write; "
            f"plain put_item {self.put_item_plain_per_s:.0f}/s)",
            "",
            "| batch size | orders | orders/s | of bound | p50 ms | p95 ms | invocations | deepest queue |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.runs:
            lines.append(
                f"| {r.batch_size} | {r.orders} | {r.orders_per_s:.0f} | {r.ratio_to_bound:.2f} | "
                f"{r.latency_p50_ms:.0f} | {r.latency_p95_ms:.0f} | {r.invocations} | {r.max_queue_depth} |"
            )
        lines += ["", f"peak RSS {self.peak_rss_mb:.0f} MB (start {self.rss_start_mb:.0f} MB); {self.seconds:.1f} s"]
        return "\n".join(lines)


def run_benchmark(
    orders: int = DEFAULT_ORDERS,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    bound_orders: int | None = None,
    sample_interval: float = SAMPLE_INTERVAL_S,
    config: Config | None = None,
) -> BenchResult:
    """Start a fresh in-process local cloud, build the pipeline and measure it; see the module docstring."""
    from labkit.localcloud import LocalCloud

    check_sizes(orders, batch_sizes)
    started = time.perf_counter()
    cloud = LocalCloud.in_process(config or Config.from_env({}))
    clock = Clock()
    try:
        lab = Lab(cloud.config, cloud.clients, cloud=cloud)
        # Hooks first: the handler's clients are made at its first invocation and keep the hooks they got.
        with Hooks(clock, lab):
            lab.up()
            # The first invocation unpacks the code and makes the handler's client: not part of any figure.
            _run(lab, clock, list(generate_orders(1, prefix="WARMUP")), lab.config.batch_size, sample_interval)
            rss_start = rss_mb("VmRSS")
            bound = bound_orders or min(orders, MAX_BOUND_ORDERS)
            put_rate = measure_put_item(lab.clients, lab.config.table_name, generate_orders(bound, prefix="BOUND"))
            plain_rate = measure_put_item(
                lab.clients, lab.config.table_name, generate_orders(bound, prefix="PLAIN"), conditional=False
            )
            runs = []
            for size in batch_sizes:
                run = _run(lab, clock, list(generate_orders(orders, prefix=f"B{size}")), size, sample_interval)
                runs.append(replace(run, ratio_to_bound=round(run.orders_per_s / put_rate, 3)))
        return BenchResult(
            orders=orders,
            put_item_per_s=round(put_rate, 1),
            put_item_plain_per_s=round(plain_rate, 1),
            runs=tuple(runs),
            rss_start_mb=round(rss_start, 1),
            rss_end_mb=round(rss_mb("VmRSS"), 1),
            peak_rss_mb=round(rss_mb("VmHWM"), 1),
            seconds=round(time.perf_counter() - started, 2),
            environment=environment(),
        )
    finally:
        cloud.stop()


def measure_put_item(
    clients: Clients, table: str, orders: Iterable[Mapping[str, Any]], conditional: bool = True
) -> float:
    """Orders per second that put_item stores, one call after another; *conditional* makes the handler's write."""
    ddb = clients("dynamodb")
    items = [_item(order) for order in orders]
    if not items:
        raise InputError("Give at least one order to time put_item with.")
    begin = time.perf_counter()
    for item in items:
        ddb.put_item(TableName=table, Item=item, **(_conditional_write(item) if conditional else {}))
    return len(items) / (time.perf_counter() - begin)


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


def _run(lab: Lab, clock: Clock, orders: list[dict[str, Any]], batch_size: int, interval: float) -> RunResult:
    assert lab.cloud is not None
    sized = Lab(lab.config.with_(batch_size=batch_size), lab.clients, cloud=lab.cloud)
    sized.ensure_trigger()
    queue = sqs.get_queue(lab.clients, lab.config.queue_name)
    if queue is None:
        raise NotReadyError(f"The queue {lab.config.queue_name} is gone: build the pipeline again.")
    ids = [order["orderId"] for order in orders]
    clock.expect(ids)
    before = Counter(lab.cloud.service.stats)
    with DepthSampler(lab.clients, queue.url, interval) as sampler:
        begin = time.perf_counter()
        sized.publish_orders(orders)
        if not clock.wait(RUN_TIMEOUT_S):
            missing = len(set(ids) - clock.stored.keys())
            raise NotReadyError(f"{missing} of {len(ids)} orders were not stored within {RUN_TIMEOUT_S}s.")
    sized.wait_until_drained(timeout=RUN_TIMEOUT_S)
    stats = Counter(lab.cloud.service.stats)
    stats.subtract(before)
    latencies = sorted((clock.stored[i] - clock.published[i]) * 1000 for i in ids)
    seconds = max(clock.stored[i] for i in ids) - begin
    return RunResult(
        batch_size=batch_size,
        orders=len(ids),
        seconds=round(seconds, 3),
        orders_per_s=round(len(ids) / seconds, 1),
        ratio_to_bound=0.0,
        latency_p50_ms=round(percentile(latencies, 50), 1),
        latency_p95_ms=round(percentile(latencies, 95), 1),
        latency_max_ms=round(latencies[-1], 1),
        invocations=stats["invocations"],
        records_per_invocation=round(stats["records"] / max(1, stats["invocations"]), 2),
        retried=stats["retried"],
        max_queue_visible=sampler.max_visible,
        max_queue_depth=sampler.max_depth,
    )


def _item(order: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The DynamoDB item the handler stores for a valid order."""
    moment = datetime.fromisoformat(order["timestamp"])
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    item = {key: {"S": str(order[key])} for key in ("orderId", "userId", "itemName", "status", "timestamp")}
    item["quantity"] = {"N": str(order["quantity"])}
    item["timestampMicros"] = {"N": str((moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))}
    return item


def _conditional_write(item: dict[str, dict[str, str]]) -> dict[str, Any]:
    # The arguments lambda/code.py passes with each put: the bound is the write the pipeline makes.
    return {
        "ConditionExpression": "attribute_not_exists(orderId) OR timestampMicros < :micros",
        "ExpressionAttributeValues": {":micros": item["timestampMicros"]},
        "ReturnValues": "ALL_OLD",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
