"""Reading the function's log as AWS writes it: START..END blocks, the runtime's error event, REPORT lines.

The literal lines below have the shapes AWS documents for Python functions:
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html (START, END and REPORT lines, with
Init Duration on a cold start) and https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
(the `[ERROR] <type>: <message>` event followed by the traceback). awslambdaric writes that error as one
event whose lines are joined by "\\r" and whose traceback is indented with no-break spaces.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from labkit import lambdaerrors
from labkit.observe import logs

REQUEST = "8f507cfc-1a2b-4697-b07a-ac58fc914c95"
OTHER = "c0ffee00-1a2b-4697-b07a-ac58fc914c95"
STREAM = "2025/05/03/[$LATEST]3893a1b27fac4485b47bb75b671a283c"
NBSP = "\u00a0"
WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in "
    "rare cases, a Lambda runtime update can cause unexpected function behavior."
)
# As awslambdaric's StandardLogSink writes it: one event, "\r" between lines, traceback indented with U+00A0.
AWSLAMBDARIC_ERROR = "\r".join(
    [
        "[ERROR] KeyError: 'orderId'",
        "Traceback (most recent call last):",
        f'{NBSP * 2}File "/var/task/code.py", line 12, in lambda_handler',
        f'{NBSP * 4}order_id = order["orderId"]',
    ]
)
REPORT = (
    f"REPORT RequestId: {REQUEST}\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
    "Max Memory Used: 70 MB\tInit Duration: 150.00 ms\t"
)


def event(at_ms: int, message: str, stream: str = STREAM) -> dict[str, Any]:
    return {"timestamp": at_ms, "message": message + "\n", "logStreamName": stream}


def record_line(order_id: str, outcome: str = "stored", reason: str | None = None) -> str:
    reason_json = "null" if reason is None else f'"{reason}"'
    return (
        f'{{"orderId": "{order_id}", "messageId": "m-{order_id}", "outcome": "{outcome}", '
        f'"reason": {reason_json}, "receiveCount": 1}}'
    )


def test_an_awslambdaric_error_event_gives_type_message_and_the_students_line() -> None:
    # GIVEN a failed invocation exactly as AWS's runtime logs it
    events = [
        event(1000, f"START RequestId: {REQUEST} Version: $LATEST"),
        event(1001, WARNING),
        event(1002, AWSLAMBDARIC_ERROR),
        event(1003, f"END RequestId: {REQUEST}"),
        event(1003, REPORT),
    ]

    # WHEN it is parsed
    (invocation,) = logs.parse_invocations(events)

    # THEN the error, its traceback and the REPORT figures are all there
    assert invocation.request_id == REQUEST
    assert invocation.failed
    assert invocation.error is not None
    assert (invocation.error.error_type, invocation.error.message) == ("KeyError", "'orderId'")
    assert invocation.error.where == logs.Frame(
        "/var/task/code.py", 12, "lambda_handler", 'order_id = order["orderId"]'
    )
    assert invocation.error.traceback[-1] == '    order_id = order["orderId"]'
    assert invocation.reason() == "KeyError: 'orderId' (code.py, line 12, in lambda_handler)"
    assert (invocation.duration_ms, invocation.billed_ms) == (1.23, 2)
    assert (invocation.memory_mb, invocation.max_memory_mb, invocation.init_ms) == (128, 70, 150.0)
    assert len(invocation.events) == 5


def test_the_same_error_written_one_line_per_event_parses_the_same() -> None:
    # GIVEN the error written line by line ("\n" or separate events), as older runtimes and the local one do
    lines = AWSLAMBDARIC_ERROR.replace(NBSP, " ").split("\r")
    events = [
        event(1000, f"START RequestId: {REQUEST} Version: $LATEST"),
        *(event(1001, line) for line in lines),
        event(1002, f"END RequestId: {REQUEST}"),
        event(1002, f"REPORT RequestId: {REQUEST}\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB"),
    ]
    joined = [*events[:1], event(1001, "\n".join(lines)), *events[-2:]]

    # WHEN both are parsed
    (one_per_event,) = logs.parse_invocations(events)
    (joined_by_newline,) = logs.parse_invocations(joined)

    # THEN both give the error of the awslambdaric event
    for invocation in (one_per_event, joined_by_newline):
        assert invocation.error == logs.FunctionError(
            "KeyError",
            "'orderId'",
            (
                "Traceback (most recent call last):",
                '  File "/var/task/code.py", line 12, in lambda_handler',
                '    order_id = order["orderId"]',
            ),
        )
        assert invocation.memory_mb == 128 and invocation.max_memory_mb is None and invocation.init_ms is None


def test_an_error_without_a_traceback_still_names_the_error() -> None:
    (invocation,) = logs.parse_invocations(
        [
            event(1000, f"START RequestId: {REQUEST} Version: $LATEST"),
            event(1001, "[ERROR] KeyError: 'orderId'"),
            event(1002, f"END RequestId: {REQUEST}"),
        ]
    )

    assert invocation.error == logs.FunctionError("KeyError", "'orderId'")
    assert invocation.error.where is None
    assert invocation.reason() == "KeyError: 'orderId'"
    assert invocation.duration_ms is None  # no REPORT line (yet): nothing is made up


def test_a_timeout_line_marks_its_request_failed() -> None:
    # GIVEN Lambda's timeout line, which names the request and comes after the block
    events = [
        event(1000, f"START RequestId: {REQUEST} Version: $LATEST"),
        event(4000, f"END RequestId: {REQUEST}"),
        event(4000, f"2025-05-03T12:00:03.012Z {REQUEST} Task timed out after 3.00 seconds"),
        event(
            4000, f"REPORT RequestId: {REQUEST}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB"
        ),
    ]

    (invocation,) = logs.parse_invocations(events)

    assert invocation.failed and invocation.error is None
    assert invocation.timed_out_after == 3.0
    assert invocation.reason() == "Task timed out after 3.00 seconds"
    assert invocation.billed_ms == 3000


@pytest.mark.parametrize(
    ("reason", "error_type"),
    [("exit status 1", "Runtime.ExitError"), ("signal: killed", "Runtime.OutOfMemory")],
)
def test_a_runtime_exit_marks_its_request_failed(reason: str, error_type: str) -> None:
    """Lambda's lines when the process ended: https://repost.aws/knowledge-center/lambda-runtime-error"""
    events = [
        event(1000, f"START RequestId: {REQUEST} Version: $LATEST"),
        event(1500, f"RequestId: {REQUEST} Error: Runtime exited with error: {reason}"),
        event(1500, error_type),
        event(1500, f"END RequestId: {REQUEST}"),
        event(1500, REPORT),
    ]

    (invocation,) = logs.parse_invocations(events)

    assert invocation.failed and invocation.error is not None
    assert invocation.error.error_type == error_type
    assert invocation.error.message == f"RequestId: {REQUEST} Error: Runtime exited with error: {reason}"
    # the one-line reason leaves out the request id, which the block already names
    assert invocation.reason() == f"{error_type}: Runtime exited with error: {reason}"


