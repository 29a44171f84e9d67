"""End-to-end throughput and publish-to-stored latency, against the bound of put_item over the functions' endpoint.

The bound is a plain boto3 DynamoDB client calling the endpoint the function's SDK calls
(`cloud.function_endpoint`), with the function's kind of credentials, making the handler's own
conditional write one call after another: the pipeline cannot store orders faster than its
writes go through that endpoint. The ratio of end-to-end throughput to it is measured in the
same run, so the shared machine's load weighs on both.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from labkit.bench.probes import Clock, DepthSampler, percentile
from labkit.errors import InputError, NotReadyError
from labkit.lab import Lab
from labkit.localcloud.sandbox import LOCAL_LAMBDA_CREDENTIALS
from labkit.orders import generate_orders
from labkit.resources import sqs

# Enough writes for a steady rate; more only lengthens the run.
MAX_BOUND_ORDERS = 2000
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
class LatencyResult:
    """Publish to stored, one order at a time, each stored before the next is published."""

    orders: int
    p50_ms: float
    p95_ms: float
    max_ms: float


@dataclass(frozen=True)
class ModeResult:
    """Throughput and latency on one kind of local cloud (in-process or `labkit serve`)."""

    mode: str
    endpoint: str
    put_item_per_s: float
    put_item_plain_per_s: float
    runs: tuple[RunResult, ...]
    latency: LatencyResult | None


def measure_mode(
    lab: Lab,
    clock: Clock,
    mode: str,
    orders: int,
    batch_sizes: Sequence[int],
    bound_orders: int | None = None,
    latency_orders: int = 0,
    sample_interval: float = 0.05,
) -> ModeResult:
    """The bound, one run per batch size and (if *latency_orders*) single-order latency on *lab*'s local cloud."""
    assert lab.cloud is not None
    endpoint = lab.cloud.function_endpoint
    if endpoint is None:
        raise NotReadyError("The local cloud serves no endpoint for its functions.")
    bound = bound_orders or min(orders, MAX_BOUND_ORDERS)
    table = lab.config.table_name
    put_rate = measure_put_item(endpoint, lab.config.region, table, generate_orders(bound, prefix=f"{mode}-BOUND"))
    plain_rate = measure_put_item(
        endpoint, lab.config.region, table, generate_orders(bound, prefix=f"{mode}-PLAIN"), conditional=False
    )
    runs = []
    for size in batch_sizes:
        run = run_batch(lab, clock, list(generate_orders(orders, prefix=f"{mode}-B{size}")), size, sample_interval)
        runs.append(replace(run, ratio_to_bound=round(run.orders_per_s / put_rate, 3)))
    latency = None
    if latency_orders:
        latency = measure_latency(lab, clock, list(generate_orders(latency_orders, prefix=f"{mode}-ONE")))
    return ModeResult(mode, endpoint, round(put_rate, 1), round(plain_rate, 1), tuple(runs), latency)


def measure_put_item(
    endpoint_url: str, region: str, table: str, orders: Iterable[Mapping[str, Any]], conditional: bool = True
) -> float:
    """Orders per second put_item stores at *endpoint_url*, one call after another; *conditional*: the handler's write."""
    items = [_item(order) for order in orders]
    if not items:
        raise InputError("Give at least one order to time put_item with.")
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=LOCAL_LAMBDA_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_LAMBDA_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=LOCAL_LAMBDA_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    # The first call opens the connection, as the handler's first call does outside any figure.
    ddb.describe_table(TableName=table)
    begin = time.perf_counter()
    for item in items:
        ddb.put_item(TableName=table, Item=item, **(_conditional_write(item) if conditional else {}))
    return len(items) / (time.perf_counter() - begin)


def run_batch(lab: Lab, clock: Clock, orders: list[dict[str, Any]], batch_size: int, interval: float) -> RunResult:
    """Publish *orders* with the trigger at *batch_size* and time them until every one is stored."""
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
        wait_stored(clock, ids)
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


def measure_latency(lab: Lab, clock: Clock, orders: list[dict[str, Any]]) -> LatencyResult:
    """Publish each order alone (SNS Publish) and wait until it is stored before the next."""
    if not orders:
        raise InputError("Give at least one order to time publish to stored with.")
    lab.ensure_trigger()
    latencies = []
    for order in orders:
        clock.expect([order["orderId"]])
        lab.publish_order(order)
        wait_stored(clock, [order["orderId"]])
        latencies.append((clock.stored[order["orderId"]] - clock.published[order["orderId"]]) * 1000)
    latencies.sort()
    return LatencyResult(
        orders=len(latencies),
        p50_ms=round(percentile(latencies, 50), 1),
        p95_ms=round(percentile(latencies, 95), 1),
        max_ms=round(latencies[-1], 1),
    )


def wait_stored(clock: Clock, ids: Sequence[str], timeout: float = RUN_TIMEOUT_S) -> None:
    """Return once the clock saw every order of *ids* stored; NotReadyError after *timeout* seconds."""
    if not clock.wait(timeout):
        missing = len(set(ids) - clock.stored.keys())
        raise NotReadyError(f"{missing} of {len(ids)} orders were not stored within {timeout:.0f}s.")


def _item(order: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The DynamoDB item the handler stores for a valid order: as published, plus the instant in microseconds."""
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
