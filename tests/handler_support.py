"""What the handler's tests share: the body SQS holds for a message SNS delivered (raw delivery off).

The envelope is `labkit.events.sns_envelope`'s, the one `lab.invoke` and the notebooks send, with a
fixed MessageId so that a failing example reads the same each run.
https://docs.aws.amazon.com/sns/latest/dg/sns-sqs-as-subscriber.html
"""

from __future__ import annotations

import json

from labkit import events

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:OrderTopic"
MESSAGE_ID = "95df01b4-ee98-5cb9-9903-4c221d41eb5e"


def sns_envelope(message: str) -> str:
    """Wrap *message* as SNS delivers it to an SQS queue: a JSON notification, UTF-8 as it is."""
    return json.dumps(events.sns_envelope(message, TOPIC_ARN, MESSAGE_ID), ensure_ascii=False)
