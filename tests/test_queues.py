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


def _visible_checks(monkeypatch: pytest.MonkeyPatch, action) -> int:
    """How many times moto asks a message whether it is visible while *action* runs."""
    calls = 0
    original = Message.visible

    def counting(self):
        nonlocal calls
        calls += 1
        return original.fget(self)

    monkeypatch.setattr(Message, "visible", property(counting))
    action()
    monkeypatch.setattr(Message, "visible", original)
    return calls


def _visible_checks_for_one_receive(sqs, url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    def receive_and_delete() -> None:
        message = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    return _visible_checks(monkeypatch, receive_and_delete)


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


def test_sending_costs_the_same_at_depth_2000_as_at_20(local_cloud, monkeypatch):
    """SendMessage never walks the queue: it reads one flag, not the message counts."""
    sqs = local_cloud.clients("sqs")
    local_cloud.service.stop()
    urls = {depth: _fill(sqs, f"send-{depth}", depth) for depth in (20, 2000)}
    walked = {
        depth: _visible_checks(monkeypatch, lambda url=url: sqs.send_message(QueueUrl=url, MessageBody="one more"))
        for depth, url in urls.items()
    }
    assert walked[20] == walked[2000]


def test_counts_are_what_sqs_reports(local_cloud):
    """Visible, in flight and delayed, as GetQueueAttributes gives them.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html
    """
    sqs = local_cloud.clients("sqs")
    local_cloud.service.stop()
    url = _fill(sqs, "counted", 7)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=60)
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert [attributes[n] for n in names] == ["4", "3", "1"]


def test_a_count_never_misses_a_message_whose_visibility_runs_out_while_it_is_read(local_cloud, monkeypatch):
    """All counts of one GetQueueAttributes are read at one moment: a message is visible or in flight, never neither.

    Read at two moments, a message whose visibility timeout ended between them was counted in
    neither, and a wait for a drained queue stopped while the message still awaited its redrive.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
    """
    import moto.sqs.models as sqs_models

    sqs = local_cloud.clients("sqs")
    local_cloud.service.stop()
    url = _fill(sqs, "turning", 1)
    before = sqs_models.unix_time_millis()
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)
    after = sqs_models.unix_time_millis()
    # The first reading falls inside the visibility timeout, every later one after its end.
    readings = iter([before + 30_000])
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda: next(readings, after + 90_000))
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]

    assert [attributes[n] for n in names] == ["0", "1"]
