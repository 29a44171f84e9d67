"""Properties of the handler over arbitrary bodies, with an exact oracle, and through the local cloud's Lambda service.

tests/test_handler.py checks that any body is stored validly or reported; these add what it leaves
out: the exact item for every valid order and nothing for every broken one, bodies up to the SQS
size limit, SNS envelopes nested to any depth, and the same inputs run by the Lambda service.
"""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pytest
from handler_support import sns_envelope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.experiments.reliability import epoch_micros
from labkit.experiments.scenarios import local_lab

SQS_MAX_BYTES = 256 * 1024
TEXT_FIELDS = ("orderId", "userId", "itemName", "status")
SUCCESS = {"stored", "updated", "duplicate", "stale"}
FIXTURES_OK = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(FIXTURES_OK, max_examples=25)


def wrap(body: str, depth: int) -> str:
    for _ in range(depth):
        body = sns_envelope(body)
    return body


def record(body, message_id="msg-0"):
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1",
    }


# ---------------------------------------------------------------- strategies

# Any Unicode but lone surrogates, which are not valid UTF-8 and which the handler rejects on purpose.
characters = st.characters(exclude_categories=("Cs",))
texts = st.text(characters, min_size=1, max_size=256).filter(lambda t: t.strip() != "")
moments = st.datetimes(
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.none()
    | st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23), max_value=timedelta(hours=23))),
)
valid_orders = st.fixed_dictionaries(
    {
        "orderId": texts,
        "userId": texts,
        "itemName": texts,
        "quantity": st.integers(min_value=1, max_value=1_000_000),
        "status": texts,
        "timestamp": moments.map(datetime.isoformat),
    },
    optional={"note": st.text(max_size=20), "Type": st.just("Notification")},
)
not_text = st.sampled_from([0, 1.5, True, False, None, [], {}, ["x"], {"S": "x"}])
blank = st.text(" \t\n\r\u00a0\u2003\u3000", max_size=5)
too_long = st.integers(min_value=257, max_value=50_000).map(lambda n: "x" * n)
surrogate = st.tuples(texts, st.characters(categories=["Cs"])).map(lambda p: p[0] + p[1])
BROKEN = {
    **{field: not_text | blank | too_long | surrogate for field in TEXT_FIELDS},
    "quantity": st.sampled_from(["1", 1.5, 1.0, True, False, 0, -3, 1_000_001, 10**30, None, [1], {}]),
    "timestamp": st.sampled_from(["soon", "", "2025-13-01T00:00:00Z", "2025-05-03T25:00:00Z", 1746273600, None])
    | st.text(min_size=65, max_size=80),
}
MISSING = object()


@st.composite
def broken_orders(draw):
    """A valid order with one field replaced by a value the schema forbids, or removed."""
    order = draw(valid_orders)
    field = draw(st.sampled_from(sorted(BROKEN)))
    value = draw(st.just(MISSING) | BROKEN[field])
    if value is MISSING:
        del order[field]
    else:
        order[field] = value
    return order


def stored_item(order):
    """The item the handler must store for a valid order, as boto3's Table returns it: the six attributes
    exactly as published, and the timestamp's instant as a number."""
    item = {field: order[field] for field in (*TEXT_FIELDS, "timestamp")}
    return {
        **item,
        "quantity": Decimal(order["quantity"]),
        "timestampMicros": Decimal(epoch_micros(order["timestamp"])),
    }


def clear(table):
    for item in table.scan(ProjectionExpression="orderId")["Items"]:
        table.delete_item(Key={"orderId": item["orderId"]})


@pytest.fixture(scope="module")
def service_lab():
    """A built pipeline (batches of ten) whose Lambda service is driven by hand, one poll at a time.

    The queue's visibility timeout is 0, so a failed message is received again at the next poll and
    reaches the DLQ within four polls, without waiting.
    """
    # One local cloud for the module (moto costs seconds to start): its table serves the handler tests too.
    with local_lab(batch_size=10) as lab:
        yield _manual(lab)


def _manual(lab):
    lab.cloud.service.stop()
    mapping = lab.clients("lambda").list_event_source_mappings(FunctionName=lab.config.function_name)
    queue_url = lab.clients("sqs").get_queue_url(QueueName=lab.config.queue_name)["QueueUrl"]
    lab.clients("sqs").set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "0"})
    return lab, mapping["EventSourceMappings"][0], queue_url


