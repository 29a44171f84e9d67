"""The SQS event Lambda hands a function: a ReceiveMessage reply turned into the event's records.

Each record carries the message's id, receipt handle, body, system attributes and message attributes
in Lambda's spelling (`messageId`, `md5OfBody`, `stringValue`...), with the queue's ARN and Region;
a batch is `{"Records": [...]}`: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html. Before
that, a mapping's FilterCriteria decide which messages make it into the batch, matched against the
message's body (parsed when it is JSON) and attributes; `filters.py` holds the pattern rules.
"""

from __future__ import annotations

import json
from typing import Any

from labkit.localcloud.filters import matches


def passes_filters(message: dict[str, Any], mapping: dict[str, Any]) -> bool:
    """True if *message* matches one of the mapping's filters (or it has none)."""
    filters = (mapping.get("FilterCriteria") or {}).get("Filters") or []
    if not filters:
        return True
    try:
        body: Any = json.loads(message.get("Body", ""))
    except ValueError:
        body = message.get("Body", "")
    record = {"body": body, "attributes": message.get("Attributes", {}), "messageAttributes": {}}
    return any(matches(json.loads(f.get("Pattern", "{}")), record) for f in filters)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the SQS event Lambda passes to a function, built from a ReceiveMessage reply."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            key: attributes[key]
            for key in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
                "AWSTraceHeader",
                "SequenceNumber",
                "MessageGroupId",
                "MessageDeduplicationId",
            )
            if key in attributes
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
