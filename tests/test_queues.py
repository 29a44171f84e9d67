"""SQS as the local cloud serves it: same answers as moto's, at a cost that does not grow with depth."""

from __future__ import annotations

import pytest
from moto.sqs.models import Message

from labkit.localcloud import queues


def _fill(sqs, name: str, depth: int) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for start in range(0, depth, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(min(10, depth - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return url


def _visible_checks_for_one_receive(sqs, url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    calls = 0
    original = Message.visible

    def counting(self):
        nonlocal calls
        calls += 1
        return original.fget(self)

    monkeypatch.setattr(Message, "visible", property(counting))
    message = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    monkeypatch.setattr(Message, "visible", original)
    return calls


def test_receive_and_delete_cost_the_same_at_depth_2000_as_at_20(local_cloud, monkeypatch):
    """A receive walks only to its batch, a delete only to its message: work per order is flat in depth."""
    sqs = local_cloud.clients("sqs")
    local_cloud.service.stop()
    shallow = _fill(sqs, "shallow", 20)
    deep = _fill(sqs, "deep", 2000)
    assert _visible_checks_for_one_receive(sqs, deep, monkeypatch) == _visible_checks_for_one_receive(
        sqs, shallow, monkeypatch
    )


def test_messages_come_back_in_order_and_deletes_behave_as_in_sqs(local_cloud):
    """Order of sending, a second delete of the same handle accepted, an unknown handle refused.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessage.html
    """
    sqs = local_cloud.clients("sqs")
    local_cloud.service.stop()
    url = _fill(sqs, "ordered", 25)
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        for message in got:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert bodies == [f"m{i}" for i in range(25)]
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")


def test_the_replaced_moto_parts_are_still_there():
    assert queues.problems() == []
