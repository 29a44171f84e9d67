"""Behaviour of the Lambda handler in lambda/code.py, against moto's DynamoDB."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from handler_support import TOPIC_ARN, sns_envelope
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from labkit.orders import SAMPLE_ORDER

SEED_ORDER = dict(SAMPLE_ORDER)
# What the table holds for it: the order as published (quantity a Number), and the instant as a number
# (1746273600 s after 1970-01-01T00:00:00Z, in microseconds) that "newer" is judged by.
SEED_MICROS = 1_746_273_600_000_000
STORED_SEED = {**SEED_ORDER, "quantity": Decimal(1), "timestampMicros": Decimal(SEED_MICROS)}
MISSING = object()  # marks a key to remove from an order
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOG_KEYS = {"orderId", "messageId", "outcome", "reason", "receiveCount"}
SUCCESS = {"stored", "updated", "duplicate", "stale"}


# ---------------------------------------------------------------- helpers


def sqs_record(body: str, message_id: str = "msg-1", receive_count: int = 1) -> dict:
    """Build one SQS record the way Lambda delivers it."""
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1746273600552",
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "ApproximateFirstReceiveTimestamp": "1746273600583",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:OrderQueue",
        "awsRegion": "us-east-1",
    }


def order_event(*orders: dict, envelope: bool = True) -> dict:
    """Build an SQS event with one record per order (msg-1, msg-2, ...)."""
    records = []
    for number, order in enumerate(orders, start=1):
        body = json.dumps(order)
        records.append(sqs_record(sns_envelope(body) if envelope else body, f"msg-{number}"))
    return {"Records": records}


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Return the JSON log lines the handler printed since the last call."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def all_items(table: Any) -> dict[str, dict]:
    """Return every stored item, keyed by orderId."""
    return {item["orderId"]: item for item in table.scan()["Items"]}


def assert_valid_item(item: dict) -> None:
    """Fail unless item holds exactly the six schema attributes, all valid, and the timestamp's instant."""
    assert set(item) == {*SEED_ORDER, "timestampMicros"}
    for field in ("orderId", "userId", "itemName", "status"):
        assert isinstance(item[field], str)
        assert item[field].strip() != ""
        assert len(item[field]) <= 256
    assert isinstance(item["quantity"], Decimal)
    assert item["quantity"] == int(item["quantity"])
    assert 1 <= item["quantity"] <= 1_000_000
    moment = datetime.fromisoformat(item["timestamp"])
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    assert item["timestampMicros"] == (moment - EPOCH) // timedelta(microseconds=1)


# ---------------------------------------------------------------- storing orders