def test_logging_error_records_and_handler_lines_are_not_the_runtimes_error() -> None:
    # GIVEN a handler that logs with logging.error (a tab after [ERROR]) and prints its JSON line, and succeeds
    (invocation,) = logs.parse_invocations(
        [
            event(1000, f"START RequestId: {REQUEST} Version: $LATEST"),
            event(1001, f"[ERROR]\t2025-05-03T12:00:00.001Z\t{REQUEST}\ttable is slow"),
            event(1001, record_line("01234")),
            event(1002, f"END RequestId: {REQUEST}"),
            event(1002, REPORT),
        ]
    )

    assert invocation.error is None and not invocation.failed
    assert [(r.order_id, r.outcome) for r in invocation.records] == [("01234", "stored")]


# The JSON log format's unhandled error: the Invoke response's three fields, on one line.
JSON_ERROR = json.dumps(
    {
        "timestamp": "2025-05-03T12:00:01.000Z",
        "level": "ERROR",
        "errorMessage": "'orderId'",
        "errorType": "KeyError",
        "requestId": REQUEST,
        "stackTrace": ['  File "/var/task/code.py", line 12, in lambda_handler\n    order_id = order["orderId"]\n'],
    }
)


@pytest.mark.parametrize(
    "error_event",
    [JSON_ERROR, AWSLAMBDARIC_ERROR.replace("[ERROR]", f"2025-05-03T12:00:01.000Z\t{REQUEST}\t[ERROR]", 1)],
    ids=["json-format", "prefixed"],
)
def test_the_json_log_format_and_a_prefixed_error_line_are_an_invocations_error(error_event: str) -> None:
    """With the JSON log format the error is the fields errorType, errorMessage and stackTrace; some runtimes
    write a timestamp and the request id, tab-separated, before `[ERROR]`.
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html
    https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    """
    # GIVEN a failed invocation whose error has either shape
    events = [
        event(1000, f"START RequestId: {REQUEST} Version: $LATEST"),
        event(1001, error_event),
        event(1002, f"END RequestId: {REQUEST}"),
        event(1002, REPORT),
    ]

    # WHEN it is parsed
    (invocation,) = logs.parse_invocations(events)

    # THEN it failed with the error, its line and the source there, and the error is no record line
    assert invocation.failed and invocation.records == ()
    assert invocation.reason() == "KeyError: 'orderId' (code.py, line 12, in lambda_handler)"
    assert invocation.error is not None
    assert invocation.error.describe() == (
        'KeyError: \'orderId\' (File "/var/task/code.py", line 12, in lambda_handler: order_id = order["orderId"])'
    )


