"""The `labkit` command, against a local cloud server, and its errors."""

import json

import pytest

from labkit.cli import main


@pytest.fixture
def endpoint(local_server, monkeypatch):
    """Point the CLI at a fresh local cloud server, as `labkit serve` + AWS_ENDPOINT_URL would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_server.endpoint_url)
    monkeypatch.setenv("LABKIT_FUNCTION_TIMEOUT", "2")
    monkeypatch.setenv("LABKIT_VISIBILITY_TIMEOUT", "3")
    return local_server.endpoint_url


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def status(capsys):
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0
    return json.loads(out)


def wait_status(capsys, predicate, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = status(capsys)
        if predicate(counts):
            return counts
        time.sleep(0.1)
    pytest.fail(f"status never reached the expected state: {counts}")


def test_up_publish_status_orders_down(endpoint, capsys, tmp_path):
    code, out, _ = run(capsys, "up")
    assert code == 0 and "trigger      Enabled, batch size 1" in out
    assert run(capsys, "up")[0] == 0
    assert run(capsys, "publish", "--sample")[1] == "published 1 message(s) to OrderTopic\n"
    orders_file = tmp_path / "orders.json"
    orders_file.write_text(json.dumps([{**order, "orderId": f"F{i}"} for i, order in enumerate([{}, {}])]))
    good = {
        "orderId": "J1",
        "userId": "U1",
        "itemName": "Mouse",
        "quantity": 2,
        "status": "new",
        "timestamp": "2025-05-03T12:00:00Z",
    }
    assert run(capsys, "publish", "--json", json.dumps(good))[0] == 0
    assert run(capsys, "publish", "--count", "5")[1] == "published 5 message(s) to OrderTopic\n"
    assert run(capsys, "publish", "--body", "not an order")[0] == 0
    assert run(capsys, "publish", "--file", str(orders_file))[0] == 0
    counts = wait_status(capsys, lambda c: c["orders"] == 7 and c["dlq_visible"] == 3)
    assert set(counts) >= {"orders", "queue_visible", "queue_in_flight", "dlq_visible"}
    code, out, _ = run(capsys, "orders", "--json")
    ids = {order["orderId"] for order in json.loads(out)}
    assert {"01234", "J1"} <= ids and len(ids) == 7
    code, out, _ = run(capsys, "orders")
    assert "Laptop" in out
    code, out, _ = run(capsys, "down")
    assert code == 0 and out.startswith("deleted: trigger, function, role, topic, queue, dlq, table")
    assert status(capsys) == {
        "orders": None,
        "queue_visible": None,
        "queue_in_flight": None,
        "dlq_visible": None,
        "dlq_in_flight": None,
        "delivery_problem": None,
    }


def test_status_says_why_sns_cannot_deliver(endpoint, capsys):
    """A queue policy that does not allow the topic: SNS drops the order and counts it; status names the fix.
    https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html
    """
    import boto3

    run(capsys, "up")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="OrderQueue")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    run(capsys, "publish", "--sample")
    counts = status(capsys)
    assert counts["queue_visible"] == counts["queue_in_flight"] == 0 and counts["orders"] == 0
    problem = counts["delivery_problem"]
    assert "Queue OrderQueue has no access policy" in problem
    assert "SNS dropped 1 notification(s)" in problem and "Access policy" in problem
    code, out, _ = run(capsys, "status")
    assert code == 0 and "delivery         Queue OrderQueue has no access policy" in out


def test_redrive_moves_dlq_messages_back(endpoint, capsys):
    run(capsys, "up")
    run(capsys, "publish", "--body", "{broken")
    wait_status(capsys, lambda c: c["dlq_visible"] == 1)
    code, out, _ = run(capsys, "redrive")
    assert code == 0 and out == "moved 1 message(s) from the DLQ back to the order queue\n"
    assert wait_status(capsys, lambda c: c["dlq_visible"] == 1)["orders"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["publish", "--json", "{bad"], "--json is not valid JSON"),
        (["publish", "--json", "[1, 2]"], "must hold an order"),
        (["publish", "--count", "0"], "--count must be 1 or more"),
        (["publish", "--file", "no-such-file.json"], "Cannot read no-such-file.json"),
    ],
)
def test_bad_input_gets_one_clear_line(endpoint, capsys, argv, message):
    run(capsys, "up")
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("labkit: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_publish_before_up_names_the_missing_topic(endpoint, capsys):
    code, _, err = run(capsys, "publish", "--sample")
    assert code == 2 and "Topic OrderTopic does not exist yet" in err


def test_without_endpoint_the_cli_says_how_to_start_one(capsys):
    code, _, err = run(capsys, "status")
    assert code == 2
    assert "labkit serve" in err and "AWS_ENDPOINT_URL=http://127.0.0.1:5055" in err


def test_unreachable_endpoint_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run(capsys, "status")
    assert code == 2 and "cannot reach http://127.0.0.1:9" in err and err.count("\n") == 1


def test_bad_configuration_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_BACKEND", "gcp")
    code, _, err = run(capsys, "status")
    assert code == 2 and "Unknown backend 'gcp'" in err


def test_demo_prints_the_stored_order_and_the_dlq_count(capsys):
    code, out, _ = run(capsys, "demo", "--visibility-timeout", "1")
    assert code == 0
    assert '"orderId": "01234"' in out and '"itemName": "Laptop"' in out
    assert "\nDLQ: 1\n" in out
