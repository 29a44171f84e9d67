"""AWS's resource rules on the local cloud: queue policies on SNS delivery, transitional states,
answer shapes, and event source mappings validated as Lambda validates them."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from labkit.config import ENV_STATE_DELAY
from labkit.localcloud import delivery, policy, seam
from labkit.resources.sqs import queue_policy_for_topic

REGION = "us-east-1"
ACCOUNT = "123456789012"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
SQS_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
# Waiters poll this often here, so a test sees them wait without sleeping a whole second.
FAST = {"Delay": 0.05, "MaxAttempts": 200}
# The transitional state lasts this long in the tests of states; each of those tests first makes
# every call once on a missing resource, so the one-off cost of loading botocore's and moto's
# models (seconds on a loaded machine) falls before the clock starts.
DELAY_S = 2.0


@pytest.fixture
def aws() -> Iterator[Any]:
    """moto with labkit's rules installed; returns a client factory."""
    seam.install()
    delivery.clear_refusals()
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        yield lambda service: boto3.client(service, region_name=REGION)


def _topic_and_queue(aws: Any, queue_policy: dict[str, Any] | None, topic: str = "OrderTopic") -> tuple[str, str, str]:
    topic_arn = aws("sns").create_topic(Name=topic)["TopicArn"]
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="OrderQueue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if queue_policy is not None:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(queue_policy)})
    aws("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, url, queue_arn


def _delivered(aws: Any, topic_arn: str, url: str) -> list[dict[str, Any]]:
    aws("sns").publish(TopicArn=topic_arn, Message=json.dumps({"orderId": "o-1"}))
    return aws("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])


def _failed_metric(aws: Any, topic: str = "OrderTopic") -> float:
    now = datetime.now(UTC)
    reply = aws("cloudwatch").get_metric_statistics(
        Namespace="AWS/SNS",
        MetricName="NumberOfNotificationsFailed",
        Dimensions=[{"Name": "TopicName", "Value": topic}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=600,
        Statistics=["Sum"],
    )
    return sum(point["Sum"] for point in reply["Datapoints"])


def _warm(*calls: tuple[Any, dict[str, Any]]) -> None:
    """Make each call once on a missing resource; the answer does not matter, only the loading."""
    for call, kwargs in calls:
        try:
            call(**kwargs)
        except ClientError:
            pass


def _statement(**overrides: Any) -> dict[str, Any]:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:OrderQueue",
    }
    statement.update(overrides)
    return {key: value for key, value in statement.items() if value is not None}


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# ---------------------------------------------------------------- SNS -> SQS and the queue's policy


def test_queue_without_policy_gets_nothing_and_the_refusal_is_counted(aws):
    """GIVEN a queue with no access policy subscribed to a topic, WHEN an order is published,
    THEN the queue gets nothing, the topic's NumberOfNotificationsFailed counts it, and the reason
    names the queue and the fix.
    https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html
    https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html"""
    topic_arn, url, queue_arn = _topic_and_queue(aws, None)

    assert _delivered(aws, topic_arn, url) == []

    [refusal] = delivery.refused_deliveries(queue_arn)
    assert refusal["topic_arn"] == topic_arn
    assert "OrderQueue has no access policy" in refusal["reason"]
    assert "sns.amazonaws.com" in refusal["reason"]
    assert _failed_metric(aws) == 1.0
    assert delivery.refused_deliveries("arn:aws:sqs:us-east-1:123456789012:Other") == []


def test_labkit_queue_policy_lets_the_topic_deliver(aws):
    """The policy labkit's builder attaches (sns.amazonaws.com, ArnEquals aws:SourceArn) lets the
    topic deliver; nothing is refused.
    https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html"""
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:OrderQueue"
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:OrderTopic"
    topic_arn, url, queue_arn = _topic_and_queue(aws, queue_policy_for_topic(queue_arn, topic_arn))

    [message] = _delivered(aws, topic_arn, url)

    assert json.loads(json.loads(message["Body"])["Message"]) == {"orderId": "o-1"}
    assert delivery.refused_deliveries() == []
    assert _failed_metric(aws) == 0.0


def test_console_policy_with_everyone_and_arnlike_delivers(aws):
    """The SQS console's "Subscribe to Amazon SNS topic" writes Principal {"AWS": "*"} with ArnLike
    aws:SourceArn; AWS delivers with it.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-subscribe-queue-sns-topic.html"""
    console = _policy(
        _statement(
            Principal={"AWS": "*"},
            Action="SQS:SendMessage",
            Condition={"ArnLike": {"aws:SourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:Order*"}},
        )
    )
    topic_arn, url, _ = _topic_and_queue(aws, console)

    assert len(_delivered(aws, topic_arn, url)) == 1


def test_policy_for_another_topic_refuses_this_one(aws):
    """aws:SourceArn names another topic: this topic's notifications are refused (the confused-deputy
    guard works both ways).
    https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html"""
    other = _policy(_statement(Condition={"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:Other"}}))
    topic_arn, url, queue_arn = _topic_and_queue(aws, other)

    assert _delivered(aws, topic_arn, url) == []
    [refusal] = delivery.refused_deliveries(queue_arn)
    assert "does not allow sns.amazonaws.com" in refusal["reason"]


def test_source_account_condition_and_explicit_deny(aws):
    """aws:SourceAccount with StringEquals allows the topic's own account; an explicit Deny for the
    topic wins over that Allow.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    allow = _statement(Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}})
    topic_arn, url, queue_arn = _topic_and_queue(aws, _policy(allow))
    assert len(_delivered(aws, topic_arn, url)) == 1

    deny = _statement(Effect="Deny", Principal="*", Action="sqs:*", Condition={"ArnLike": {"aws:SourceArn": topic_arn}})
    aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(_policy(allow, deny))})
    aws("sqs").purge_queue(QueueUrl=url)

    assert _delivered(aws, topic_arn, url) == []
    [refusal] = delivery.refused_deliveries(queue_arn)
    assert "explicitly denies" in refusal["reason"]


def test_policy_evaluation_wildcards_and_negated_conditions():
    """Actions match case-insensitively with wildcards, resources per ARN component, a negated
    operator holds for an absent key, and an unknown operator makes its statement not apply.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"""
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:OrderQueue"
    sns = {"Service": ["sns.amazonaws.com"]}
    wide = _policy(_statement(Action="SQS:Send*", Resource=f"arn:aws:sqs:*:{ACCOUNT}:Order*"))
    assert policy.evaluate([wide], "sqs:SendMessage", queue, principals=sns) == policy.ALLOW
    assert policy.evaluate([wide], "sqs:DeleteMessage", queue, principals=sns) == policy.IMPLICIT_DENY
    assert policy.evaluate([wide], "sqs:SendMessage", queue, principals={"Service": ["s3.amazonaws.com"]}) == (
        policy.IMPLICIT_DENY
    )
    # A wildcard does not cross a colon: "Order*" as the region part matches no region.
    assert not policy.arn_matches("arn:aws:sqs:us-east-1*", queue)
    negated = _policy(_statement(Condition={"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:Bad"}}))
    assert policy.evaluate([negated], "sqs:SendMessage", queue, {}, sns) == policy.ALLOW
    assert (
        policy.evaluate([negated], "sqs:SendMessage", queue, {"aws:SourceArn": "arn:aws:sns:us-east-1:1:Bad"}, sns)
        == policy.IMPLICIT_DENY
    )
    unknown = _policy(_statement(Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}))
    assert policy.evaluate([unknown], "sqs:SendMessage", queue, {}, sns) == policy.IMPLICIT_DENY
    assert policy.evaluate(["not json", None], "sqs:SendMessage", queue, {}, sns) == policy.IMPLICIT_DENY


# ---------------------------------------------------------------- transitional states


ORDERS_TABLE: dict[str, Any] = {
    "TableName": "Orders",
    "KeySchema": [{"AttributeName": "orderId", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "orderId", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def test_table_is_creating_until_the_waiter_sees_it_active(aws, monkeypatch):
    """CreateTable answers CREATING; DescribeTable says CREATING until the table is ready, so the
    table_exists waiter really waits; DeleteTable answers DELETING.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html"""
    monkeypatch.setenv(ENV_STATE_DELAY, str(DELAY_S))
    ddb = aws("dynamodb")
    _warm((ddb.describe_table, {"TableName": "Missing"}), (ddb.delete_table, {"TableName": "Missing"}))
    started = time.monotonic()
    created = ddb.create_table(**ORDERS_TABLE)["TableDescription"]
    assert created["TableStatus"] == "CREATING"
    assert ddb.describe_table(TableName="Orders")["Table"]["TableStatus"] == "CREATING"

    ddb.get_waiter("table_exists").wait(TableName="Orders", WaiterConfig=FAST)

    assert time.monotonic() - started >= DELAY_S
    assert ddb.describe_table(TableName="Orders")["Table"]["TableStatus"] == "ACTIVE"
    assert ddb.delete_table(TableName="Orders")["TableDescription"]["TableStatus"] == "DELETING"


def test_no_delay_answers_the_settled_state(aws, monkeypatch):
    """With LABKIT_LOCAL_STATE_DELAY=0 a table is ACTIVE in CreateTable's own answer."""
    monkeypatch.setenv(ENV_STATE_DELAY, "0")
    created = aws("dynamodb").create_table(**ORDERS_TABLE)["TableDescription"]
    assert created["TableStatus"] == "ACTIVE"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("code.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _role(aws: Any, name: str = "OrderProcessorRole", managed: tuple[str, ...] = (), inline: Any = None) -> str:
    iam = aws("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    for policy_arn in managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    if inline is not None:
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(inline))
    return arn


def _function(aws: Any, role_arn: str, timeout: int = 3, name: str = "OrderProcessor") -> dict[str, Any]:
    return aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="code.lambda_handler",
        Code={"ZipFile": _zip()},
        Timeout=timeout,
    )


@pytest.mark.slow
def test_function_is_pending_then_active_and_updates_are_in_progress(aws, monkeypatch):
    """CreateFunction answers State Pending with StateReasonCode Creating, and the function can be
    neither invoked nor updated until function_active_v2 sees it Active. UpdateFunctionCode and
    UpdateFunctionConfiguration answer LastUpdateStatus InProgress, refuse a second update meanwhile,
    and function_updated_v2 waits for Successful.
    https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html"""
    monkeypatch.setenv(ENV_STATE_DELAY, str(DELAY_S))
    lam = aws("lambda")
    role = _role(aws, managed=(SQS_EXECUTION_POLICY,))
    _warm(
        (lam.get_function, {"FunctionName": "Missing"}),
        (lam.invoke, {"FunctionName": "Missing", "Payload": b"{}"}),
        (lam.update_function_configuration, {"FunctionName": "Missing", "Timeout": 4}),
    )
    created = _function(aws, role)
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert created["StateReason"] == "The function is being created."
    assert lam.get_function(FunctionName="OrderProcessor")["Configuration"]["State"] == "Pending"

    # While Pending, AWS refuses to invoke or update the function.
    arn = created["FunctionArn"]
    assert _error(lam.invoke, FunctionName="OrderProcessor", Payload=b"{}") == (
        "ResourceConflictException",
        "The operation cannot be performed at this time. The function is currently in the following state: Pending",
    )
    assert _error(lam.update_function_configuration, FunctionName="OrderProcessor", Timeout=4) == (
        "ResourceConflictException",
        f"The operation cannot be performed at this time. The resource {arn} is currently in the following "
        "state: 'Pending'. StateReasonCode: 'Creating'",
    )

    lam.get_waiter("function_active_v2").wait(FunctionName="OrderProcessor", WaiterConfig=FAST)
    settled = lam.get_function(FunctionName="OrderProcessor")["Configuration"]
    assert (settled["State"], settled["LastUpdateStatus"]) == ("Active", "Successful")

    updated = lam.update_function_code(FunctionName="OrderProcessor", ZipFile=_zip())
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["State"] == "Active"
    # One update at a time, as on AWS.
    assert _error(lam.update_function_configuration, FunctionName="OrderProcessor", Timeout=4) == (
        "ResourceConflictException",
        f"The operation cannot be performed at this time. An update is in progress for resource: {arn}",
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName="OrderProcessor", WaiterConfig=FAST)

    updated = lam.update_function_configuration(FunctionName="OrderProcessor", Timeout=5)
    assert updated["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(FunctionName="OrderProcessor", WaiterConfig=FAST)
    assert lam.get_function_configuration(FunctionName="OrderProcessor")["LastUpdateStatus"] == "Successful"


def _queue(aws: Any, visibility: int = 30, name: str = "OrderQueue") -> tuple[str, str]:
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _settle(lam: Any, uuid: str) -> str:
    deadline = time.monotonic() + 3 * DELAY_S
    state = lam.get_event_source_mapping(UUID=uuid)["State"]
    while state not in ("Enabled", "Disabled") and time.monotonic() < deadline:
        time.sleep(0.05)
        state = lam.get_event_source_mapping(UUID=uuid)["State"]
    return state


def _mapping_setup(aws: Any, monkeypatch: pytest.MonkeyPatch, delay: float) -> tuple[Any, str]:
    """The function and its queue, transitions lasting *delay* s, and every mapping call made once."""
    monkeypatch.setenv(ENV_STATE_DELAY, str(delay))
    lam = aws("lambda")
    _function(aws, _role(aws, managed=(SQS_EXECUTION_POLICY,)))
    _, queue_arn = _queue(aws)
    missing = "00000000-0000-0000-0000-000000000000"
    _warm(
        (lam.get_event_source_mapping, {"UUID": missing}),
        (lam.update_event_source_mapping, {"UUID": missing}),
        (lam.delete_event_source_mapping, {"UUID": missing}),
        (lam.list_event_source_mappings, {"FunctionName": "OrderProcessor"}),
    )
    return lam, queue_arn


@pytest.mark.slow
def test_mapping_is_creating_then_enabled_and_updates_pass_through_their_states(aws, monkeypatch):
    """CreateEventSourceMapping answers Creating, then Enabled; an update answers Updating, disabling
    answers Disabling then Disabled, and DeleteEventSourceMapping answers Deleting.
    https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html"""
    lam, queue_arn = _mapping_setup(aws, monkeypatch, DELAY_S)

    created = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="OrderProcessor", BatchSize=1)
    assert created["State"] == "Creating"
    [listed] = lam.list_event_source_mappings(FunctionName="OrderProcessor")["EventSourceMappings"]
    assert listed["State"] == "Creating"
    assert _settle(lam, created["UUID"]) == "Enabled"

    assert lam.update_event_source_mapping(UUID=created["UUID"], BatchSize=5)["State"] == "Updating"
    assert _settle(lam, created["UUID"]) == "Enabled"
    assert lam.update_event_source_mapping(UUID=created["UUID"], Enabled=False)["State"] == "Disabling"
    assert _settle(lam, created["UUID"]) == "Disabled"
    assert lam.update_event_source_mapping(UUID=created["UUID"], Enabled=True)["State"] == "Enabling"
    assert _settle(lam, created["UUID"]) == "Enabled"
    assert lam.delete_event_source_mapping(UUID=created["UUID"])["State"] == "Deleting"


@pytest.mark.slow
def test_a_mapping_changing_state_cannot_be_updated_or_deleted(aws, monkeypatch):
    """Updating a mapping that is Creating, or deleting one that is Updating, is refused with
    ResourceInUseException until it settles.
    https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#API_UpdateEventSourceMapping_Errors"""
    lam, queue_arn = _mapping_setup(aws, monkeypatch, DELAY_S)
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="OrderProcessor")["UUID"]

    code, message = _error(lam.update_event_source_mapping, UUID=uuid, BatchSize=2)
    assert code == "ResourceInUseException" and "Creating" in message and uuid in message
    assert _error(lam.delete_event_source_mapping, UUID=uuid)[0] == "ResourceInUseException"
    assert lam.get_event_source_mapping(UUID=uuid)["BatchSize"] == 10

    assert _settle(lam, uuid) == "Enabled"
    assert lam.update_event_source_mapping(UUID=uuid, BatchSize=2)["State"] == "Updating"
    code, message = _error(lam.delete_event_source_mapping, UUID=uuid)
    assert code == "ResourceInUseException" and "Updating" in message


