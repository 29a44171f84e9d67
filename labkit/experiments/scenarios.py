"""Reliability scenarios on a fresh in-process local cloud: the mixed load alone, and under each fault.

Each scenario returns the conservation figures of `labkit.experiments.reliability` and a few notes (faults
injected, messages redriven). Fault scenarios that leave a valid order in the DLQ (it failed three
times in a row) redrive the DLQ once the fault is over, as an operator would, and measure again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from labkit.config import Config
from labkit.experiments import faults
from labkit.experiments.reliability import Figures, MixedLoad, measure, mixed_load, run
from labkit.lab import Lab
from labkit.observe.deliveries import deliveries
from labkit.resources import functions

# Short enough for a poison message to reach the DLQ in about ten seconds, long enough that a cold
# start on a busy machine does not make SQS deliver a message twice or time an invocation out.
FAST = {"function_timeout": 2, "visibility_timeout": 3}
FAULT_RATE = 0.2

# Appended to lambda/code.py: the deployed variant crashes on the marked record the first time it
# sees it, after writing the records before it in the batch (Lambda then retries the whole batch).
CRASH_VARIANT = """

_real_read_order = read_order


def read_order(record):
    attributes = record.get("attributes") if isinstance(record, dict) else None
    first = isinstance(attributes, dict) and attributes.get("ApproximateReceiveCount") == "1"
    if first and {marker!r} in str(record.get("body")):
        raise RuntimeError("simulated crash in the middle of a batch")
    return _real_read_order(record)
"""


@contextmanager
def local_lab(pollers: int = 1, **overrides: Any) -> Iterator[Lab]:
    """A Lab with the whole pipeline built on its own in-process local cloud, stopped afterwards."""
    from labkit.localcloud import LocalCloud

    config = Config.from_env({}, **{**FAST, **overrides})
    cloud = LocalCloud.in_process(config, pollers_per_mapping=pollers)
    try:
        lab = Lab(cloud.config, cloud=cloud)
        lab.up()
        yield lab
    finally:
        cloud.stop()


def redrive_valid(lab: Lab, load: MixedLoad, since: float) -> tuple[Figures, int]:
    """If valid orders ended in the DLQ, redrive it (the fault is over), drain and measure again."""
    figures = measure(lab, load, since=since)
    if not figures.valid_in_dlq:
        return figures, 0
    moved = lab.redrive()
    lab.wait_until_drained(timeout=60)
    return measure(lab, load, since=since), moved


def mixed(orders: int, seed: int, pollers: int = 1, batch_size: int = 1) -> tuple[Figures, dict[str, Any]]:
    """The mixed load with no fault."""
    with local_lab(pollers=pollers, batch_size=batch_size) as lab:
        # Concurrent pollers may hand a message on before a slow batch deletes it: at least once, by design.
        return run(lab, mixed_load(orders=orders, seed=seed), check_retries=pollers == 1), {}


def dynamodb_fault(orders: int, seed: int, kinds: tuple[str, ...]) -> tuple[Figures, dict[str, Any]]:
    """The mixed load while FAULT_RATE of the handler's writes fail with *kinds* of error."""
    load = mixed_load(orders=orders, seed=seed)
    with local_lab(batch_size=10) as lab:
        started = time.time()
        with faults.dynamodb_faults(lab, rate=FAULT_RATE, kinds=kinds, seed=seed) as injected:
            lab.publish_orders(load.bodies)
            lab.wait_until_drained(timeout=120)
        figures, moved = redrive_valid(lab, load, started)
        return figures, {"faults_injected": injected.count, "writes_attempted": injected.calls, "redriven": moved}


def publish_to_crashing_handler(lab: Lab, load: MixedLoad, marker: str, timeout: float) -> float:
    """Deploy the handler that crashes once on order *marker*, publish *load* whole, then let the queue drain.

    The trigger is off while publishing, so the batches hold what was published, not what arrived first.
    Returns the time publishing began (epoch seconds), to measure from.
    """
    lab.ensure_function(source=functions.handler_source() + CRASH_VARIANT.format(marker=marker))
    lab.ensure_trigger(enabled=False)
    started = time.time()
    lab.publish_orders(load.bodies)
    lab.ensure_trigger(enabled=True)
    lab.wait_until_drained(timeout=timeout)
    return started


def crash_mid_batch(orders: int, seed: int) -> tuple[Figures, dict[str, Any]]:
    """Batches of ten; the deployed handler crashes on one record the first time, after writing the ones before it."""
    load = mixed_load(orders=orders, seed=seed)
    marker = sorted(load.expected)[len(load.expected) // 2]
    with local_lab(batch_size=10) as lab:
        started = publish_to_crashing_handler(lab, load, marker, timeout=120)
        # A crash fails the whole batch by design, so records written before it come round again.
        figures = measure(lab, load, since=started, check_retries=False)
        history = deliveries(lab, started)
        again = sum(1 for items in history.values() if len(items) > 1 and items[0].outcome in ("stored", "updated"))
        return figures, {"crashed_on": marker, "written_then_redelivered": again}


def restart(orders: int, seed: int) -> tuple[Figures, dict[str, Any]]:
    """The Lambda service stops mid-load, the rest is published, a crashed poller takes ten, the service starts cold."""
    load = mixed_load(orders=orders, seed=seed)
    with local_lab() as lab:
        assert lab.cloud is not None
        started = time.time()
        lab.publish_orders(load.bodies[: len(load.bodies) // 2])
        lab.cloud.service.stop()
        lab.publish_orders(load.bodies[len(load.bodies) // 2 :])
        queue = lab.clients("sqs").get_queue_url(QueueName=lab.config.queue_name)["QueueUrl"]
        held = lab.clients("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        lab.cloud.runtime.reset()
        lab.cloud.service.start()
        lab.wait_until_drained(timeout=120)
        return measure(lab, load, since=started), {"held_by_crashed_poller": len(held)}


def pollers(orders: int, seed: int) -> tuple[Figures, dict[str, Any]]:
    """Three concurrent pollers on the queue, as Lambda scales out, with batches of ten."""
    return mixed(orders, seed, pollers=3, batch_size=10)


SCENARIOS: dict[str, Callable[[int, int], tuple[Figures, dict[str, Any]]]] = {
    "mixed-load": mixed,
    "batch-10": lambda orders, seed: mixed(orders, seed, batch_size=10),
    "throttle": lambda orders, seed: dynamodb_fault(orders, seed, ("throttle", "throttling")),
    "5xx": lambda orders, seed: dynamodb_fault(orders, seed, ("internal", "unavailable")),
    "crash-mid-batch": crash_mid_batch,
    "restart": restart,
    "pollers-3": pollers,
}


def run_scenario(name: str, orders: int = 40, seed: int = 7) -> tuple[Figures, dict[str, Any]]:
    """Run one scenario of SCENARIOS on a fresh local cloud; returns its figures and notes."""
    return SCENARIOS[name](orders, seed)
