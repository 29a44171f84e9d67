"""Orders Lab Lambda: save orders arriving through SNS -> SQS into DynamoDB.

Paste this file unchanged into the Lambda console (Python 3.11 or newer); it
needs only the standard library and boto3. Set the environment variable
TABLE_NAME if your table is not called "Orders".

Each record ends as one of: stored, updated (newer timestamp), duplicate or
stale (nothing changed), invalid or error (reported back to SQS for a retry).
"""

import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

TEXT_FIELDS = ("orderId", "userId", "itemName", "status")
FIELDS = (*TEXT_FIELDS, "quantity", "timestamp")
# 256 characters is at most 1 KiB of UTF-8: the key stays under DynamoDB's
# 2048-byte limit and a whole item stays far below the 400 KB item limit.
MAX_TEXT = 256
MAX_QUANTITY = 1_000_000
FAILED = ("invalid", "error")
HINTS = {
    "ResourceNotFoundException": "check that table {table!r} exists, or set TABLE_NAME",
    "AccessDeniedException": "allow dynamodb:PutItem in the function's execution role",
}

_client = None  # made on first use, not at import, so tests can start moto first


class NotAnSqsEvent(ValueError):
    """The event has no "Records" list, so SQS did not send it."""


class BatchFailed(Exception):
    """Every record failed; raising makes Lambda retry them (and later the DLQ)."""


class InvalidOrder(ValueError):
    """The message cannot be stored; the text says why."""


def lambda_handler(event: Any, context: Any) -> dict[str, list[dict[str, Any]]]:
    """Store each order of an SQS batch and report the records that failed."""
    records = _records(event)
    table = os.environ.get("TABLE_NAME", "Orders")
    failures, reasons = [], []
    for record in records:
        message_id = record.get("messageId") if isinstance(record, dict) else None
        order_id, outcome, reason = _process(record, table)
        _log(record, message_id, order_id, outcome, reason)
        if outcome in FAILED:
            failures.append({"itemIdentifier": message_id})
            reasons.append(f"{message_id}: {reason}")
    if records and len(failures) == len(records):
        # Without ReportBatchItemFailures on the trigger a returned list is ignored and the
        # messages deleted; only an exception makes SQS deliver them again (then the DLQ).
        more = f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        summary = "; ".join(reasons[:3])
        raise BatchFailed(f"all {len(records)} record(s) failed: {summary}{more}")
    return {"batchItemFailures": failures}


def _records(event: Any) -> list[Any]:
    """Return the event's Records list, or raise NotAnSqsEvent."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise NotAnSqsEvent('expected an SQS event: {"Records": [...]}')
    return records


def _process(record: Any, table: str) -> tuple[str | None, str, str | None]:
    """Handle one SQS record and return (orderId, outcome, reason)."""
    if not isinstance(record, dict):
        return None, "invalid", "record is not a JSON object"
    try:
        order = _parse_body(record.get("body"))
    except InvalidOrder as exc:
        return None, "invalid", str(exc)
    raw_id = order.get("orderId")
    order_id = raw_id.strip()[:MAX_TEXT] if isinstance(raw_id, str) else None
    try:
        item = _to_item(order)
    except InvalidOrder as exc:
        return order_id, "invalid", str(exc)
    outcome, reason = _write(item, table)
    return order_id, outcome, reason


def _parse_body(body: Any) -> dict[str, Any]:
    """Return the order in an SQS body, unwrapping one SNS envelope if present."""
    if not isinstance(body, str):
        raise InvalidOrder("record has no body" if body is None else "body is not text")
    order = _loads(body, "body")
    # Default SNS -> SQS delivery wraps the order in an envelope; with
    # RawMessageDelivery=true the body is the order itself.
    if _is_envelope(order):
        order = _loads(order["Message"], "SNS Message")
        if _is_envelope(order):
            raise InvalidOrder("SNS Message holds another SNS envelope, not an order")
    if not isinstance(order, dict):
        raise InvalidOrder(f"order must be a JSON object (got {_show(order)})")
    return order


def _loads(text: str, what: str) -> Any:
    """Parse JSON text, raising InvalidOrder instead of a parser error."""
    try:
        return json.loads(text)
    # ValueError covers bad JSON and over-long integers; RecursionError deep nesting.
    except (ValueError, RecursionError) as exc:
        raise InvalidOrder(f"{what} is not valid JSON ({exc})") from None


def _is_envelope(value: Any) -> bool:
    """Tell whether value is an SNS notification envelope (orders have no Type)."""
    return (
        isinstance(value, dict)
        and value.get("Type") == "Notification"
        and isinstance(value.get("Message"), str)
        and "TopicArn" in value
    )


def _to_item(order: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Return the DynamoDB item for a valid order, or raise with every problem."""
    # Extra keys are ignored: only the six schema attributes are stored.
    problems = [f"{field} is missing" for field in FIELDS if field not in order]
    for field in TEXT_FIELDS:
        if field in order and (problem := _text_problem(order[field])):
            problems.append(f"{field} {problem}")
    quantity = order.get("quantity")
    # type() rather than isinstance(): JSON true is a bool, and bool is an int.
    whole = type(quantity) is int and 0 < quantity <= MAX_QUANTITY
    if "quantity" in order and not whole:
        problems.append(f"quantity must be a whole number from 1 to {MAX_QUANTITY} (got {_show(quantity)})")
    timestamp = _canonical_time(order.get("timestamp"))
    if "timestamp" in order and timestamp is None:
        got = _show(order["timestamp"])
        problems.append(f"timestamp must be an ISO 8601 date and time such as 2025-05-03T12:00:00Z (got {got})")
    if problems:
        raise InvalidOrder("; ".join(problems))
    item = {field: {"S": order[field].strip()} for field in TEXT_FIELDS}
    item["quantity"] = {"N": str(quantity)}
    item["timestamp"] = {"S": timestamp}
    return item