def test_a_deleted_mapping_stays_deleting_for_a_while_then_is_gone(aws, monkeypatch):
    """After DeleteEventSourceMapping the mapping is still read and listed, in Deleting, and cannot be
    updated or deleted again; then it is gone.
    https://docs.aws.amazon.com/lambda/latest/api/API_DeleteEventSourceMapping.html"""
    delay = 0.5
    lam, queue_arn = _mapping_setup(aws, monkeypatch, delay)
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="OrderProcessor")["UUID"]
    assert _settle(lam, uuid) == "Enabled"

    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"

    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Deleting"
    listed = lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
    assert [(m["UUID"], m["State"]) for m in listed] == [(uuid, "Deleting")]
    for call in (
        lambda: lam.update_event_source_mapping(UUID=uuid, BatchSize=2),
        lambda: lam.delete_event_source_mapping(UUID=uuid),
    ):
        assert _error(call)[0] == "ResourceInUseException"
    time.sleep(delay + 0.1)
    assert _error(lam.get_event_source_mapping, UUID=uuid)[0] == "ResourceNotFoundException"
    assert lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"] == []


def test_a_second_trigger_of_the_same_queue_and_function_is_refused(aws, monkeypatch):
    """CreateEventSourceMapping refuses a queue that already triggers the function, with AWS's
    ResourceConflictException (409) naming the existing mapping, also while that one is Deleting.
    https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html#API_CreateEventSourceMapping_Errors"""
    lam, queue_arn = _mapping_setup(aws, monkeypatch, 0)
    first = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="OrderProcessor")["UUID"]
    assert _settle(lam, first) == "Enabled"
    # Deleting lasts as long as the delay when the delete is made.
    monkeypatch.setenv(ENV_STATE_DELAY, "30")
    wanted = (
        "ResourceConflictException",
        f'An event source mapping with SQS arn (" {queue_arn} ") and function (" OrderProcessor ") already '
        f"exists. Please update or delete the existing mapping with UUID {first}",
    )

    with pytest.raises(ClientError) as caught:
        lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="OrderProcessor")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert (caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]) == wanted
    lam.delete_event_source_mapping(UUID=first)
    assert _error(lam.create_event_source_mapping, EventSourceArn=queue_arn, FunctionName="OrderProcessor") == wanted
    assert len(lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]) == 1


