"""The local cloud's Lambda service behaves like Lambda's SQS pollers."""

import json
import time

import pytest

from labkit.orders import MALFORMED_BODY, SAMPLE_ORDER, generate_orders

# A handler that records each invocation in the table, so a test can read what Lambda passed.
RECORDER = """
import json, os, boto3

def lambda_handler(event, context):
    ddb = boto3.client("dynamodb")
    failures = []
    for record in event["Records"]:
        body = record["body"]
        ddb.put_item(TableName=os.environ["TABLE_NAME"], Item={
            "orderId": {"S": "call-" + context.aws_request_id + "-" + record["messageId"]},
            "batch": {"N": str(len(event["Records"]))},
            "receiveCount": {"S": record["attributes"]["ApproximateReceiveCount"]},
            "remaining": {"N": str(context.get_remaining_time_in_millis())},
            "requestId": {"S": context.aws_request_id},
            "record": {"S": json.dumps({k: v for k, v in record.items() if k != "body"})},
            "env": {"S": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")},
        })
        if "fail" in body:
            failures.append({"itemIdentifier": record["messageId"]})
    if failures and len(failures) == len(event["Records"]):
        raise RuntimeError("every record failed")
    return {"batchItemFailures": failures}
"""


def wait_for(predicate, timeout=60.0, interval=0.05):
    """Poll *predicate* until it returns a truthy value; fail the test after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")


def calls(lab):
    return [item for item in lab.order_items() if item["orderId"].startswith("call-")]


def test_sample_order_flows_from_topic_to_table(built_lab):
    built_lab.publish_order()
    counts = built_lab.wait_until_drained(timeout=60)
    assert counts["orders"] == 1 and counts["dlq_visible"] == 0
    stored = built_lab.get_order("01234")
    assert {k: stored[k] for k in ("userId", "itemName", "quantity", "status")} == {
        "userId": "U123",
        "itemName": "Laptop",
        "quantity": 1,
        "status": "new",
    }


@pytest.mark.slow
def test_poison_message_reaches_the_dlq_after_exactly_three_receives(built_lab):
    # GIVEN the handler that records each receive, and a message it always fails
    built_lab.ensure_function(source=RECORDER)
    built_lab.publish_order("fail me")
    # WHEN the queue drains
    counts = built_lab.wait_until_drained(timeout=60)
    # THEN the function saw receive counts 1, 2 and 3, and the message sits in the DLQ
    assert sorted(item["receiveCount"] for item in calls(built_lab)) == ["1", "2", "3"]
    assert counts["dlq_visible"] == 1
    (message,) = built_lab.dlq_messages()
    assert json.loads(message["Body"])["Message"] == "fail me"


def test_event_and_context_match_what_lambda_passes(built_lab):
    built_lab.ensure_function(source=RECORDER)
    built_lab.publish_order(SAMPLE_ORDER)
    (call,) = wait_for(lambda: calls(built_lab))
    record = json.loads(call["record"])
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":OrderQueue")
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert 0 < call["remaining"] <= built_lab.config.function_timeout * 1000
    assert len(call["requestId"]) == 36
    assert call["env"] == "OrderProcessor"


def test_batch_size_ten_takes_up_to_ten_records_per_call(local_cloud, make_lab):
    lab = make_lab(batch_size=10)
    lab.up()
    lab.ensure_function(source=RECORDER)
    lab.ensure_trigger(enabled=False)
    lab.publish_orders(list(generate_orders(25)))
    wait_for(lambda: lab.counts()["queue_visible"] == 25)
    lab.ensure_trigger(enabled=True)
    lab.wait_until_drained(timeout=60)
    batches = [item["batch"] for item in calls(lab)]
    assert len(batches) == 25
    assert max(batches) == 10 and min(batches) >= 1
    assert local_cloud.service.stats["invocations"] < 25


@pytest.mark.slow
def test_partial_batch_failure_retries_only_the_failed_record(local_cloud, make_lab):
    lab = make_lab(batch_size=10)
    lab.up()
    lab.ensure_function(source=RECORDER)
    lab.ensure_trigger(enabled=False)
    lab.publish_orders(["ok 1", "fail 2", "ok 3"])
    wait_for(lambda: lab.counts()["queue_visible"] == 3)
    lab.ensure_trigger(enabled=True)
    counts = lab.wait_until_drained(timeout=60)
    seen = {}
    for item in calls(lab):
        seen[item["receiveCount"]] = seen.get(item["receiveCount"], 0) + 1
    # Three records on the first receive, then only the failed one on receives 2 and 3.
    assert seen == {"1": 3, "2": 1, "3": 1}
    assert counts["dlq_visible"] == 1


def test_disabled_trigger_leaves_orders_in_the_queue(built_lab):
    built_lab.ensure_trigger(enabled=False)
    built_lab.publish_order()
    wait_for(lambda: built_lab.counts()["queue_visible"] == 1)
    time.sleep(0.5)
    assert built_lab.counts()["orders"] == 0
    built_lab.ensure_trigger(enabled=True)
    assert built_lab.wait_until_drained(timeout=60)["orders"] == 1


def test_no_trigger_means_nothing_is_consumed(make_lab):
    lab = make_lab()
    lab.up(through=3)
    lab.ensure_function()
    lab.publish_order()
    wait_for(lambda: lab.counts()["queue_visible"] == 1)
    time.sleep(0.5)
    assert lab.counts() == {
        "orders": 0,
        "queue_visible": 1,
        "queue_in_flight": 0,
        "dlq_visible": 0,
        "dlq_in_flight": 0,
    }


def test_code_update_is_picked_up(built_lab):
    built_lab.ensure_function(source=RECORDER)
    built_lab.publish_order("first")
    wait_for(lambda: calls(built_lab))
    built_lab.ensure_function()
    built_lab.publish_order(SAMPLE_ORDER)
    wait_for(lambda: built_lab.get_order("01234"))


def test_invoke_runs_the_deployed_handler(built_lab, load_event):
    # The console's Test button with the seed's order in an SQS event.
    result = built_lab.invoke(load_event("sqs_sns_envelope"))
    assert result.status_code == 200 and result.function_error is None
    assert result.payload == {"batchItemFailures": []}
    assert "START RequestId" in result.log_tail and "REPORT RequestId" in result.log_tail
    assert built_lab.get_order("01234") is not None
    failed = built_lab.invoke(load_event("sqs_malformed_json"))
    assert failed.function_error == "Handled" or failed.function_error == "Unhandled"
    assert failed.payload["errorType"] == "BatchFailed"


@pytest.mark.slow
def test_handler_over_its_timeout_is_retried(built_lab):
    slow = "import time\ndef lambda_handler(event, context):\n    time.sleep(context.get_remaining_time_in_millis() / 1000 + 0.5)\n"
    built_lab.ensure_function(source=slow)
    built_lab.publish_order()
    counts = built_lab.wait_until_drained(timeout=60)
    assert counts["dlq_visible"] == 1
    assert "timed out" in built_lab.cloud.service.last_error["errorMessage"]


def test_function_logs_reach_cloudwatch_logs(built_lab):
    built_lab.publish_order()
    built_lab.wait_until_drained(timeout=60)
    events = built_lab.clients("logs").filter_log_events(logGroupName="/aws/lambda/OrderProcessor")["events"]
    lines = [e["message"] for e in events]
    assert any(line.startswith("START RequestId") for line in lines)
    outcome = [json.loads(line) for line in lines if line.startswith("{")]
    assert outcome and outcome[0]["orderId"] == "01234" and outcome[0]["outcome"] == "stored"


@pytest.mark.slow
def test_malformed_body_and_good_order_end_where_they_should(built_lab):
    built_lab.publish_orders([SAMPLE_ORDER, MALFORMED_BODY])
    counts = built_lab.wait_until_drained(timeout=60)
    assert (counts["orders"], counts["dlq_visible"]) == (1, 1)
