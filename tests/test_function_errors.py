"""A function that fails on real messages fails the checks of notebooks 04 and 05, and says why.

Lambda reports an unhandled error in the Invoke response (errorType, errorMessage, stackTrace) and
in the function's log (`[ERROR] <type>: <message>` and the traceback):
https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from labkit import events, notebook
from labkit.cli import main
from labkit.errors import ResourceError
from labkit.observe import charts as observe
from labkit.observe import journey, logs

# A handler that reads an attribute orders do not have: it raises KeyError on every real message.
BROKEN = """import json


def lambda_handler(event, context):
    for record in event["Records"]:
        envelope = json.loads(record["body"])
        order = json.loads(envelope["Message"])
        print("processing", order["orderId"])
        table = order["tableName"]
    return {"batchItemFailures": []}
"""
BROKEN_LINE = BROKEN.splitlines().index('        table = order["tableName"]') + 1
# The error in one line: a runtime that logs the traceback adds where it was raised.
ERROR_LINES = ("KeyError: 'tableName'", f"KeyError: 'tableName' (code.py, line {BROKEN_LINE}, in lambda_handler)")


@pytest.fixture
def broken_lab(built_lab: Any) -> Any:
    built_lab.ensure_function(source=BROKEN)
    return built_lab


def test_the_invoke_check_passes_on_the_labs_handler_and_removes_its_test_item(built_lab: Any) -> None:
    (result,) = built_lab.grade(only=["function.invoke"]).checks

    assert result.passed, result.message
    assert f"stored it in table {built_lab.config.table_name} with every field as sent" in result.message
    order_id = result.message.split("holding order ")[1].split()[0]
    assert built_lab.get_order(order_id) is None  # removed again


def test_the_invoke_check_fails_on_a_keyerror_handler_naming_the_error_and_the_line(broken_lab: Any) -> None:
    (result,) = broken_lab.grade(only=["function.invoke"]).checks

    assert not result.passed
    assert f"function {broken_lab.config.function_name} failed with KeyError: 'tableName'" in result.message
    assert f"(code.py, line {BROKEN_LINE}, in lambda_handler)" in result.message
    assert "The handler raised it: fix the line the traceback names." in result.message


def test_the_event_builder_gives_the_sample_order_inside_an_sns_envelope_inside_an_sqs_record() -> None:
    order = events.fresh_order("T")
    topic = "arn:aws:sns:eu-west-1:123456789012:OrderTopic"
    queue = "arn:aws:sqs:eu-west-1:123456789012:OrderQueue"

    (record,) = events.sqs_event(order, topic, queue)["Records"]

    assert journey.decode_body(record["body"])[0] == order
    envelope = json.loads(record["body"])
    assert (envelope["Type"], envelope["TopicArn"]) == ("Notification", topic)
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", queue, "eu-west-1")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert order["orderId"] != events.fresh_order("T")["orderId"]


@pytest.mark.slow
def test_the_flow_check_fails_on_a_keyerror_handler_with_the_functions_error(broken_lab: Any) -> None:
    # GIVEN a KeyError handler deployed; WHEN notebook 05 publishes a fresh order and follows it
    order = events.fresh_order("T")
    trip = journey.publish_and_track(broken_lab, order, timeout=30)

    # THEN each receive shows the error, and the check fails naming it
    assert trip.outcome == "dlq"
    assert trip.receive_counts == (1, 2, 3)
    assert trip.lines()[2] in [f"receive 1 by {broken_lab.config.function_name}: failed ({e})" for e in ERROR_LINES]
    assert trip.error is not None and (trip.error.error_type, trip.error.message) == ("KeyError", "'tableName'")
    with pytest.raises(ResourceError, match=r"not in .*Orders: the function failed on it with KeyError: 'tableName'"):
        notebook.check_order_stored(broken_lab, order, trip)

    # AND the DLQ table gives the message's receives and the last error
    table = observe.dlq_frame(broken_lab)
    (row,) = table.to_dict("records")
    assert (row["orderId"], row["receives"]) == (order["orderId"], 3)
    assert row["last error"] in ERROR_LINES

    # AND the log viewer shows the order's three invocations as CloudWatch lists them
    view = notebook.function_logs(broken_lab, order_id=order["orderId"])
    text = [line.split("  ", 1)[1] for line in view.lines()]
    assert [t.split(" RequestId")[0] for t in text if t.startswith(("START", "END", "REPORT"))] == [
        "START",
        "END",
        "REPORT",
    ] * 3
    assert sum(t.startswith("[ERROR] KeyError: 'tableName'") for t in text) == 3
    assert text.count(f"processing {order['orderId']}") == 3
    assert "<th>Timestamp</th>" in view._repr_html_()


def test_the_flow_check_fails_on_an_order_stored_by_an_earlier_run_only(built_lab: Any) -> None:
    # GIVEN the sample order stored by an earlier run, and the trigger now off so nothing new arrives
    built_lab.publish_order()
    built_lab.wait_until_drained(timeout=20)
    built_lab.ensure_trigger(enabled=False)
    order = events.fresh_order("T")
    built_lab.publish_order(order)

    # THEN the check of this run's order fails although an order is stored
    with pytest.raises(ResourceError, match=f"Order {order['orderId']} is not in"):
        notebook.check_order_stored(built_lab, order)


def test_labkit_logs_prints_an_orders_invocations_as_cloudwatch_lists_them(
    local_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_server.endpoint_url)
    assert main(["up"]) == 0
    order = events.fresh_order("CLI")
    assert main(["publish", "--json", json.dumps(order)]) == 0
    assert main(["publish", "--json", json.dumps(events.fresh_order("OTHER"))]) == 0
    from labkit.lab import connect

    with connect() as lab:
        lab.wait_until_drained(timeout=20)
    capsys.readouterr()

    assert main(["logs", "--order", order["orderId"], "--since", "5m"]) == 0
    out = capsys.readouterr().out.splitlines()

    messages = [line.split("  ", 1)[1] for line in out]
    assert [m.split(" RequestId")[0] for m in messages if not m.startswith("{")] == ["START", "END", "REPORT"]
    (record,) = [json.loads(m) for m in messages if m.startswith("{")]
    assert (record["orderId"], record["outcome"]) == (order["orderId"], "stored")
    request_id = messages[0].split()[2]

    assert main(["logs", "--request-id", request_id]) == 0
    assert capsys.readouterr().out.splitlines() == out
    # an order nobody published has no events, says so, and fails, so a script or a student notices
    assert main(["logs", "--order", "NO-SUCH-ORDER"]) == 1
    text = capsys.readouterr().out
    assert text.startswith("no log events in /aws/lambda/OrderProcessor for order NO-SUCH-ORDER")
    assert "No log line names order NO-SUCH-ORDER, and it is not in OrderDLQ" in text
    assert main(["logs", "--since", "yesterday"]) == 2
    assert "--since: 'yesterday' is not a duration" in capsys.readouterr().err


def test_the_log_viewer_says_when_there_is_nothing(built_lab: Any) -> None:
    view = notebook.function_logs(built_lab, request_id="no-such-request")
    assert str(view) == f"{logs.log_group(built_lab)}: 0 event(s), request no-such-request in the last 1h: none"


@pytest.mark.slow
def test_the_order_form_shows_the_functions_error(broken_lab: Any) -> None:
    from labkit.observe.widgets import OrderForm

    form = OrderForm(broken_lab, timeout=30)

    trip = form.publish()

    assert trip is not None and trip.outcome == "dlq"
    assert f"<li>DLQ: {trip.order_id} (KeyError: &#x27;tableName&#x27;" in form.journey.value
    assert len(re.findall(r"failed \(KeyError: &#x27;tableName&#x27;[^<]*</li>", form.journey.value)) == 3
    assert re.search(r"<pre[^>]*>KeyError: &#x27;tableName&#x27;", form.journey.value)


def test_aws_shaped_log_events_read_back_from_cloudwatch_logs(built_lab: Any) -> None:
    # GIVEN a failed invocation written to the log group as awslambdaric and Lambda write it
    request = "5e1f0c2a-1a2b-4697-b07a-ac58fc914c95"
    nbsp = "\u00a0"
    error = "\r".join(
        [
            "[ERROR] KeyError: 'orderId'",
            "Traceback (most recent call last):",
            f'{nbsp * 2}File "/var/task/code.py", line 12, in lambda_handler',
            f'{nbsp * 4}order_id = order["orderId"]',
        ]
    )
    lines = [
        f"START RequestId: {request} Version: $LATEST",
        "processing T-0000AAAA",
        error,
        f"END RequestId: {request}",
        f"REPORT RequestId: {request}\tDuration: 1.23 ms\tBilled Duration: 152 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 70 MB\tInit Duration: 150.00 ms",
    ]
    client = built_lab.clients("logs")
    group, stream = logs.log_group(built_lab), "2025/05/03/[$LATEST]0123456789abcdef0123456789abcdef"
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + n, "message": line} for n, line in enumerate(lines)],
    )

    # WHEN it is read back through the CloudWatch Logs API
    (invocation,) = logs.invocations(built_lab, since=now / 1000)
    view = notebook.function_logs(built_lab, order_id="T-0000AAAA")

    # THEN the error, its line and the REPORT figures survive, and the viewer shows the whole block
    assert invocation.reason() == "KeyError: 'orderId' (code.py, line 12, in lambda_handler)"
    assert (invocation.duration_ms, invocation.billed_ms, invocation.init_ms) == (1.23, 152, 150.0)
    assert len(view.events) == 5
    assert '      order_id = order["orderId"]' in str(view)


def test_the_flow_check_without_a_journey_finds_the_error_in_the_log(broken_lab: Any) -> None:
    # GIVEN a fresh order the KeyError handler failed on (its printed line names the order)
    order = events.fresh_order("T")
    broken_lab.publish_order(order)
    deadline = time.monotonic() + 20
    while not logs.invocations_of(logs.invocations(broken_lab, since=time.time() - 60), order["orderId"]):
        assert time.monotonic() < deadline, "the function never ran"
        time.sleep(0.2)

    # THEN the check, given only the order, names the function's error
    with pytest.raises(ResourceError, match=r"not in .*: the function failed on it with KeyError: 'tableName'"):
        notebook.check_order_stored(broken_lab, order)


def test_an_error_without_a_message_or_traceback_reads_cleanly() -> None:
    assert notebook.explain_error(logs.FunctionError("Sandbox.Timedout", "")) == (
        "Sandbox.Timedout.\nThe handler ran for the function's whole Timeout and was stopped: look for a loop that "
        "never ends or a call that waits, or raise the Timeout (keep the queue's visibility timeout at six times it). "
        "Then redeploy the function (notebook 04) and send the order again."
    )


@pytest.mark.slow
def test_an_orders_log_holds_its_own_init_errors_not_an_earlier_orders_failures(built_lab: Any) -> None:
    """An error at init is logged before START in the stream of the environment that tried, and its REPORT says
    `Status: error`; it belongs to the invocation that START opens, and so to the message that invocation was
    given: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib"""
    # GIVEN an order that a handler failed on three times with a KeyError it raised before logging anything
    built_lab.ensure_function(source="def lambda_handler(event, context):\n    return event['Recordz']\n")
    earlier = journey.publish_and_track(built_lab, events.fresh_order("EARLY"), timeout=40)
    assert earlier.outcome == "dlq" and "KeyError" in (earlier.reason or "")
    # AND then an order that a handler importing pandas failed on three times
    built_lab.ensure_function(source="import pandas\n\ndef lambda_handler(event, context):\n    return None\n")
    order = events.fresh_order("LATER")
    trip = journey.publish_and_track(built_lab, order, timeout=40)
    assert trip.outcome == "dlq"

    # WHEN the log is read for the later order, for the earlier one, and for an id nobody sent
    later = logs.select_events(built_lab, time.time() - 300, order_id=order["orderId"])
    first = logs.select_events(built_lab, time.time() - 300, order_id=earlier.order_id)

    # THEN each holds its own three invocations and its own error, with the init error's lines before START
    text = "\n".join(e["message"] for e in later)
    assert text.count("START RequestId") == 3 and text.count("Runtime.ImportModuleError: Unable to import") == 3
    assert "KeyError" not in text
    other = "\n".join(e["message"] for e in first)
    assert other.count("START RequestId") == 3 and "KeyError" in other and "ImportModuleError" not in other
    assert logs.select_events(built_lab, time.time() - 300, order_id="NOPE-123") == []
