"""DLQ redrive: send before delete, so an interruption loses nothing; once the cause is fixed the orders land."""

import json

import pytest

from labkit import cli
from labkit.cli import common
from labkit.experiments.reliability import dlq_bodies, stored_form
from labkit.lab import Lab
from labkit.orders import generate_orders
from labkit.resources import functions, sqs

# A deployed bug: the handler refuses any quantity above 2. Fixing it means deploying lambda/code.py again.
CAPPED_QUANTITY = """

_real_to_item = to_item


def to_item(order):
    if isinstance(order.get("quantity"), int) and order["quantity"] > 2:
        raise InvalidOrder("quantity above 2 is not supported yet")
    return _real_to_item(order)
"""


class InterruptedSqs:
    """An SQS client that is interrupted right after its *after*-th SendMessageBatch, before any delete."""

    def __init__(self, client, after):
        self._client = client
        self._after = after
        self.calls = []

    def send_message_batch(self, **kwargs):
        reply = self._client.send_message_batch(**kwargs)
        self.calls.append("send")
        if self.calls.count("send") == self._after:
            raise KeyboardInterrupt
        return reply

    def delete_message_batch(self, **kwargs):
        self.calls.append("delete")
        return self._client.delete_message_batch(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


class InterruptedClients:
    """labkit Clients whose SQS client is interrupted as above."""

    def __init__(self, clients, after):
        self._clients = clients
        self.sqs = InterruptedSqs(clients("sqs"), after)

    def __call__(self, service):
        return self.sqs if service == "sqs" else self._clients(service)

    def __getattr__(self, name):
        return getattr(self._clients, name)


def test_interrupted_redrive_loses_nothing_and_fixed_orders_land(new_lab):
    """GIVEN orders rejected by a deployed bug, sitting in the DLQ, and the bug fixed
    WHEN a redrive is interrupted after sending its second batch, before deleting it, and then run again
    THEN no order is ever missing from both queue and table, and at the end each is stored once."""
    lab = new_lab()
    orders = list(generate_orders(45, seed=61, prefix="RD"))
    rejected = {o["orderId"] for o in orders if o["quantity"] > 2}
    assert len(rejected) > 20  # more than two batches of ten
    lab.ensure_function(source=functions.handler_source() + CAPPED_QUANTITY)
    lab.publish_orders(orders)
    lab.wait_until_drained(timeout=60)
    assert {json.loads(b)["orderId"] for b in dlq_bodies(lab)} == rejected
    assert {item["orderId"] for item in lab.order_items()} == {o["orderId"] for o in orders} - rejected

    lab.ensure_function()  # the fix
    interrupted = InterruptedClients(lab.clients, after=2)
    with pytest.raises(KeyboardInterrupt):
        Lab(lab.config, clients=interrupted, cloud=lab.cloud).redrive()

    # The second batch was sent but not deleted: it is in the DLQ again, at once, and on its way to the table.
    assert interrupted.sqs.calls == ["send", "delete", "send"]
    lab.wait_until_drained(timeout=30)
    in_dlq = [json.loads(b)["orderId"] for b in dlq_bodies(lab)]
    stored = {item["orderId"] for item in lab.order_items()}
    assert len(in_dlq) == len(rejected) - 10
    assert stored | set(in_dlq) == {o["orderId"] for o in orders}
    assert len(stored & set(in_dlq)) == 10  # the duplicates the interruption made

    moved = lab.redrive()
    lab.wait_until_drained(timeout=30)

    assert moved == len(rejected) - 10
    assert lab.counts()["dlq_visible"] == 0
    assert {item["orderId"]: item for item in lab.order_items()} == {o["orderId"]: stored_form(o) for o in orders}


def test_cli_redrive_interrupted_says_how_to_resume(new_lab, monkeypatch, capsys):
    """GIVEN `labkit redrive` WHEN interrupted THEN it says nothing was lost and to run it again, exit 2."""
    lab = new_lab()
    monkeypatch.setattr(common, "connected_lab", lambda **_: lab)
    dlq = sqs.get_queue(lab.clients, lab.config.dlq_name)
    lab.clients("sqs").send_message(QueueUrl=dlq.url, MessageBody="still bad")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(sqs, "redrive", interrupted)
        assert cli.main(["redrive"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "nothing was lost" in err and "labkit redrive" in err and len(err.splitlines()) == 1

    assert cli.main(["redrive", "--limit", "-1"]) == cli.EXIT_ERROR
    assert "--limit" in capsys.readouterr().err
    assert cli.main(["redrive"]) == 0
    assert capsys.readouterr().out == "moved 1 message(s) from the DLQ back to the order queue\n"