@pytest.fixture
def orders_table(service_lab):
    """The Orders table of the module's local cloud (boto3 Table), emptied."""
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(service_lab[0].config.table_name)
    clear(table)
    return table


# ---------------------------------------------------------------- the handler with an exact oracle


@FIXTURES_OK
@given(
    orders=st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=4).flatmap(
        lambda shape: st.tuples(
            st.just(shape), st.tuples(*[valid_orders if valid else broken_orders() for valid, _ in shape])
        )
    )
)
def test_each_record_is_stored_exactly_or_reported_and_nothing_else(handler, orders_table, capsys, orders):
    """For a batch of valid and broken orders, raw or in 1 to 3 nested SNS envelopes: a valid order in at most
    one envelope is stored exactly as the schema says; anything else is reported failed and stores nothing."""
    shape, bodies = orders
    clear(orders_table)
    capsys.readouterr()
    # Distinct ids per record, so that two records of one batch never race for one key.
    for n, order in enumerate(bodies):
        order_id = order.get("orderId")
        valid = isinstance(order_id, str) and 0 < len(order_id.strip()) <= 256
        if valid and not any("\ud800" <= c <= "\udfff" for c in order_id):
            order["orderId"] = f"{n}-{order_id[:250]}"
    event = {
        "Records": [
            record(wrap(json.dumps(o, ensure_ascii=False), depth), f"m{n}")
            for n, (o, (_, depth)) in enumerate(zip(bodies, shape, strict=True))
        ]
    }
    expect_stored = {
        f"m{n}": o for n, (o, (valid, depth)) in enumerate(zip(bodies, shape, strict=True)) if valid and depth <= 1
    }

    try:
        reply = handler.lambda_handler(event, None)
        failed = {f["itemIdentifier"] for f in reply["batchItemFailures"]}
    except handler.BatchFailed:
        failed = {f"m{n}" for n in range(len(bodies))}

    assert failed == {f"m{n}" for n in range(len(bodies))} - set(expect_stored)
    items = {item["orderId"]: item for item in orders_table.scan()["Items"]}
    assert items == {o["orderId"]: stored_item(o) for o in expect_stored.values()}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["messageId"] for line in lines] == [f"m{n}" for n in range(len(bodies))]
    assert all(len(json.dumps(line)) < 4_096 for line in lines), "a log line grew with its input"