def _text_problem(value: Any) -> str | None:
    """Say what is wrong with a text field, or None if it is fine."""
    if not isinstance(value, str) or not value.strip():
        return f"must be a non-empty string (got {_show(value)})"
    if len(value.strip()) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters (got {len(value.strip())})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON "\ud800" decodes to an unpaired surrogate
        return "contains an unpaired surrogate, which is not valid Unicode"
    return None


def _canonical_time(value: Any) -> str | None:
    """Return the timestamp in canonical UTC form, or None if it is not ISO 8601."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)  # Python 3.11+ accepts the "Z" suffix
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # no offset given: UTC
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out
        return None
    # DynamoDB compares strings character by character, so "#ts < :ts" in _write only
    # follows time order if every stored timestamp has one fixed-width shape:
    # UTC, 4-digit year, always 6 fraction digits, e.g. 2025-05-03T12:00:00.000000Z.
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _write(item: dict[str, dict[str, str]], table: str) -> tuple[str, str | None]:
    """Put the item unless the table holds the same or a newer version of it."""
    try:
        response = _dynamodb().put_item(
            TableName=table,
            Item=item,
            # Check and write are one atomic step (no read-then-write), so a redelivered
            # or out-of-order message can never undo a newer version of the order.
            ConditionExpression="attribute_not_exists(orderId) OR #ts < :ts",
            ExpressionAttributeNames={"#ts": "timestamp"},  # a reserved word
            ExpressionAttributeValues={":ts": item["timestamp"]},
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        if code == "ConditionalCheckFailedException":
            # The table already holds this version or a newer one: done, not an error.
            return ("duplicate" if exc.response.get("Item") == item else "stale"), None
        hint = f" ({HINTS[code].format(table=table)})" if code in HINTS else ""
        return "error", f"{code}: {error.get('Message', '')}{hint}"
    except BotoCoreError as exc:  # e.g. no network: retry this record, not the batch
        return "error", f"{type(exc).__name__}: {exc}"
    return ("updated" if "Attributes" in response else "stored"), None


def _dynamodb() -> Any:
    """Return the shared DynamoDB client, creating it on first use."""
    global _client
    if _client is None:
        _client = boto3.client("dynamodb")
    return _client


def _log(record: Any, message_id: Any, order_id: str | None, outcome: str, reason: str | None) -> None:
    """Print one JSON line per record; Lambda sends stdout to CloudWatch Logs."""
    line = {
        "orderId": order_id,
        "messageId": message_id,
        "outcome": outcome,
        "reason": reason,
        "receiveCount": _receive_count(record),
    }
    # default=str: a hand-made test event may hold values JSON cannot encode.
    print(json.dumps(line, default=str))


def _receive_count(record: Any) -> int | None:
    """Return how many times SQS has delivered this message, if the record says."""
    attributes = record.get("attributes") if isinstance(record, dict) else None
    if not isinstance(attributes, dict):
        return None
    count = attributes.get("ApproximateReceiveCount")  # AWS sends it as a string
    ok = isinstance(count, str) and count.isdecimal() and len(count) < 10
    return int(count) if ok else None


def _show(value: Any) -> str:
    """Return a short JSON rendering of a value for error messages."""
    if isinstance(value, (dict, list)):  # may be huge or deeply nested: name it only
        return "an object" if isinstance(value, dict) else "an array"
    if isinstance(value, str) and len(value) > 40:
        value = value[:40] + "..."
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:60] + "..."
