"""The dead-letter queue read without taking anything away: its messages, and the order inside each.

Reading an SQS message hides it for a while; each read here makes the messages visible again before
it returns, so a scan consumes nothing and a student's failed orders stay where SQS put them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from labkit.lambdalog import CLOCK_SKEW_S
from labkit.resources import sqs

if TYPE_CHECKING:
    from labkit.lab import Lab

DLQ_SCAN_LIMIT = 100


def decode_body(body: str) -> tuple[Any, str | None]:
    """The order inside an SQS body (unwrapping an SNS envelope) and the SNS message id, if any.

    A body that is not JSON comes back as the text itself.
    """
    try:
        value = json.loads(body)
    except ValueError:
        return body, None
    if isinstance(value, dict) and value.get("Type") == "Notification" and isinstance(value.get("Message"), str):
        try:
            return json.loads(value["Message"]), value.get("MessageId")
        except ValueError:
            return value["Message"], value.get("MessageId")
    return value, None


def scan_dlq(lab: Lab, limit: int = DLQ_SCAN_LIMIT) -> list[dict[str, Any]]:
    """Up to *limit* DLQ messages, each made visible again before this returns (nothing is consumed)."""
    dlq = sqs.get_queue(lab.clients, lab.config.dlq_name)
    if dlq is None:
        return []
    client = lab.clients("sqs")
    seen: dict[str, dict[str, Any]] = {}
    try:
        while len(seen) < limit:
            # Hidden for a moment so the next receive returns other messages; released below.
            batch = client.receive_message(
                QueueUrl=dlq.url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                MessageSystemAttributeNames=["All"],
                VisibilityTimeout=10,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in seen]
            seen.update((m["MessageId"], m) for m in batch)
            if not fresh:
                break
    finally:
        sqs.release_messages(lab.clients, dlq.url, list(seen.values()))
    return list(seen.values())


def find_in_dlq(
    lab: Lab, order_id: str | None = None, message_id: str | None = None, since: float | None = None
) -> dict[str, Any] | None:
    """The DLQ message for an SNS *message_id*, or for *order_id* sent after *since*; None if absent."""
    dlq = sqs.get_queue(lab.clients, lab.config.dlq_name)
    # Counting first is one cheap call and, unlike a scan, touches no message.
    if dlq is None or not any(sqs.get_queue_counts(lab.clients, dlq.url).values()):
        return None
    for message in scan_dlq(lab):
        order, sns_id = decode_body(message["Body"])
        if message_id and sns_id == message_id:
            return message
        sent = int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000
        same_order = order_id is not None and isinstance(order, dict) and order.get("orderId") == order_id
        if same_order and (since is None or sent >= since - CLOCK_SKEW_S):
            return message
    return None


def sent_at(message: dict[str, Any]) -> float:
    """When *message* was first sent to a queue (epoch seconds); moving it to the DLQ keeps that time."""
    return int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000
