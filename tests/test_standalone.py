"""Notebook 06's steps give the same result whether or not earlier runs left messages behind."""

from __future__ import annotations

import time
from typing import Any

import labkit
from labkit import events, notebook
from labkit.observe import charts as observe
from labkit.observe import journey


def fix_quantity(order: dict[str, Any]) -> dict[str, Any]:
    order["quantity"] = int(order["quantity"])
    return order


def test_a_run_after_leftovers_shows_and_redrives_its_own_message_only(built_lab: Any) -> None:
    # GIVEN an earlier run's bad order in the DLQ and another still being retried in the queue
    first = journey.publish_and_track(built_lab, labkit.sample_order(orderId="OLD-1", quantity="2"), timeout=30)
    assert first.outcome == "dlq"
    built_lab.publish_order(labkit.MALFORMED_BODY)

    # WHEN the notebook starts clean and sends its own bad order
    note = notebook.start_clean(built_lab, timeout=60)
    bad = labkit.sample_order(orderId=events.new_order_id("BAD"), quantity="2")
    trip = journey.publish_and_track(built_lab, bad, timeout=30)

    # THEN it kept and counted the earlier runs' messages; the check and the redrive see this run's message only
    c = built_lab.config
    assert note.startswith(
        f"{c.queue_name} is empty. {c.dlq_name} holds 2 message(s) that earlier runs left there: they stay"
    )
    assert notebook.check_dead_lettered(built_lab, trip)
    assert sorted(observe.dlq_frame(built_lab)["orderId"].fillna("-")) == sorted(["-", "OLD-1", bad["orderId"]])
    since = time.time()
    assert built_lab.redrive(transform=journey.fix_orders(fix_quantity), only=[trip.dlq_message_id]) == 1
    assert journey.track_order(built_lab, bad["orderId"], since=since, timeout=10).outcome == "stored"
    # AND the earlier runs' two messages are still there, untouched
    assert built_lab.counts()["dlq_visible"] == 2
    assert sorted(observe.dlq_frame(built_lab)["orderId"].fillna("-")) == ["-", "OLD-1"]
