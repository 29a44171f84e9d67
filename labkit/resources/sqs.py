"""The SQS queue `OrderQueue`, its dead-letter queue `OrderDLQ`, the queue policy, counts and redrive."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from labkit.aws import SQS_NOT_FOUND_CODES, found_or_none
from labkit.config import Config
from labkit.errors import ResourceError
from labkit.session import Clients

log = logging.getLogger(__name__)

# A failed order waits in the DLQ for the longest SQS allows (14 days), so nothing expires before a
# student gets to look at it.
DLQ_RETENTION_S = 14 * 24 * 3600
COUNT_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class QueueInfo:
    """A queue's name, URL and ARN."""

    name: str
    url: str
    arn: str


def queue_policy_for_topic(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """A queue policy that lets SNS deliver to the queue for this one topic only.

    The `aws:SourceArn` condition stops any other topic, in any account, from using SNS as a
    confused deputy to write into the queue.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowOrderTopicOnly",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }


def redrive_policy(dlq_arn: str, max_receive_count: int) -> dict[str, Any]:
    """The redrive policy that moves a message to the DLQ after *max_receive_count* receives."""
    return {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}


def get_queue(clients: Clients, name: str) -> QueueInfo | None:
    """The queue called *name*, or None if there is none."""
    sqs = clients("sqs")
    url = found_or_none(lambda: sqs.get_queue_url(QueueName=name)["QueueUrl"], SQS_NOT_FOUND_CODES, f"queue {name}")
    if url is None:
        return None
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return QueueInfo(name=name, url=url, arn=arn)


def _ensure(config: Config, clients: Clients, name: str, attributes: dict[str, str]) -> QueueInfo:
    sqs = clients("sqs")
    queue = get_queue(clients, name)
    if queue is None:
        log.info("creating queue %s", name)
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=dict(config.tags))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return QueueInfo(name=name, url=url, arn=arn)
    current = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    if current.get("FifoQueue") == "true":
        raise ResourceError(f"Queue {name} is FIFO; the lab needs a standard queue. Delete it and run again.")
    changed = {k: v for k, v in attributes.items() if not _same(k, current.get(k), v)}
    if changed:
        log.info("updating queue %s: %s", name, sorted(changed))
        sqs.set_queue_attributes(QueueUrl=queue.url, Attributes=changed)
    return queue


def _same(key: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if key in ("RedrivePolicy", "Policy"):
        return json.loads(current) == json.loads(wanted)
    return current == wanted


def ensure_dlq(config: Config, clients: Clients) -> QueueInfo:
    """Create the dead-letter queue unless it exists.

    Args:
        config: names and tags.
        clients: boto3 clients for the backend.
    Returns:
        The DLQ's name, URL and ARN.
    """
    return _ensure(config, clients, config.dlq_name, {"MessageRetentionPeriod": str(DLQ_RETENTION_S)})


def ensure_queue(config: Config, clients: Clients, dlq_arn: str) -> QueueInfo:
    """Create the order queue with its redrive policy unless it exists; bring its settings in line.

    Args:
        config: names, visibility timeout, maxReceiveCount.
        clients: boto3 clients for the backend.
        dlq_arn: where messages go after maxReceiveCount failed receives.
    Returns:
        The queue's name, URL and ARN.
    """
    attributes = {
        "VisibilityTimeout": str(config.visibility_timeout),
        "RedrivePolicy": json.dumps(redrive_policy(dlq_arn, config.max_receive_count)),
    }
    return _ensure(config, clients, config.queue_name, attributes)


def ensure_queue_policy(clients: Clients, queue: QueueInfo, topic_arn: str) -> dict[str, Any]:
    """Attach the policy that lets only *topic_arn* send to *queue*; returns the policy."""
    policy = queue_policy_for_topic(queue.arn, topic_arn)
    sqs = clients("sqs")
    current = (
        sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")
    )
    if current is None or json.loads(current) != policy:
        sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy)})
    return policy


def delete_queue(clients: Clients, name: str) -> bool:
    """Delete the queue called *name*; True if it existed."""
    queue = get_queue(clients, name)
    if queue is None:
        return False
    clients("sqs").delete_queue(QueueUrl=queue.url)
    return True


def get_queue_counts(clients: Clients, url: str) -> dict[str, int]:
    """Visible, in-flight and delayed message counts of one queue (approximate on AWS)."""
    attributes = clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNT_ATTRIBUTES))["Attributes"]
    return {
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


def peek_messages(clients: Clients, url: str, max_messages: int = 10) -> list[dict[str, Any]]:
    """Look at up to *max_messages* messages and make them visible again at once (for inspecting the DLQ)."""
    sqs = clients("sqs")
    reply = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(10, max_messages)),
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
        VisibilityTimeout=30,
        WaitTimeSeconds=0,
    )
    messages = reply.get("Messages", [])
    if messages:
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        )
    return messages


def redrive(
    clients: Clients,
    source_url: str,
    target_url: str,
    limit: int | None = None,
    transform: Callable[[str], str] | None = None,
    only: Collection[str] | None = None,
) -> int:
    """Move messages from *source_url* (the DLQ) back to *target_url*; returns how many moved.

    Each message is sent before it is deleted, so an interruption can duplicate a message but never
    lose one; the handler's idempotent writes make a duplicate harmless. *transform* rewrites each
    body on the way (to fix a bad order); if it raises, that batch stays in the DLQ, visible again.
    Without *limit* it moves the messages the DLQ held when it started, so messages that fail again
    and come back meanwhile are not chased round in a loop. With *only* (SQS message ids) it moves
    those messages alone and leaves every other one where it was, visible again.
    """
    if only is not None:
        return _redrive_only(clients, source_url, target_url, set(only), transform)
    moved = 0
    if limit is None:
        limit = get_queue_counts(clients, source_url)["visible"]
    while moved < limit:
        messages = _receive(clients, source_url, max(1, min(10, limit - moved)))
        if not messages:
            break
        moved += _move(clients, source_url, target_url, messages, transform)
    return moved


def _redrive_only(
    clients: Clients, source_url: str, target_url: str, wanted: set[str], transform: Callable[[str], str] | None
) -> int:
    moved = 0
    others: list[dict[str, Any]] = []  # hidden while the rest is searched, then shown again at once
    try:
        while wanted:
            messages = _receive(clients, source_url, 10)
            if not messages:
                break
            mine = [m for m in messages if m["MessageId"] in wanted]
            others.extend(m for m in messages if m["MessageId"] not in wanted)
            if mine:
                moved += _move(clients, source_url, target_url, mine, transform)
                wanted -= {m["MessageId"] for m in mine}
    finally:
        _release_quietly(clients, source_url, others)
    return moved


def _receive(clients: Clients, url: str, count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        clients("sqs")
        .receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=count,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
            # A short wait: a zero-second receive samples only some SQS servers and may come back empty.
            WaitTimeSeconds=1,
        )
        .get("Messages", [])
    )
    return messages


def _move(
    clients: Clients,
    source_url: str,
    target_url: str,
    messages: list[dict[str, Any]],
    transform: Callable[[str], str] | None,
) -> int:
    """Send *messages* (received from *source_url*) to *target_url*, then delete them; returns how many moved."""
    sqs = clients("sqs")
    try:
        bodies = [transform(m["Body"]) if transform else m["Body"] for m in messages]
    except Exception:
        release_messages(clients, source_url, messages)
        raise
    entries = []
    for i, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(i), "MessageBody": bodies[i]}
        if message.get("MessageAttributes"):
            entry["MessageAttributes"] = message["MessageAttributes"]
        entries.append(entry)
    try:
        reply = sqs.send_message_batch(QueueUrl=target_url, Entries=entries)
        sent = {entry["Id"] for entry in reply.get("Successful", [])}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages) if str(i) in sent]
        if done:
            deleted = sqs.delete_message_batch(QueueUrl=source_url, Entries=done)
            if deleted.get("Failed"):
                log.warning("%d message(s) were sent back but stay in the DLQ too", len(deleted["Failed"]))
    except BaseException:
        # Interrupted between send and delete: hand the batch back at once rather than in 60 s. A
        # message already sent is then in both queues, a duplicate the idempotent handler absorbs.
        _release_quietly(clients, source_url, messages)
        raise
    if len(done) < len(messages):
        _release_quietly(clients, source_url, [m for i, m in enumerate(messages) if str(i) not in sent])
        failed = reply.get("Failed", [{}])[0]
        raise ResourceError(f"Could not send {len(messages) - len(done)} message(s) back: {failed.get('Message')}")
    return len(done)


def _release_quietly(clients: Clients, url: str, messages: list[dict[str, Any]]) -> None:
    try:
        release_messages(clients, url, messages)
    except Exception as exc:  # the messages come back by themselves after their visibility timeout
        log.debug("could not release %d message(s): %s", len(messages), exc)


def release_messages(clients: Clients, url: str, messages: list[dict[str, Any]]) -> None:
    """Make received *messages* visible again at once, so the next receive can return them."""
    sqs = clients("sqs")
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