def test_sns_envelope_stores_the_seed_order(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN the seed order published to SNS and delivered through SQS
    WHEN the handler runs
    THEN the order is stored as published, with a Number quantity and the instant in timestampMicros."""
    result = handler.lambda_handler(load_event("sqs_sns_envelope"), lambda_context)

    assert result == {"batchItemFailures": []}
    assert orders_table.get_item(Key={"orderId": "01234"})["Item"] == STORED_SEED
    [line] = log_lines(capsys)
    assert line["outcome"] == "stored"
    assert line["orderId"] == "01234"


def test_raw_delivery_stores_the_same_item(handler, orders_table, load_event, lambda_context):
    """GIVEN a subscription with RawMessageDelivery=true (body is the order)
    WHEN the handler runs
    THEN the stored item is the same as through the SNS envelope."""
    result = handler.lambda_handler(load_event("sqs_raw_delivery"), lambda_context)

    assert result == {"batchItemFailures": []}
    assert orders_table.get_item(Key={"orderId": "01234"})["Item"] == STORED_SEED


def test_low_level_attribute_types(handler, orders_table, lambda_context):
    """GIVEN the seed order WHEN stored THEN quantity is a DynamoDB Number (N)."""
    handler.lambda_handler(order_event(SEED_ORDER), lambda_context)

    client = boto3.client("dynamodb")
    item = client.get_item(TableName="Orders", Key={"orderId": {"S": "01234"}})["Item"]
    assert item["quantity"] == {"N": "1"}
    assert item["timestamp"] == {"S": "2025-05-03T12:00:00Z"}
    assert item["timestampMicros"] == {"N": str(SEED_MICROS)}


def test_extra_keys_are_ignored_and_text_is_kept_as_published(handler, orders_table, lambda_context):
    """GIVEN a raw-delivered order with unknown keys and text padded with spaces
    WHEN stored THEN only the six schema attributes are kept, each exactly as published (padding too)."""
    order = {**SEED_ORDER, "orderId": "  01234 ", "itemName": " Laptop\t", "coupon": "FREE", "Type": "Notification"}

    result = handler.lambda_handler(order_event(order, envelope=False), lambda_context)

    assert result == {"batchItemFailures": []}
    stored = {**STORED_SEED, "orderId": "  01234 ", "itemName": " Laptop\t"}
    assert all_items(orders_table) == {"  01234 ": stored}


@pytest.mark.parametrize(
    ("timestamp", "micros"),
    [
        ("2025-05-03T12:00:00Z", SEED_MICROS),
        ("2025-05-03T14:00:00+02:00", SEED_MICROS),
        ("2025-05-03T12:00:00.5Z", SEED_MICROS + 500_000),
        ("2025-05-03T12:00:00", SEED_MICROS),  # no offset: UTC
        ("2025-05-03", SEED_MICROS - 12 * 3600 * 10**6),
        ("1969-12-31T23:59:59.999999Z", -1),
    ],
)
def test_timestamps_are_stored_as_written_with_their_instant(handler, orders_table, lambda_context, timestamp, micros):
    """GIVEN an ISO 8601 timestamp in any accepted form
    WHEN stored THEN its text is kept exactly, and timestampMicros holds its instant (microseconds since 1970 UTC)."""
    handler.lambda_handler(order_event({**SEED_ORDER, "timestamp": timestamp}), lambda_context)

    item = orders_table.get_item(Key={"orderId": "01234"})["Item"]
    assert item["timestamp"] == timestamp
    assert item["timestampMicros"] == micros


# ---------------------------------------------------------------- validation


GOOD = {**SEED_ORDER, "orderId": "good"}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"orderId": MISSING}, "orderId is missing"),
        ({"userId": MISSING}, "userId is missing"),
        ({"itemName": MISSING}, "itemName is missing"),
        ({"quantity": MISSING}, "quantity is missing"),
        ({"status": MISSING}, "status is missing"),
        ({"timestamp": MISSING}, "timestamp is missing"),
        ({"orderId": ""}, 'orderId must be a non-empty string (got "")'),
        ({"userId": "   "}, 'userId must be a non-empty string (got "   ")'),
        ({"itemName": 42}, "itemName must be a non-empty string (got 42)"),
        ({"status": ["new"]}, "status must be a non-empty string (got an array)"),
        ({"status": None}, "status must be a non-empty string (got null)"),
        ({"itemName": "x" * 257}, "itemName must be at most 256 characters (got 257)"),
        ({"userId": "U\ud800"}, "userId contains an unpaired surrogate"),
        ({"quantity": "1"}, 'quantity must be a whole number from 1 to 1000000 (got "1")'),
        ({"quantity": 1.5}, "quantity must be a whole number from 1 to 1000000 (got 1.5)"),
        ({"quantity": 1.0}, "(got 1.0)"),
        ({"quantity": True}, "quantity must be a whole number from 1 to 1000000 (got true)"),
        ({"quantity": 0}, "(got 0)"),
        ({"quantity": -1}, "(got -1)"),
        ({"quantity": 1_000_001}, "(got 1000001)"),
        ({"quantity": None}, "(got null)"),
        ({"timestamp": "yesterday"}, "timestamp must be an ISO 8601 date and time"),
        ({"timestamp": "2025-13-01T00:00:00Z"}, "timestamp must be an ISO 8601"),
        ({"timestamp": 1746273600}, "(got 1746273600)"),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp must be"),
    ],
)
def test_each_validation_rule_is_reported(handler, orders_table, lambda_context, capsys, changes, reason):
    """GIVEN a batch with a good order and one breaking a rule
    WHEN the handler runs
    THEN only the bad record is in batchItemFailures, its reason is logged,
    and nothing is stored for it."""
    bad = {key: value for key, value in {**SEED_ORDER, **changes}.items() if value is not MISSING}

    result = handler.lambda_handler(order_event(GOOD, bad), lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-2"}]}
    good_line, bad_line = log_lines(capsys)
    assert good_line["outcome"] == "stored"
    assert bad_line["outcome"] == "invalid"
    assert reason in bad_line["reason"]
    assert set(all_items(orders_table)) == {"good"}


def test_every_problem_is_reported_in_one_message(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN an order with several problems WHEN handled THEN one reason lists all."""
    with pytest.raises(handler.BatchFailed):
        handler.lambda_handler(load_event("sqs_invalid_order"), lambda_context)

    [line] = log_lines(capsys)
    assert line["orderId"] == "01236"
    assert line["reason"] == (
        'userId must be a non-empty string (got ""); '
        'quantity must be a whole number from 1 to 1000000 (got "1"); '
        "timestamp must be an ISO 8601 date and time such as "
        '2025-05-03T12:00:00Z (got "yesterday")'
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[1, 2]", "order must be a JSON object (got an array)"),
        ("42", "order must be a JSON object (got 42)"),
        ("null", "order must be a JSON object (got null)"),
        ('"an order"', 'order must be a JSON object (got "an order")'),
        ("", "body is not valid JSON"),
        ("not json", "body is not valid JSON"),
        ("[" * 100_000, "body is not valid JSON"),
        ("9" * 5000, "body is not valid JSON"),
        (sns_envelope("{oops"), "SNS Message is not valid JSON"),
        (sns_envelope("[]"), "order must be a JSON object (got an array)"),
        (sns_envelope(sns_envelope(json.dumps(SEED_ORDER))), "another SNS envelope"),
        # Message must be a string for an envelope; otherwise the body is read as an order.
        (json.dumps({"Type": "Notification", "TopicArn": TOPIC_ARN, "Message": SEED_ORDER}), "orderId is missing"),
    ],
)
def test_bodies_that_are_not_orders_are_invalid(handler, orders_table, lambda_context, capsys, body, reason):
    """GIVEN a body that is not a JSON order object
    WHEN it is the only record THEN the batch fails and the reason is logged."""
    with pytest.raises(handler.BatchFailed, match="msg-1"):
        handler.lambda_handler({"Records": [sqs_record(body)]}, lambda_context)

    [line] = log_lines(capsys)
    assert line["outcome"] == "invalid"
    assert reason in line["reason"]
    assert all_items(orders_table) == {}