def test_the_json_log_formats_error_is_the_invoke_responses_error() -> None:
    """The JSON log format logs the same errorType, errorMessage and stackTrace the Invoke response holds.
    https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    """
    (logged,) = lambdaerrors.parse_errors([JSON_ERROR])

    assert logged == logs.error_from_payload(json.loads(JSON_ERROR))
    assert logged.traceback[0] == "Traceback (most recent call last):"


def test_the_grader_reads_the_awslambdaric_event_and_runtime_exits_as_the_viewer_does() -> None:
    """One "\\r"-joined event indented with no-break spaces; and Lambda's lines when the process ended.
    https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    https://repost.aws/knowledge-center/lambda-runtime-error
    """
    messages = [
        f"START RequestId: {REQUEST} Version: $LATEST",
        AWSLAMBDARIC_ERROR,
        f"END RequestId: {REQUEST}",
        f"START RequestId: {OTHER} Version: $LATEST",
        f"RequestId: {OTHER} Error: Runtime exited with error: signal: killed",
        "Runtime.OutOfMemory",
        f"END RequestId: {OTHER}",
    ]

    errors = lambdaerrors.parse_errors(messages)

    assert [e.describe() for e in errors] == [
        'KeyError: \'orderId\' (File "/var/task/code.py", line 12, in lambda_handler: order_id = order["orderId"])',
        f"Runtime.OutOfMemory: RequestId: {OTHER} Error: Runtime exited with error: signal: killed",
    ]


def test_a_traceback_that_ends_in_the_runtimes_files_names_the_students_line() -> None:
    """The innermost frame is the runtime's (boto3 lives under /var/runtime on AWS); the student's is the one to fix.
    https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    """
    error = logs.FunctionError(
        "ClientError",
        "An error occurred (AccessDeniedException) when calling the PutItem operation",
        (
            "Traceback (most recent call last):",
            '  File "/var/task/code.py", line 30, in lambda_handler',
            "    table.put_item(Item=order)",
            '  File "/var/runtime/botocore/client.py", line 1023, in _make_api_call',
            "    raise error_class(parsed_response, operation_name)",
        ),
    )

    assert error.where == logs.Frame("/var/task/code.py", 30, "lambda_handler", "table.put_item(Item=order)")
    assert error.summary().endswith("(code.py, line 30, in lambda_handler)")
    assert [f.file for f in error.frames] == ["/var/task/code.py", "/var/runtime/botocore/client.py"]


