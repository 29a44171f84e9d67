"""SQS triggers as Lambda runs them: batching window, filters, concurrency limits, functions side by side."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from function_support import create_function, create_role
from runtime_paths import PATHS, runtime_path

from labkit.config import Config
from labkit.localcloud import LocalCloud

TIMED = """
import json, time
def lambda_handler(event, context):
    start = time.time()
    body = event["Records"][0]["body"] if event.get("Records") else ""
    time.sleep(float(body.rsplit(":", 1)[1]) if body[:1] != "{" and ":" in body else 0)
    print(json.dumps({"start": start, "end": time.time(), "records": len(event.get("Records", [])),
                      "bodies": [r["body"] for r in event.get("Records", [])]}))
"""


@pytest.fixture(scope="module", params=PATHS)
def cloud(request: pytest.FixtureRequest) -> Any:
    with runtime_path(request.param):
        cloud = LocalCloud.in_process(Config.from_env({}))
    create_role(cloud.clients("iam"), "trigger-role")
    yield cloud
    cloud.stop()


def _function(cloud: Any, name: str, **extra: Any) -> None:
    role = cloud.clients("iam").get_role(RoleName="trigger-role")["Role"]["Arn"]
    create_function(cloud.clients("lambda"), name, role, TIMED, timeout=10, **extra)


def _queue(cloud: Any, name: str, bodies: list[str]) -> str:
    sqs = cloud.clients("sqs")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _runs(cloud: Any, name: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    logs = cloud.clients("logs")
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        runs = [json.loads(e["message"]) for e in events if e["message"].startswith("{")]
        if sum(r["records"] for r in runs) >= count:
            return runs
        time.sleep(0.2)
    return runs


def _most_at_once(runs: list[dict[str, Any]]) -> int:
    edges = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def test_a_batching_window_gathers_more_than_ten_records(cloud: Any) -> None:
    """With MaximumBatchingWindowInSeconds, one invocation may carry up to BatchSize records (above 10).
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
    """
    _function(cloud, "windowed")
    arn = _queue(cloud, "windowed-q", [f"m{i}:0" for i in range(30)])
    cloud.clients("lambda").create_event_source_mapping(
        FunctionName="windowed",
        EventSourceArn=arn,
        BatchSize=50,
        MaximumBatchingWindowInSeconds=1,
        # Two pollers share the 30 messages, so one batch holds at least 15 whatever the timing.
        ScalingConfig={"MaximumConcurrency": 2},
    )
    runs = _runs(cloud, "windowed", 30)
    assert sum(r["records"] for r in runs) == 30
    assert max(r["records"] for r in runs) > 10


def test_filter_criteria_pass_matching_messages_and_delete_the_rest(cloud: Any) -> None:
    """Messages that match no filter are not passed to the function and are deleted from the queue.
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs-filtering.html
    """
    _function(cloud, "filtered")
    bodies = [json.dumps({"status": s, "n": i}) for i, s in enumerate(["PENDING", "SHIPPED", "PENDING", "CANCELLED"])]
    arn = _queue(cloud, "filtered-q", bodies)
    pattern = {"body": {"status": ["PENDING"]}}
    cloud.clients("lambda").create_event_source_mapping(
        FunctionName="filtered",
        EventSourceArn=arn,
        BatchSize=1,
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
    )
    runs = _runs(cloud, "filtered", 2)
    seen = sorted(b for r in runs for b in r["bodies"])
    assert seen == sorted(b for b in bodies if '"PENDING"' in b)
    url = cloud.clients("sqs").get_queue_url(QueueName="filtered-q")["QueueUrl"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        attributes = cloud.clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
        time.sleep(0.2)
    assert attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


@pytest.mark.parametrize(
    ("name", "limit", "expected"),
    [("scaled", {"ScalingConfig": {"MaximumConcurrency": 2}}, 2), ("reserved", {"reserved": 1}, 1), ("free", {}, 4)],
)
@pytest.mark.slow
def test_concurrency_follows_the_mapping_and_the_function(
    cloud: Any, name: str, limit: dict[str, Any], expected: int
) -> None:
    """Several environments serve a queue at once, never more than MaximumConcurrency or reserved concurrency.
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    """
    _function(cloud, name)
    if "reserved" in limit:
        cloud.clients("lambda").put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=limit["reserved"]
        )
    # Six messages of a second each: enough for four environments to overlap, and for one at a time to show.
    arn = _queue(cloud, f"{name}-q", [f"{name}{i}:1" for i in range(6)])
    extra = {k: v for k, v in limit.items() if k != "reserved"}
    cloud.clients("lambda").create_event_source_mapping(FunctionName=name, EventSourceArn=arn, BatchSize=1, **extra)
    runs = _runs(cloud, name, 6)
    assert sum(r["records"] for r in runs) == 6
    assert _most_at_once(runs) == expected


@pytest.mark.slow
def test_one_slow_function_does_not_hold_up_another(cloud: Any) -> None:
    """Functions run in their own environments; nothing serialises invocations across functions."""
    _function(cloud, "slow")
    _function(cloud, "quick")
    lam = cloud.clients("lambda")
    slow_done = threading.Event()

    def call_slow() -> None:
        lam.invoke(FunctionName="slow", Payload=json.dumps({"Records": [{"body": "x:4"}]}))
        slow_done.set()

    threading.Thread(target=call_slow, daemon=True).start()
    time.sleep(0.5)
    started = time.monotonic()
    lam.invoke(FunctionName="quick", Payload=json.dumps({"Records": [{"body": "y:0"}]}))
    assert time.monotonic() - started < 3 and not slow_done.is_set()
    assert slow_done.wait(20)
