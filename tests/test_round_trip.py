"""The stored order is the published order: publish through SNS, read the item back, compare byte for byte.

The whole pipeline runs (SNS -> SQS -> the Lambda service running lambda/code.py -> DynamoDB), and the item
is read with the low-level client, as `aws dynamodb get-item` and the DynamoDB console show it.
"""

import json
import time
from typing import Any

import pytest

from labkit.orders import SAMPLE_ORDER
from labkit.resources.sns import get_topic_arn

# The assignment's test message as typed into the SNS console's Publish message box.
SAMPLE_MESSAGE = json.dumps(SAMPLE_ORDER, indent=2)
# What a handler that rewrites text would change: padding, an offset, a fraction, non-ASCII text.
UNUSUAL_MESSAGE = (
    '{"orderId": " 01234-\u00e9 ", "userId": "U123 ", "itemName": "Laptop \u2013 15\\"\\t\U0001f4bb",'
    ' "quantity": 3, "status": " New", "timestamp": "2025-05-03T14:00:00.5+02:00", "coupon": "not stored"}'
)


def wait_for_item(lab: Any, order_id: str, timeout: float = 20) -> dict[str, Any]:
    """The item as the low-level client returns it (DynamoDB JSON), once the pipeline has stored it."""
    ddb = lab.clients("dynamodb")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = ddb.get_item(TableName=lab.config.table_name, Key={"orderId": {"S": order_id}}, ConsistentRead=True)
        if "Item" in item:
            return item["Item"]
        time.sleep(0.05)
    raise AssertionError(f"order {order_id!r} never reached table {lab.config.table_name}")


def published_attributes(message: str) -> dict[str, tuple[str, bytes]]:
    """The six schema attributes of a published JSON message: DynamoDB type and the exact published bytes.

    Numbers keep the digits they were written with (parse_int=str), so nothing is compared after rounding.
    """
    order = json.loads(message, parse_int=str)
    fields = ("orderId", "userId", "itemName", "quantity", "status", "timestamp")
    return {field: ("N" if field == "quantity" else "S", order[field].encode("utf-8")) for field in fields}


@pytest.mark.parametrize("message", [SAMPLE_MESSAGE, UNUSUAL_MESSAGE], ids=["sample", "unusual-text"])
def test_published_order_is_stored_byte_for_byte(built_lab: Any, message: str) -> None:
    """GIVEN the pipeline built as the assignment asks
    WHEN an order is published to the topic as JSON text
    THEN the item holds each of the six attributes with exactly the published bytes and type,
    plus timestampMicros, the instant its timestamp names (microseconds since 1970 UTC)."""
    expected = published_attributes(message)
    order_id = expected["orderId"][1].decode("utf-8")

    topic_arn = get_topic_arn(built_lab.config, built_lab.clients)
    built_lab.clients("sns").publish(TopicArn=topic_arn, Message=message)
    item = wait_for_item(built_lab, order_id)

    stored = {name: next(iter(value.items())) for name, value in item.items() if name != "timestampMicros"}
    assert {name: (kind, text.encode("utf-8")) for name, (kind, text) in stored.items()} == expected
    # 2025-05-03T12:00:00Z is 1,746,273,600 s after 1970-01-01T00:00:00Z; 14:00:00.5+02:00 is half a second later.
    instant = {SAMPLE_MESSAGE: 1_746_273_600_000_000, UNUSUAL_MESSAGE: 1_746_273_600_500_000}[message]
    assert item["timestampMicros"] == {"N": str(instant)}
