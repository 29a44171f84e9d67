"""Events as Lambda hands them to the function: an SQS batch whose record wraps the SNS notification.

The shapes follow AWS's samples: the SQS event at
https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html and the SNS-to-SQS envelope at
https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html. Use them to invoke the
deployed function as SQS would (the console's Test button, `lab.invoke`).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from labkit.orders import SAMPLE_ORDER


def new_order_id(prefix: str = "T") -> str:
    """A fresh orderId such as `T-1A2B3C4D`, so a check judges this run's order, not one stored earlier."""
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


def fresh_order(prefix: str = "T", **changes: Any) -> dict[str, Any]:
    """The sample order with a fresh orderId and the current UTC time (changes applied last)."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {**SAMPLE_ORDER, "orderId": new_order_id(prefix), "timestamp": stamp, **changes}


def sns_envelope(message: Mapping[str, Any] | str, topic_arn: str, message_id: str | None = None) -> dict[str, Any]:
    """The notification SNS puts in an SQS message body (raw delivery off), wrapping *message*."""
    text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Message": text,
        "Timestamp": now,
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": f"https://sns.{_region(topic_arn)}.amazonaws.com/SimpleNotificationService-EXAMPLE.pem",
        "UnsubscribeURL": f"https://sns.{_region(topic_arn)}.amazonaws.com/?Action=Unsubscribe",
    }


def sqs_event(order: Mapping[str, Any] | str, topic_arn: str, queue_arn: str, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event of one record whose body is the SNS envelope of *order*, as the trigger delivers it."""
    body = json.dumps(sns_envelope(order, topic_arn), ensure_ascii=False)
    now_ms = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "EXAMPLE-" + uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": now_ms,
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": _region(queue_arn),
            }
        ]
    }


def _region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else "us-east-1"