@st.composite
def huge_bodies(draw):
    """A valid order padded with an ignored field, in 0 or 1 envelope, up to the SQS limit of 256 KiB."""
    order = draw(valid_orders)
    char = draw(st.sampled_from(["a", "é", "\u20ac", "\U0001f4e6", '"', "\\", "\n", " "]))
    target = draw(st.integers(min_value=1_000, max_value=SQS_MAX_BYTES))
    depth = draw(st.integers(0, 1))
    # Room for the order, and JSON escaping: a quote or backslash costs two bytes, twice inside an envelope.
    cost = len(json.dumps(char, ensure_ascii=False).encode()) - 2
    order["padding"] = char * max(0, (target - 3_000) // (cost * (2 if depth else 1)))
    body = wrap(json.dumps(order, ensure_ascii=False), depth)
    return order, body


@FEW
@given(case=huge_bodies())
def test_bodies_up_to_the_sqs_size_limit_are_stored(handler, orders_table, case):
    """A valid order in a body of up to 256 KiB is stored, and its item holds only the six attributes."""
    order, body = case
    assert len(body.encode()) <= SQS_MAX_BYTES
    clear(orders_table)

    reply = handler.lambda_handler({"Records": [record(body)]}, None)

    assert reply == {"batchItemFailures": []}
    assert orders_table.get_item(Key={"orderId": order["orderId"]})["Item"] == stored_item(order)


@FEW
@given(
    field=st.sampled_from(TEXT_FIELDS),
    size=st.integers(min_value=257, max_value=SQS_MAX_BYTES // 4 - 1_000),
    char=st.sampled_from(["x", "\U0001f4e6", "\u0301"]),
    order=valid_orders,
)
def test_a_huge_field_is_reported_in_a_short_line(handler, orders_table, capsys, field, size, char, order):
    """A schema field far over 256 characters (up to the size limit) is invalid, and the log line stays short."""
    order[field] = char * size
    body = json.dumps(order, ensure_ascii=False)
    assert len(body.encode()) <= SQS_MAX_BYTES
    capsys.readouterr()

    with pytest.raises(handler.BatchFailed):
        handler.lambda_handler({"Records": [record(body)]}, None)

    [line] = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert line["outcome"] == "invalid" and f"{field} must be at most 256 characters" in line["reason"]
    assert len(json.dumps(line)) < 4_096


def test_a_body_of_exactly_256_kib_is_stored(handler, orders_table):
    """The largest body SQS accepts, 262,144 bytes in an SNS envelope, holding a valid order: stored."""
    order = {"orderId": "big", "userId": "U1", "itemName": "Pen", "quantity": 1, "status": "new"}
    order["timestamp"] = "2025-05-03T12:00:00Z"
    order["padding"] = ""
    size = len(sns_envelope(json.dumps(order)).encode())
    order["padding"] = "\u20ac" * ((SQS_MAX_BYTES - size) // 3) + "a" * ((SQS_MAX_BYTES - size) % 3)
    body = sns_envelope(json.dumps(order, ensure_ascii=False))
    assert len(body.encode()) == SQS_MAX_BYTES

    assert handler.lambda_handler({"Records": [record(body)]}, None) == {"batchItemFailures": []}
    assert orders_table.get_item(Key={"orderId": "big"})["Item"] == stored_item(order)


# ---------------------------------------------------------------- through the local cloud's Lambda service

# What SQS accepts in a body (anything else is refused at SendMessage, so it never reaches a function).
sqs_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00\ufffe\uffff"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(characters, max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(characters, max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _not_an_order(text):
    try:
        value = json.loads(text)
    except ValueError:
        return True
    return not isinstance(value, dict) or "orderId" not in value


service_bodies = st.one_of(
    st.tuples(valid_orders, st.integers(0, 1)).map(lambda p: (True, p[0], wrap(json.dumps(p[0]), p[1]))),
    st.tuples(valid_orders, st.integers(2, 4)).map(lambda p: (False, p[0], wrap(json.dumps(p[0]), p[1]))),
    broken_orders().map(lambda o: (False, o, json.dumps(o))),
    json_values.map(json.dumps).filter(_not_an_order).map(lambda b: (False, None, b)),
    sqs_text.filter(lambda t: t != "" and _not_an_order(t)).map(lambda b: (False, None, b)),
)


@FEW
@given(batch=st.lists(service_bodies, min_size=1, max_size=10))
def test_the_lambda_service_survives_any_batch(service_lab, batch):
    """For any batch of bodies on the queue, the Lambda service runs the deployed handler without crashing:
    valid orders are stored exactly, every other message reaches the DLQ, and nothing invalid is stored."""
    lab, mapping, queue_url = service_lab
    sqs, service = lab.clients("sqs"), lab.cloud.service
    for item in lab.order_items():
        lab.clients("dynamodb").delete_item(TableName=lab.config.table_name, Key={"orderId": {"S": item["orderId"]}})
    # Distinct ids per message, as in the handler test above.
    entries, expected = [], {}
    for n, (valid, order, body) in enumerate(batch):
        if valid:
            order = {**order, "orderId": f"{n}-{order['orderId'][:250]}"}
            body = wrap(json.dumps(order), body.count('"TopicArn"'))
            expected[order["orderId"]] = order
        entries.append({"Id": str(n), "MessageBody": body})
    sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    errors_before = service.stats["poll_errors"]
    dlq_before = lab.counts()["dlq_visible"]

    while service.poll_once(mapping):
        pass

    assert service.stats["poll_errors"] == errors_before
    items = {item["orderId"]: item for item in lab.order_items()}
    assert set(items) == set(expected)
    for order_id, order in expected.items():
        expected_item = stored_item(order)
        assert items[order_id] == {
            **expected_item,
            "quantity": order["quantity"],
            "timestampMicros": int(expected_item["timestampMicros"]),
        }
    counts = lab.counts()
    assert counts["queue_visible"] == counts["queue_in_flight"] == 0
    assert counts["dlq_visible"] - dlq_before == len(batch) - len(expected)


@FEW
@given(event=json_values | st.fixed_dictionaries({"Records": st.lists(json_values, max_size=3)}))
def test_lambda_invoke_of_any_event_answers(service_lab, event):
    """For any JSON event, `lambda invoke` (the console's Test button) answers 200, with or without a function error."""
    lab, _, _ = service_lab

    result = lab.invoke(event)

    assert result.status_code == 200
    assert result.function_error in (None, "Unhandled")
    if result.function_error:
        assert set(result.payload) >= {"errorMessage", "errorType"}
