"""Orders Lab Lambda: store each order that SNS delivers through SQS in DynamoDB, exactly as published.

Paste it unchanged into the Lambda console: Python 3.11+, standard library and boto3 only. TABLE_NAME names the
table (default "Orders"). Each record ends stored, updated, duplicate, stale, or invalid or error (SQS retries)."""

import functools
import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

TEXT_FIELDS = ("orderId", "userId", "itemName", "status")
MAX_TEXT = 256  # at most 1 KiB of UTF-8: far below DynamoDB's 2048-byte key and 400 KB item limits
MAX_QUANTITY = 1_000_000
dynamodb = functools.cache(lambda: boto3.client("dynamodb"))  # made on first use (so tests start moto first), kept
HINTS = {
    "ResourceNotFoundException": "check that table {table!r} exists, or set TABLE_NAME",
    "AccessDeniedException": "allow dynamodb:PutItem in the function's execution role",
}


class NotAnSqsEvent(ValueError): ...  # the event has no "Records" list, so SQS did not send it


class BatchFailed(Exception): ...  # every record failed: raising makes SQS deliver them again (later to the DLQ)


class InvalidOrder(ValueError): ...  # the message cannot be stored; the text says why


def lambda_handler(event: Any, context: Any) -> dict[str, list[dict[str, Any]]]:
    """Store each order of an SQS batch and report the records that failed."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise NotAnSqsEvent('expected an SQS event: {"Records": [...]}')
    failed = []
    for record in records:
        message_id = record.get("messageId") if isinstance(record, dict) else None
        order = None
        try:
            order = read_order(record)
            outcome, reason = save(to_item(order), os.environ.get("TABLE_NAME", "Orders"))
        except InvalidOrder as exc:
            outcome, reason = "invalid", str(exc)
        log(record, message_id, order, outcome, reason)
        if outcome in ("invalid", "error"):
            failed.append((message_id, reason))
    if records and len(failed) == len(records):  # raising retries them even without ReportBatchItemFailures
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        raise BatchFailed(f"all {len(records)} record(s) failed: {'; '.join(f'{m}: {r}' for m, r in failed[:3])}{more}")
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id, _ in failed]}


def read_order(record: Any) -> dict[str, Any]:
    """Return the order in an SQS record, taking it out of the SNS envelope if there is one."""
    if not isinstance(record, dict):
        raise InvalidOrder("record is not a JSON object")
    text = record.get("body")
    if not isinstance(text, str):
        raise InvalidOrder("record has no body" if text is None else "body is not text")
    for what in ("body", "SNS Message"):  # SNS wraps the order unless the subscription has raw delivery on
        try:
            order = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep
            raise InvalidOrder(f"{what} is not valid JSON ({exc})") from None
        envelope = isinstance(order, dict) and order.get("Type") == "Notification" and "TopicArn" in order
        if not (envelope and isinstance(order.get("Message"), str)):  # orders have no Type
            break
        text = order["Message"]
    else:
        raise InvalidOrder("SNS Message holds another SNS envelope, not an order")
    if not isinstance(order, dict):
        raise InvalidOrder(f"order must be a JSON object (got {show(order)})")
    return order


def to_item(order: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Return the item for a valid order (its six attributes as published, and timestampMicros), or raise."""
    problems = [f"{f} is missing" for f in (*TEXT_FIELDS, "quantity", "timestamp") if f not in order]
    for field, value in ((f, order[f]) for f in TEXT_FIELDS if f in order):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{field} must be a non-empty string (got {show(value)})")
        elif len(value) > MAX_TEXT:
            problems.append(f"{field} must be at most {MAX_TEXT} characters (got {len(value)})")
        elif any("\ud800" <= char <= "\udfff" for char in value):  # JSON "\ud800" decodes to one
            problems.append(f"{field} contains an unpaired surrogate, which is not valid Unicode")
    quantity = order.get("quantity")  # below, type() and not isinstance(): JSON true is a bool, and bool an int
    if "quantity" in order and not (type(quantity) is int and 0 < quantity <= MAX_QUANTITY):
        problems.append(f"quantity must be a whole number from 1 to {MAX_QUANTITY} (got {show(quantity)})")
    micros = epoch_micros(order.get("timestamp"))
    if "timestamp" in order and micros is None:
        got = show(order["timestamp"])
        problems.append(f"timestamp must be an ISO 8601 date and time such as 2025-05-03T12:00:00Z (got {got})")
    if problems:  # refused with every reason, never edited into shape
        raise InvalidOrder("; ".join(problems))
    item = {field: {"S": order[field]} for field in (*TEXT_FIELDS, "timestamp")}  # as published, unedited
    return {**item, "quantity": {"N": str(quantity)}, "timestampMicros": {"N": str(micros)}}


def epoch_micros(value: Any) -> int | None:
    """Return an ISO 8601 timestamp as microseconds since 1970 UTC (no offset: UTC), or None."""
    try:  # Python 3.11+ reads the "Z" suffix; TypeError: not text; OverflowError: year 1 or 9999 shifted out of range
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // datetime.resolution


def save(item: dict[str, dict[str, str]], table: str) -> tuple[str, str | None]:
    """Put the item unless the table holds this or a newer version of the order; return (outcome, reason)."""
    try:
        response = dynamodb().put_item(
            TableName=table,
            Item=item,
            ConditionExpression="attribute_not_exists(orderId) OR timestampMicros < :micros",  # one atomic step
            ExpressionAttributeValues={":micros": item["timestampMicros"]},
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        code, message = (exc.response.get("Error", {}).get(key, "") for key in ("Code", "Message"))
        if code == "ConditionalCheckFailedException":  # this version (maybe in another notation) or a newer one
            same = {**exc.response.get("Item", {}), "timestamp": item["timestamp"]} == item
            return ("duplicate" if same else "stale"), None
        hint = f" ({HINTS[code].format(table=table)})" if code in HINTS else ""
        return "error", f"{code}: {message}{hint}"
    except BotoCoreError as exc:  # e.g. no network: retry this record, not the batch
        return "error", f"{type(exc).__name__}: {exc}"
    return ("updated" if "Attributes" in response else "stored"), None


def log(record: Any, message_id: Any, order: Any, outcome: str, reason: str | None) -> None:
    """Print one JSON line per record; Lambda sends it to the function's CloudWatch log group."""
    order_id = order.get("orderId") if isinstance(order, dict) else None
    order_id = order_id[:MAX_TEXT] if isinstance(order_id, str) else None
    attributes = record.get("attributes") if isinstance(record, dict) else None
    count = attributes.get("ApproximateReceiveCount") if isinstance(attributes, dict) else None  # text in AWS
    count = int(count) if isinstance(count, str) and count.isdecimal() and len(count) < 10 else None
    line = {"orderId": order_id, "messageId": message_id, "outcome": outcome, "reason": reason, "receiveCount": count}
    print(json.dumps(line, default=str))  # default=str: a hand-made test event may hold anything


def show(value: Any) -> str:
    """Return a short JSON rendering of a value for error messages (an object or array, maybe big or deep: named)."""
    text = "an object" if type(value) is dict else "an array" if type(value) is list else json.dumps(value)
    return text if len(text) <= 60 else text[:60] + "..."