def test_blocks_are_kept_apart_per_stream_and_a_cut_block_is_left_out() -> None:
    # GIVEN two execution environments writing at the same time, and the tail of a block that began earlier
    other_stream = STREAM.replace("3893", "7777")
    events = [
        event(900, record_line("EARLIER")),  # its START is before the window
        event(900, f"END RequestId: {OTHER}"),
        event(1000, f"START RequestId: {REQUEST} Version: $LATEST"),
        event(1000, f"START RequestId: {OTHER} Version: $LATEST", other_stream),
        event(1001, record_line("A-1")),
        event(1001, record_line("B-1", "invalid", "quantity is missing"), other_stream),
        event(1002, f"END RequestId: {OTHER}", other_stream),
        event(1002, f"END RequestId: {REQUEST}"),
    ]

    parsed = {i.request_id: i for i in logs.parse_invocations(events)}

    assert set(parsed) == {REQUEST, OTHER}
    assert [r.order_id for r in parsed[REQUEST].records] == ["A-1"]
    assert [(r.order_id, r.reason) for r in parsed[OTHER].records] == [("B-1", "quantity is missing")]
    assert all(r.order_id != "EARLIER" for i in parsed.values() for r in i.records)


def _failure(at_s: float, request: str, stream: str = STREAM, record: str | None = None) -> list[dict[str, Any]]:
    """One invocation's block at *at_s* seconds: an init error before START, or a record line of *record*."""
    ms = int(at_s * 1000)
    start = event(ms + 50, f"START RequestId: {request} Version: $LATEST", stream)
    end = [event(ms + 60, f"END RequestId: {request}", stream), event(ms + 60, f"REPORT RequestId: {request}", stream)]
    if record is not None:
        return [start, event(ms + 55, record_line(record, "invalid", "bad"), stream), *end]
    init = [
        event(
            ms, "[ERROR] Runtime.ImportModuleError: Unable to import module 'code': No module named 'pandas'", stream
        ),
        event(ms + 1, "INIT_REPORT Init Duration: 50.00 ms\tPhase: init\tStatus: error", stream),
    ]
    report = f"REPORT RequestId: {request}\tDuration: 0.00 ms\tBilled Duration: 50 ms\tInit Duration: 50.00 ms"
    return [
        *init,
        start,
        end[0],
        event(ms + 60, f"{report}\tStatus: error\tError Type: Runtime.ImportModuleError", stream),
    ]


def test_an_init_error_before_start_is_the_invocations_error() -> None:
    """An init error is logged before START, and the REPORT says `Status: error` with its type; Lambda ran the
    init for that invocation: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib"""
    (invocation,) = logs.parse_invocations(_failure(1, REQUEST))

    assert invocation.failed and invocation.status == "error"
    assert invocation.reason() == "Runtime.ImportModuleError: Unable to import module 'code': No module named 'pandas'"
    assert invocation.events[0]["message"].startswith("[ERROR] Runtime.ImportModuleError")
    assert invocation.received_at == pytest.approx(1.0)


