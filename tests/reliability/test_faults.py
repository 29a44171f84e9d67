"""Faults in the local cloud: each time every valid order ends stored once at its newest state."""

import json
import threading
import time

import pytest

from labkit.config import Config
from labkit.errors import ConfigError
from labkit.experiments import faults
from labkit.experiments.reliability import measure, mixed_load, run
from labkit.experiments.scenarios import publish_to_crashing_handler, redrive_valid
from labkit.lab import Lab
from labkit.observe.deliveries import deliveries, needless_retries
from labkit.observe.logs import function_log_records

from .support import report


def test_throttling_and_5xx_on_a_fifth_of_the_writes(new_lab):
    """GIVEN 20% of the handler's writes throttled or failing with a 500
    WHEN the mixed load runs in batches of ten
    THEN only the records whose write failed are retried, and every valid order ends at its newest state."""
    lab = new_lab(batch_size=10)
    load = mixed_load(orders=30, seed=21)
    started = time.time()

    with faults.dynamodb_faults(lab, rate=0.2, kinds=("throttle", "internal"), seed=21) as injected:
        lab.publish_orders(load.bodies)
        lab.wait_until_drained(timeout=60)
    # An order whose write failed three times in a row sits in the DLQ; once the fault is over it is redriven.
    figures, redriven = redrive_valid(lab, load, since=started)

    report(f"20% faults ({injected.count} of {injected.calls} writes, {redriven} redriven)", figures)
    assert injected.count >= 5
    assert set(injected.by_code()) == {"ProvisionedThroughputExceededException", "InternalServerError"}
    assert figures.ok
    assert {item["orderId"]: item for item in lab.order_items()} == load.expected
    # Every retried message failed on each delivery but its last, and its failures name the fault.
    records = function_log_records(lab, since=started)
    errors = [r for r in records if r.outcome == "error"]
    assert len(errors) == injected.count
    assert all(r.reason.startswith(("ProvisionedThroughputExceededException", "InternalServerError")) for r in errors)
    history = deliveries(lab, started)
    assert needless_retries(history) == []
    for items in history.values():
        assert all(d.outcome in ("error", "invalid") or d.invocation_failed for d in items[:-1])


def test_faults_reach_only_the_handler_in_the_local_cloud(new_lab):
    """GIVEN every handler write failing WHEN labkit's own client writes THEN it is not affected."""
    lab = new_lab()
    with faults.dynamodb_faults(lab, rate=1.0, kinds=("internal",)) as injected:
        lab.clients("dynamodb").put_item(TableName=lab.config.table_name, Item={"orderId": {"S": "labkit-own"}})
        lab.publish_order()
        deadline = time.monotonic() + 10
        while injected.count < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert injected.count >= 1
    assert {fault.key for fault in injected.injected} == {"01234"}
    assert lab.get_order("labkit-own") == {"orderId": "labkit-own"}
    # Once the faults are gone the retried order lands.
    lab.wait_until_drained(timeout=20)
    assert lab.get_order("01234") is not None


def test_fault_injection_refuses_a_cloud_it_cannot_reach():
    """GIVEN a lab on AWS or on an endpoint WHEN asked for faults THEN a clear error says why not."""
    for config in (
        Config.from_env({}, backend="aws"),
        Config.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:5055"}),
    ):
        with pytest.raises(ConfigError, match=r"needs a local cloud running in this process.*" + config.backend):
            faults.dynamodb_faults(Lab(config))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        faults.DynamoDBFaults(cloud=None, rate=2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Unknown fault kind"):
        faults.DynamoDBFaults(cloud=None, kinds=("gremlins",))  # type: ignore[arg-type]


def test_handler_crashing_in_the_middle_of_a_batch_of_ten(new_lab):
    """GIVEN a deployed handler that crashes on one record the first time, after writing the records before it
    WHEN batches of ten arrive
    THEN Lambda retries the whole batch, the records written before the crash come again as duplicates,
    and every order ends stored once at its newest state."""
    lab = new_lab(batch_size=10)
    load = mixed_load(orders=30, updates=4, duplicates=4, malformed=4, seed=31)
    # The sixth message of the first batch: five records are written before the crash.
    marker = next(
        oid for oid in (_order_id(b) for b in load.bodies[5:10]) if oid and sum(oid in b for b in load.bodies) == 1
    )
    started = publish_to_crashing_handler(lab, load, marker, timeout=60)

    figures = measure(lab, load, since=started, check_retries=False)
    report(f"crash in a batch of ten (on {marker})", figures)
    assert figures.ok
    history = deliveries(lab, started)
    redelivered = [items for items in history.values() if items[0].outcome in ("stored", "updated") and len(items) > 1]
    assert redelivered, "records written before the crash were not delivered again"
    assert all(items[0].invocation_failed and items[1].outcome in ("duplicate", "stale") for items in redelivered)
    assert lab.cloud.service.stats["errors"] >= 1


def _order_id(body):
    try:
        order = json.loads(body)
    except ValueError:
        return None
    return order.get("orderId") if isinstance(order, dict) else None


def test_lambda_service_stopped_and_restarted_with_messages_in_flight(new_lab):
    """GIVEN half the load published WHEN the Lambda service stops, the rest is published, a crashed poller
    holds ten messages and the service starts again cold THEN nothing is lost or stored twice."""
    lab = new_lab()
    load = mixed_load(orders=30, seed=41)
    half = len(load.bodies) // 2
    started = time.time()
    lab.publish_orders(load.bodies[:half])

    lab.cloud.service.stop()
    assert not lab.cloud.service.running
    lab.publish_orders(load.bodies[half:])
    queue = lab.clients("sqs").get_queue_url(QueueName=lab.config.queue_name)["QueueUrl"]
    held = lab.clients("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    in_flight = lab.counts()["queue_in_flight"]
    lab.cloud.runtime.reset()
    lab.cloud.service.start()
    lab.wait_until_drained(timeout=60)

    figures = measure(lab, load, since=started)
    report(f"service restart ({len(held)} held by a crashed poller)", figures)
    assert len(held) == 10 and in_flight >= 10
    assert figures.ok
    history = deliveries(lab, started)
    for message in held:
        # Its first receive was the crashed poller's; the service received it again once it came back.
        assert history[message["MessageId"]][0].receive_count >= 2


def test_three_concurrent_pollers(new_lab):
    """GIVEN three pollers on the queue, as Lambda scales out WHEN the mixed load runs THEN the result is the same."""
    lab = new_lab(pollers=3, batch_size=10)
    load = mixed_load(orders=30, seed=51)

    figures = run(lab, load, timeout=60, check_retries=False)

    report("three concurrent pollers", figures)
    pollers = [t for t in threading.enumerate() if t.name.startswith("labkit-poller-")]
    assert len(pollers) >= 3
    assert figures.ok
    assert {item["orderId"]: item for item in lab.order_items()} == load.expected