def test_queue_timestamps_are_whole_epoch_seconds(aws):
    """GetQueueAttributes gives CreatedTimestamp and LastModifiedTimestamp in whole epoch seconds.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html"""
    before = int(time.time())
    url, _ = _queue(aws)
    attributes = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    for name in ("CreatedTimestamp", "LastModifiedTimestamp"):
        assert attributes[name].isdigit(), attributes[name]
        assert before - 1 <= int(attributes[name]) <= time.time() + 1


# ---------------------------------------------------------------- event source mappings validated


def _error(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_batch_size_above_ten_needs_a_batching_window(aws):
    """A standard queue takes BatchSize above 10 only with MaximumBatchingWindowInSeconds, up to
    10,000; above that the API's range refuses it. UpdateEventSourceMapping is checked the same way.
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html"""
    lam = aws("lambda")
    _function(aws, _role(aws, managed=(SQS_EXECUTION_POLICY,)))
    _, queue_arn = _queue(aws)
    create = lam.create_event_source_mapping

    assert _error(create, EventSourceArn=queue_arn, FunctionName="OrderProcessor", BatchSize=100) == (
        "InvalidParameterValueException",
        "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
    )
    code, message = _error(
        create,
        EventSourceArn=queue_arn,
        FunctionName="OrderProcessor",
        BatchSize=10001,
        MaximumBatchingWindowInSeconds=1,
    )
    assert code == "ValidationException"
    assert "Value '10001' at 'batchSize'" in message
    assert lam.list_event_source_mappings(FunctionName="OrderProcessor")["EventSourceMappings"] == []

    mapping = create(
        EventSourceArn=queue_arn, FunctionName="OrderProcessor", BatchSize=10000, MaximumBatchingWindowInSeconds=5
    )
    assert mapping["BatchSize"] == 10000
    assert _error(
        lam.update_event_source_mapping, UUID=mapping["UUID"], BatchSize=50, MaximumBatchingWindowInSeconds=0
    ) == (
        "InvalidParameterValueException",
        "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
    )
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["BatchSize"] == 10000


def test_visibility_timeout_shorter_than_function_timeout_is_refused(aws):
    """AWS refuses a trigger whose queue hides a message for less time than the function may run.
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html"""
    _function(aws, _role(aws, managed=(SQS_EXECUTION_POLICY,)), timeout=60)
    _, queue_arn = _queue(aws, visibility=30)

    assert _error(
        aws("lambda").create_event_source_mapping, EventSourceArn=queue_arn, FunctionName="OrderProcessor"
    ) == (
        "InvalidParameterValueException",
        "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds",
    )


@pytest.mark.parametrize(
    ("inline", "missing"),
    [
        (None, "ReceiveMessage"),
        (_policy({"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}), "DeleteMessage"),
        (
            _policy({"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"], "Resource": "*"}),
            "GetQueueAttributes",
        ),
        (
            _policy(
                {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "sqs:DeleteMessage", "Resource": "arn:aws:sqs:*:*:Order*"},
            ),
            "DeleteMessage",
        ),
        (
            _policy({"Effect": "Allow", "Action": "sqs:*", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:Other"}),
            "ReceiveMessage",
        ),
        (_policy({"Effect": "Allow", "Action": "SQS:*", "Resource": "arn:aws:sqs:*:*:Order*"}), None),
    ],
    ids=["no-policy", "receive-only", "no-get-attributes", "explicit-deny", "other-queue", "wildcards"],
)
def test_execution_role_must_be_allowed_to_poll_the_queue(aws, inline, missing):
    """The execution role needs sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on
    the queue; AWS names the first one missing. Allow/Deny, wildcards and resources are judged as
    IAM judges them.
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions"""
    _function(aws, _role(aws, inline=inline))
    _, queue_arn = _queue(aws)
    create = aws("lambda").create_event_source_mapping
    if missing is None:
        assert create(EventSourceArn=queue_arn, FunctionName="OrderProcessor")["EventSourceArn"] == queue_arn
    else:
        assert _error(create, EventSourceArn=queue_arn, FunctionName="OrderProcessor") == (
            "InvalidParameterValueException",
            f"The function execution role does not have permissions to call {missing} on SQS",
        )


def test_queue_policy_can_grant_the_role_in_its_own_account(aws):
    """In the queue's own account its access policy may grant the role what its identity policies do
    not; the AWS managed AWSLambdaSQSQueueExecutionRole grants it all.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-basic-examples-of-sqs-policies.html"""
    role_arn = _role(aws)
    _function(aws, role_arn)
    url, queue_arn = _queue(aws)
    grant = _policy({"Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": "sqs:*", "Resource": queue_arn})
    aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(grant)})
    lam = aws("lambda")
    assert lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="OrderProcessor")["BatchSize"] == 10

    _function(aws, _role(aws, "Managed", managed=(SQS_EXECUTION_POLICY,)), name="Other")
    _, other_queue = _queue(aws, name="OtherQueue")
    assert lam.create_event_source_mapping(EventSourceArn=other_queue, FunctionName="Other")["BatchSize"] == 10


def _envelope(aws: Any, topic_arn: str, url: str) -> dict[str, Any]:
    (message,) = _delivered(aws, topic_arn, url)
    return json.loads(message["Body"])


def _verifies(envelope: dict[str, Any], digest: Any) -> bool:
    import base64

    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    name = envelope["SigningCertURL"].rsplit("/", 1)[1]
    pem = sns_backends[DEFAULT_ACCOUNT_ID][REGION]._message_public_keys[name]
    signed = "".join(f"{key}\n{envelope[key]}\n" for key in ("Message", "MessageId", "Timestamp", "TopicArn", "Type"))
    try:
        x509.load_pem_x509_certificate(pem).public_key().verify(
            base64.b64decode(envelope["Signature"]), signed.encode(), padding.PKCS1v15(), digest
        )
    except InvalidSignature:
        return False
    return True


def test_a_topic_at_its_defaults_signs_with_version_1_and_names_the_subscription(aws):
    """A topic's SignatureVersion is 1 (SHA1withRSA) unless set to 2 (SHA256withRSA), and the envelope's
    UnsubscribeURL names the subscription the message came through:
    https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html and
    https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html#http-notification-json"""
    from cryptography.hazmat.primitives import hashes

    # GIVEN a topic left at its defaults, delivering to a queue
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:OrderQueue"
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:OrderTopic"
    topic_arn, url, queue_arn = _topic_and_queue(aws, queue_policy_for_topic(queue_arn, topic_arn))
    (subscription,) = aws("sns").list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    # WHEN an order is published
    envelope = _envelope(aws, topic_arn, url)
    # THEN the envelope says version 1, its signature verifies with SHA1, and unsubscribing names this subscription
    assert envelope["SignatureVersion"] == "1"
    assert _verifies(envelope, hashes.SHA1()) and not _verifies(envelope, hashes.SHA256())
    assert envelope["UnsubscribeURL"] == (
        f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription['SubscriptionArn']}"
    )
    # AND once the topic is set to version 2, the next envelope is signed with SHA256
    aws("sns").set_topic_attributes(TopicArn=topic_arn, AttributeName="SignatureVersion", AttributeValue="2")
    envelope = _envelope(aws, topic_arn, url)
    assert envelope["SignatureVersion"] == "2"
    assert _verifies(envelope, hashes.SHA256())


def test_a_synchronous_invoke_says_which_version_ran(built_lab):
    """Invoke's response carries X-Amz-Executed-Version, `$LATEST` for an unqualified call; an asynchronous one
    (202) does not: https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_ResponseSyntax"""
    lam = built_lab.clients("lambda")
    reply = lam.invoke(FunctionName="OrderProcessor", Payload=json.dumps({"Records": []}))
    assert reply["ExecutedVersion"] == "$LATEST"
    assert reply["StatusCode"] == 200
    queued = lam.invoke(FunctionName="OrderProcessor", Payload=json.dumps({"Records": []}), InvocationType="Event")
    assert queued["StatusCode"] == 202 and "ExecutedVersion" not in queued


def test_setting_other_attributes_keeps_the_queues_access_policy(aws):
    """SetQueueAttributes changes only the attributes it names; an empty Policy removes the policy:
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html"""
    # GIVEN a queue whose policy lets the topic deliver
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:OrderQueue"
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:OrderTopic"
    topic_arn, url, queue_arn = _topic_and_queue(aws, queue_policy_for_topic(queue_arn, topic_arn))
    dlq = aws("sqs").create_queue(QueueName="OrderDLQ")["QueueUrl"]
    dlq_arn = aws("sqs").get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # WHEN the redrive policy and the visibility timeout are set afterwards
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "12"})
    # THEN the access policy is still there, and the topic still delivers
    attributes = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["Policy"]) == queue_policy_for_topic(queue_arn, topic_arn)
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 3
    assert len(_delivered(aws, topic_arn, url)) == 1
    # AND an empty Policy removes it, as AWS's does
    aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Policy" not in aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