def test_failures_that_logged_nothing_belong_to_the_order_whose_receives_they_fit() -> None:
    """One message's receives come a visibility timeout apart, as SQS hands it out again only then:
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html"""
    # GIVEN an order sent at 100 s that fails on import at 100, 106 and 112 (visibility timeout 6 s), an earlier
    # order's retries at 95, 101 and 107 in another stream, and an invocation that logged another order's record
    other = STREAM.replace("3893", "7777")
    ours = [f"{n}0000000-1a2b-4697-b07a-ac58fc914c95" for n in (1, 2, 3)]
    theirs = [f"{n}1111111-1a2b-4697-b07a-ac58fc914c95" for n in (4, 5, 6)]
    events = [
        *_failure(95, theirs[0], other),
        *_failure(100, ours[0]),
        *_failure(101, theirs[1], other),
        *_failure(106, ours[1]),
        *_failure(107, theirs[2], other),
        *_failure(109, OTHER, record="B-1"),
        *_failure(112, ours[2]),
    ]
    found = logs.parse_invocations(events)

    # WHEN the order's invocations are picked from its sending time
    mine = logs.invocations_of(found, "T-1", since=100.0, visibility_timeout=6)

    # THEN they are its three receives, none of the earlier order's retries and not the other order's record
    assert [i.request_id for i in mine] == ours
    # AND without a visibility timeout no anonymous failure is anyone's, and without a sending time or a record to
    # start from there is no chain at all
    assert logs.invocations_of(found, "T-1", since=100.0) == []
    assert logs.invocations_of(found, "T-1", visibility_timeout=6) == []


def test_format_event_shows_timestamp_and_message_with_its_lines_indented() -> None:
    text = logs.format_event(event(1746273600123, AWSLAMBDARIC_ERROR))

    lines = text.splitlines()
    assert lines[0] == "2025-05-03T12:00:00.123Z  [ERROR] KeyError: 'orderId'"
    assert lines[2] == " " * 26 + '  File "/var/task/code.py", line 12, in lambda_handler'
    assert NBSP not in text and "\r" not in text


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1w", 604800)])
def test_since_takes_the_aws_cli_durations(text: str, seconds: int) -> None:
    assert logs.parse_since(text, now=1_000_000.0) == 1_000_000.0 - seconds


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "-5m", "5x"])
def test_since_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        logs.parse_since(text)


def test_deliveries_count_a_timed_out_or_raising_invocation_as_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.observe import deliveries

    # GIVEN one message stored in an invocation that then timed out (the timeout line comes after END),
    # delivered again and found a duplicate; and one message whose invocation raised
    timed_out = "a1b2c3d4-0000-4000-8000-000000000001"
    again = "a1b2c3d4-0000-4000-8000-000000000002"
    raised = "a1b2c3d4-0000-4000-8000-000000000003"
    stored = '{"orderId": "A", "messageId": "m-A", "outcome": "stored", "reason": null, "receiveCount": 1}'
    duplicate = '{"orderId": "A", "messageId": "m-A", "outcome": "duplicate", "reason": null, "receiveCount": 2}'
    invalid = (
        '{"orderId": "B", "messageId": "m-B", "outcome": "invalid", "reason": "quantity is missing", "receiveCount": 1}'
    )
    events = [
        event(1000, f"START RequestId: {timed_out} Version: $LATEST"),
        event(1001, stored),
        event(4000, f"END RequestId: {timed_out}"),
        event(4000, f"2025-05-03T12:00:04.000Z {timed_out} Task timed out after 3.00 seconds"),
        event(5000, f"START RequestId: {again} Version: $LATEST"),
        event(5001, duplicate),
        event(5002, f"END RequestId: {again}"),
        event(6000, f"START RequestId: {raised} Version: $LATEST", STREAM + "b"),
        event(6001, invalid, STREAM + "b"),
        event(6001, WARNING, STREAM + "b"),
        event(
            6002, AWSLAMBDARIC_ERROR.replace("KeyError: 'orderId'", "BatchFailed: all 1 record(s) failed"), STREAM + "b"
        ),
        event(6003, f"END RequestId: {raised}", STREAM + "b"),
    ]
    monkeypatch.setattr(deliveries, "log_events", lambda lab, since=None: events)

    # WHEN the deliveries are read
    history = deliveries.deliveries(None, None)  # type: ignore[arg-type]

    # THEN the retry after the timeout was owed, not needless
    assert history == {
        "m-A": [deliveries.Delivery(1, "stored", True), deliveries.Delivery(2, "duplicate", False)],
        "m-B": [deliveries.Delivery(1, "invalid", True)],
    }
    assert deliveries.needless_retries(history) == []
