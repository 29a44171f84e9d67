"""Conservation under a mixed load through SNS: every valid order stored at its newest state, every bad body in the DLQ."""

import json
from collections import Counter

from labkit.experiments.reliability import dlq_bodies, measure, mixed_load, run
from labkit.observe.deliveries import deliveries, needless_retries

from .support import report


def test_the_mixed_load_holds_every_kind_of_input():
    """GIVEN a mixed load WHEN built twice with one seed THEN it is the same, and it really is mixed."""
    load = mixed_load(orders=20, updates=6, duplicates=8, malformed=10, seed=3)

    assert load == mixed_load(orders=20, updates=6, duplicates=8, malformed=10, seed=3)
    assert len(load.expected) == 20
    assert len(load.malformed) >= 10
    assert len(load.bodies) == 20 + 6 * 2 + 10 + 8
    counts = Counter(load.bodies)
    assert sum(n - 1 for n in counts.values()) == 8  # exact duplicates
    # Each updated order's newest version goes out first, the older ones after it.
    assert len(load.updated) == 6
    for order_id in load.updated:
        stamps = [json.loads(b)["timestamp"] for b in load.bodies if f'"orderId": "{order_id}"' in b]
        assert stamps[0] == max(stamps) and len(set(stamps)) == 3
    assert load.out_of_order >= 12


def test_mixed_load_through_sns_loses_and_duplicates_nothing(new_lab):
    """GIVEN the seed's settings (batch size 1, DLQ after 3 receives)
    WHEN valid orders, malformed bodies, duplicates and out-of-order updates go through SNS
    THEN the table holds exactly the valid orderIds at their newest state and the DLQ exactly the bad bodies."""
    lab = new_lab()
    load = mixed_load(orders=30, seed=11)

    figures = run(lab, load, timeout=60)

    report("mixed load, batch size 1", figures)
    assert {item["orderId"]: item for item in lab.order_items()} == load.expected

    assert Counter(dlq_bodies(lab)) == Counter(load.malformed)
    assert (figures.lost, figures.duplicated, figures.stale, figures.valid_in_dlq) == (0, 0, 0, 0)
    assert figures.ok


def test_the_check_itself_catches_a_lost_or_stale_order(new_lab):
    """GIVEN a drained pipeline WHEN an order is removed and another set back THEN the figures say so."""
    lab = new_lab()
    load = mixed_load(orders=6, updates=2, duplicates=0, malformed=0, seed=5)
    assert run(lab, load, timeout=60).ok
    updated = load.updated[0]
    other = next(oid for oid in load.expected if oid != updated)
    ddb = lab.clients("dynamodb")

    ddb.delete_item(TableName=lab.config.table_name, Key={"orderId": {"S": other}})
    ddb.update_item(
        TableName=lab.config.table_name,
        Key={"orderId": {"S": updated}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "an older status"}},
    )
    figures = measure(lab, load)

    assert figures.lost == 1 and figures.details["missing_orders"] == [other]
    assert figures.stale == 1 and figures.details["stale_orders"] == [updated]
    assert not figures.ok


def test_batches_of_ten_retry_only_the_failed_records(new_lab):
    """GIVEN batches of ten with ReportBatchItemFailures WHEN the mixed load runs
    THEN only the malformed messages are delivered again, each exactly three times."""
    lab = new_lab(batch_size=10)
    load = mixed_load(orders=30, seed=12)

    figures = run(lab, load, timeout=60)

    report("mixed load, batch size 10", figures)
    assert figures.ok
    history = deliveries(lab)
    assert needless_retries(history) == []
    rejected = {mid: items for mid, items in history.items() if any(d.outcome == "invalid" for d in items)}
    assert len(rejected) == len(load.malformed)
    for items in rejected.values():
        assert [(d.receive_count, d.outcome) for d in items] == [(1, "invalid"), (2, "invalid"), (3, "invalid")]
    # The others never failed; any second delivery of theirs came with a whole invocation that failed (a timeout).
    for mid, items in history.items():
        if mid not in rejected:
            assert all(d.outcome != "error" for d in items)
            assert all(d.invocation_failed for d in items[:-1])