def test_malformed_json_event_is_invalid(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN the malformed JSON sample WHEN handled THEN the batch fails."""
    with pytest.raises(handler.BatchFailed, match="body is not valid JSON"):
        handler.lambda_handler(load_event("sqs_malformed_json"), lambda_context)

    [line] = log_lines(capsys)
    assert line["outcome"] == "invalid"
    assert line["orderId"] is None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"messageId": "msg-1"}, "record has no body"),
        ({"messageId": "msg-1", "body": {"orderId": "1"}}, "body is not text"),
        ("not a record", "record is not a JSON object"),
        (None, "record is not a JSON object"),
    ],
)
def test_broken_records_are_invalid(handler, orders_table, lambda_context, capsys, record, reason):
    """GIVEN a record without a usable body WHEN handled THEN it is invalid."""
    event = {"Records": [sqs_record(json.dumps(GOOD), "msg-0"), record]}

    result = handler.lambda_handler(event, lambda_context)

    expected_id = record.get("messageId") if isinstance(record, dict) else None
    assert result == {"batchItemFailures": [{"itemIdentifier": expected_id}]}
    assert log_lines(capsys)[1]["reason"] == reason


@pytest.mark.parametrize("event", [None, [], "x", {}, {"Records": "x"}, {"records": []}])
def test_an_event_without_records_is_not_an_sqs_event(handler, event, lambda_context):
    """GIVEN an event that SQS did not send WHEN handled THEN a clear error says so."""
    with pytest.raises(handler.NotAnSqsEvent, match="expected an SQS event"):
        handler.lambda_handler(event, lambda_context)


def test_an_empty_batch_is_fine(handler, lambda_context, capsys):
    """GIVEN no records WHEN handled THEN nothing fails and nothing is logged."""
    assert handler.lambda_handler({"Records": []}, lambda_context) == {"batchItemFailures": []}
    assert log_lines(capsys) == []


# ---------------------------------------------------------------- idempotency and order


def test_redelivery_is_a_duplicate_that_changes_nothing(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN an order already stored
    WHEN SQS delivers the same message again
    THEN it succeeds as "duplicate" and the item is unchanged."""
    event = load_event("sqs_sns_envelope")
    handler.lambda_handler(event, lambda_context)

    result = handler.lambda_handler(event, lambda_context)

    assert result == {"batchItemFailures": []}
    assert [line["outcome"] for line in log_lines(capsys)] == ["stored", "duplicate"]
    assert all_items(orders_table) == {"01234": STORED_SEED}


def test_same_moment_in_another_notation_is_a_duplicate(handler, orders_table, lambda_context, capsys):
    """GIVEN a stored order WHEN it arrives again with the same instant written
    with an offset THEN the instants match: a duplicate, and the text first stored stays."""
    handler.lambda_handler(order_event(SEED_ORDER), lambda_context)
    same = {**SEED_ORDER, "timestamp": "2025-05-03T07:00:00.000-05:00"}

    handler.lambda_handler(order_event(same), lambda_context)

    assert [line["outcome"] for line in log_lines(capsys)] == ["stored", "duplicate"]
    assert all_items(orders_table) == {"01234": STORED_SEED}


def test_newer_timestamp_updates_the_status(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN a stored "new" order
    WHEN a message with a later timestamp says "shipped"
    THEN the item is updated."""
    handler.lambda_handler(load_event("sqs_sns_envelope"), lambda_context)

    result = handler.lambda_handler(load_event("sqs_status_update"), lambda_context)

    assert result == {"batchItemFailures": []}
    item = orders_table.get_item(Key={"orderId": "01234"})["Item"]
    assert item["status"] == "shipped"
    assert item["timestamp"] == "2025-05-04T09:30:00Z"
    assert [line["outcome"] for line in log_lines(capsys)] == ["stored", "updated"]


def test_older_timestamp_never_overwrites_newer(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN the "shipped" update stored first (messages arrived out of order)
    WHEN the older "new" message arrives
    THEN it succeeds as "stale" and the item stays "shipped"."""
    handler.lambda_handler(load_event("sqs_status_update"), lambda_context)

    result = handler.lambda_handler(load_event("sqs_sns_envelope"), lambda_context)

    assert result == {"batchItemFailures": []}
    assert orders_table.get_item(Key={"orderId": "01234"})["Item"]["status"] == "shipped"
    assert [line["outcome"] for line in log_lines(capsys)] == ["stored", "stale"]


def test_same_timestamp_with_other_content_keeps_the_first(handler, orders_table, lambda_context, capsys):
    """GIVEN a stored order WHEN another message has the same timestamp but a
    different status THEN the first write wins (stale)."""
    handler.lambda_handler(order_event(SEED_ORDER), lambda_context)

    handler.lambda_handler(order_event({**SEED_ORDER, "status": "paid"}), lambda_context)

    assert orders_table.get_item(Key={"orderId": "01234"})["Item"]["status"] == "new"
    assert [line["outcome"] for line in log_lines(capsys)] == ["stored", "stale"]


def test_status_changes_in_one_batch_end_at_the_latest(handler, orders_table, lambda_context):
    """GIVEN three versions of an order in one batch, newest in the middle
    WHEN handled THEN the newest version is stored."""
    versions = [
        {**SEED_ORDER, "status": "new", "timestamp": "2025-05-03T12:00:00Z"},
        {**SEED_ORDER, "status": "delivered", "timestamp": "2025-05-05T08:00:00Z"},
        {**SEED_ORDER, "status": "shipped", "timestamp": "2025-05-04T09:30:00Z"},
    ]

    handler.lambda_handler(order_event(*versions), lambda_context)

    assert orders_table.get_item(Key={"orderId": "01234"})["Item"]["status"] == "delivered"


# ---------------------------------------------------------------- batches and failures


def test_batch_where_every_record_fails_raises(handler, orders_table, lambda_context, capsys):
    """GIVEN a batch of only bad records
    WHEN handled THEN BatchFailed is raised (so SQS retries and later uses the
    DLQ even without ReportBatchItemFailures), naming each record."""
    event = {"Records": [sqs_record("{", "msg-1"), sqs_record("[]", "msg-2")]}

    with pytest.raises(handler.BatchFailed) as caught:
        handler.lambda_handler(event, lambda_context)

    message = str(caught.value)
    assert message.startswith("all 2 record(s) failed: ")
    assert "msg-1: body is not valid JSON" in message
    assert "msg-2: order must be a JSON object" in message
    assert len(log_lines(capsys)) == 2


def test_batch_failed_message_stays_short(handler, orders_table, lambda_context):
    """GIVEN ten bad records WHEN handled THEN the error names three and counts the rest."""
    event = {"Records": [sqs_record("{", f"msg-{n}") for n in range(10)]}

    with pytest.raises(handler.BatchFailed, match=r"; and 7 more$"):
        handler.lambda_handler(event, lambda_context)


def test_mixed_batch_reports_exactly_the_bad_records(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN the mixed sample batch (2 good, 1 malformed, 1 invalid)
    WHEN handled THEN exactly the two bad messageIds come back, the good are stored."""
    event = load_event("sqs_batch_mixed")
    bad_ids = [event["Records"][1]["messageId"], event["Records"][3]["messageId"]]

    result = handler.lambda_handler(event, lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": i} for i in bad_ids]}
    assert set(all_items(orders_table)) == {"01234", "01237"}
    outcomes = [line["outcome"] for line in log_lines(capsys)]
    assert outcomes == ["stored", "invalid", "stored", "invalid"]


def test_a_throttled_write_alone_raises(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN DynamoDB throttles the write
    WHEN the only record is handled THEN BatchFailed is raised and "error" logged."""
    stubber = Stubber(handler.dynamodb())
    stubber.add_client_error("put_item", service_error_code="ThrottlingException", service_message="Rate exceeded")
    stubber.activate()

    with pytest.raises(handler.BatchFailed, match="ThrottlingException: Rate exceeded"):
        handler.lambda_handler(load_event("sqs_sns_envelope"), lambda_context)

    [line] = log_lines(capsys)
    assert line["outcome"] == "error"
    assert line["orderId"] == "01234"


def test_a_failed_write_in_a_batch_is_reported(handler, orders_table, lambda_context, capsys):
    """GIVEN the first write is denied and the second succeeds
    WHEN the batch is handled THEN only the first record is reported."""
    stubber = Stubber(handler.dynamodb())
    stubber.add_client_error("put_item", service_error_code="AccessDeniedException", service_message="no")
    stubber.add_response("put_item", {})
    stubber.activate()

    result = handler.lambda_handler(order_event(SEED_ORDER, GOOD), lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    reason = log_lines(capsys)[0]["reason"]
    assert reason == "AccessDeniedException: no (allow dynamodb:PutItem in the function's execution role)"
    stubber.assert_no_pending_responses()


def test_a_missing_table_is_an_error_with_a_hint(handler, moto_aws, load_event, lambda_context, capsys):
    """GIVEN no Orders table WHEN a record is handled THEN the error says to check TABLE_NAME."""
    with pytest.raises(handler.BatchFailed, match="ResourceNotFoundException"):
        handler.lambda_handler(load_event("sqs_sns_envelope"), lambda_context)

    [line] = log_lines(capsys)
    assert line["outcome"] == "error"
    assert "check that table 'Orders' exists, or set TABLE_NAME" in line["reason"]


def test_unexpected_errors_are_not_swallowed(handler, orders_table, lambda_context, monkeypatch):
    """GIVEN a bug-like failure that is not an AWS error WHEN handled THEN it propagates."""

    def broken_client() -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(handler, "dynamodb", broken_client)

    with pytest.raises(RuntimeError, match="boom"):
        handler.lambda_handler(order_event(SEED_ORDER), lambda_context)


# ---------------------------------------------------------------- logging and settings


def test_one_json_log_line_per_record(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN a batch of four WHEN handled THEN four JSON lines with the same keys."""
    event = load_event("sqs_batch_mixed")
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "3"

    handler.lambda_handler(event, lambda_context)

    lines = log_lines(capsys)
    assert len(lines) == 4
    assert all(set(line) == LOG_KEYS for line in lines)
    assert [line["messageId"] for line in lines] == [r["messageId"] for r in event["Records"]]
    assert lines[0] == {
        "orderId": "01234",
        "messageId": event["Records"][0]["messageId"],
        "outcome": "stored",
        "reason": None,
        "receiveCount": 3,
    }
    assert lines[1]["orderId"] is None
    assert lines[3]["orderId"] == "01236"


def test_logs_never_contain_credentials(handler, orders_table, load_event, lambda_context, capsys):
    """GIVEN fake credentials in the environment WHEN handled THEN they are not logged."""
    handler.lambda_handler(load_event("sqs_batch_mixed"), lambda_context)

    assert "testing" not in capsys.readouterr().out


def test_table_name_env_var_is_honoured(handler, moto_aws, lambda_context, monkeypatch):
    """GIVEN TABLE_NAME=Orders-alice and that table
    WHEN handled THEN the order lands in Orders-alice."""
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.create_table(
        TableName="Orders-alice",
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("TABLE_NAME", "Orders-alice")

    handler.lambda_handler(order_event(SEED_ORDER), lambda_context)

    assert table.get_item(Key={"orderId": "01234"})["Item"] == STORED_SEED
    assert [t.name for t in dynamodb.tables.all()] == ["Orders-alice"]


def test_client_is_created_on_first_use_not_at_import(handler, orders_table, lambda_context):
    """GIVEN a freshly loaded handler THEN it has no client until it writes, and then one for every write."""
    assert handler.dynamodb.cache_info().currsize == 0

    handler.lambda_handler(order_event(SEED_ORDER, GOOD), lambda_context)

    assert handler.dynamodb.cache_info().currsize == 1
    assert handler.dynamodb() is handler.dynamodb()


def test_handler_honours_aws_endpoint_url(handler, monkeypatch):
    """GIVEN AWS_ENDPOINT_URL (e.g. a local emulator) THEN the client uses it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")

    assert handler.dynamodb().meta.endpoint_url == "http://localhost:4566"


def test_handler_reads_in_one_sitting(handler):
    """The file a student pastes into the console stays at most 150 lines, docstrings and comments included."""
    with open(handler.__file__, encoding="utf-8") as file:
        assert len(file.readlines()) <= 150


def test_handler_function_comes_first(handler):
    """The first function in the file is lambda_handler, for students reading it."""
    with open(handler.__file__, encoding="utf-8") as file:
        first_def = next(line for line in file if line.startswith("def "))
    assert first_def.startswith("def lambda_handler(event")


# ---------------------------------------------------------------- properties


offsets = st.builds(
    timezone,
    st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)),
)
moments = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(first=moments, second=moments)
def test_timestamp_micros_sort_in_time_order(handler, first, second):
    """For any two instants in any notation, timestampMicros compare as the instants do."""
    a = handler.epoch_micros(first.isoformat())
    text = second.isoformat()
    b = handler.epoch_micros(text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text)

    assert isinstance(a, int) and isinstance(b, int)
    assert (a < b) == (first < second)
    assert (a == b) == (first == second)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
surrogates = st.characters(categories=["Cs"])
texts = (
    st.sampled_from(["01234", "A", " B ", "", "  "])
    | st.text(max_size=300)
    | st.text(surrogates, min_size=1, max_size=2)
)
field_values = {
    "orderId": st.sampled_from(["01234", "A", " B "]) | json_values,
    "userId": texts | json_values,
    "itemName": texts | json_values,
    "quantity": st.integers(min_value=-2, max_value=1_000_002) | st.sampled_from([1, True, 1.0, "1"]) | json_values,
    "status": st.sampled_from(["new", "shipped", ""]) | json_values,
    "timestamp": moments.map(datetime.isoformat)
    | st.sampled_from(["2025-05-03T12:00:00Z", "2025-05-03T12:00:00", "soon"])
    | json_values,
}
valid_orders = st.fixed_dictionaries(
    {
        # Few distinct ids: repeats exercise duplicates and updates, and the table stays
        # small (scanning it twice per example is the slow part of this test).
        "orderId": st.sampled_from(["01234", " B ", "\u00e9", "\U0001f4e6"]) | st.text("AB ", min_size=1, max_size=2),
        "userId": st.text(min_size=1, max_size=20),
        "itemName": st.text(min_size=1, max_size=300),
        "quantity": st.integers(min_value=1, max_value=1_000_000),
        "status": st.sampled_from(["new", "paid", "shipped"]),
        "timestamp": moments.map(datetime.isoformat),
    },
    optional={"extra": json_values},
)


@st.composite
def broken_orders(draw: st.DrawFn) -> dict:
    """A mostly valid order with one field replaced by any JSON value, or removed."""
    order = draw(valid_orders)
    field = draw(st.sampled_from(sorted(SEED_ORDER)))
    value = draw(st.none() | field_values[field])
    if value is None:
        del order[field]
    else:
        order[field] = value
    return order


orders = st.one_of(
    valid_orders,
    broken_orders(),
    st.fixed_dictionaries(field_values),
    st.fixed_dictionaries({}, optional={**field_values, "extra": json_values}),
)
bodies = st.one_of(
    valid_orders.map(json.dumps),
    valid_orders.map(lambda order: sns_envelope(json.dumps(order))),
    orders.map(json.dumps),
    orders.map(lambda order: sns_envelope(json.dumps(order))),
    json_values.map(json.dumps),
    st.text(),
)


@pytest.mark.slow
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(bodies, min_size=1, max_size=3))
def test_any_body_is_stored_validly_or_reported(handler, orders_table, capsys, batch):
    """For any bodies: each record is stored as a valid item or reported failed,
    with one log line each; the only exception is BatchFailed, when all failed."""
    ids = [f"msg-{n}" for n in range(len(batch))]
    sqs_event = {"Records": [sqs_record(body, i) for body, i in zip(batch, ids, strict=True)]}
    before = all_items(orders_table)

    try:
        result = handler.lambda_handler(sqs_event, None)
    except handler.BatchFailed:
        failed = set(ids)
    else:
        failed = {failure["itemIdentifier"] for failure in result["batchItemFailures"]}
        assert failed < set(ids)

    lines = log_lines(capsys)
    assert [line["messageId"] for line in lines] == ids
    for line in lines:
        event(line["outcome"])
        assert (line["outcome"] in SUCCESS) == (line["messageId"] not in failed)
    after = all_items(orders_table)
    for item in after.values():
        assert_valid_item(item)
    changed = {key for key in after if after[key] != before.get(key)}
    written = [line for line in lines if line["outcome"] in ("stored", "updated")]
    assert len(changed) <= len(written)


def test_stored_items_keep_clear_of_dynamodb_limits(handler, orders_table, lambda_context):
    """GIVEN the longest allowed text in 4-byte characters WHEN stored THEN it fits."""
    longest = "\U0001f4e6" * 256  # 1 KiB of UTF-8, half the 2048-byte key limit
    order = {**SEED_ORDER, "orderId": longest, "userId": longest, "itemName": longest}

    result = handler.lambda_handler(order_event(order), lambda_context)

    assert result == {"batchItemFailures": []}
    assert_valid_item(orders_table.get_item(Key={"orderId": longest})["Item"])
