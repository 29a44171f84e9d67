"""The assignment, step by step, with the real AWS CLI against `labkit serve`.

Each answer is checked for the shape the AWS CLI prints on AWS: the fields a student reads or a
script parses, with AWS's types. Select with `-m awscli`, leave out with `-m 'not awscli'`.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cli import Cli, served

from labkit.resources.functions import handler_source

pytestmark = pytest.mark.awscli

ACCOUNT = "123456789012"
REGION = "us-east-1"
ORDER = {
    "orderId": "cli-0001",
    "userId": "U123",
    "itemName": "Laptop",
    "quantity": 1,
    "status": "new",
    "timestamp": "2025-05-03T12:00:00Z",
}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """`labkit serve` on a free port in its own process, with AWS's short transitional states."""
    with served(tmp_path) as runner:
        yield runner


def test_the_assignment_through_the_aws_cli(cli):
    """Create table, wait, topic, queues with redrive, subscription, role, function from a zip,
    wait, trigger, publish, get-item: the answers have AWS's shapes, and an order published before
    the queue policy allows the topic never arrives (the topic's NumberOfNotificationsFailed says so).
    https://docs.aws.amazon.com/cli/latest/reference/dynamodb/create-table.html
    https://docs.aws.amazon.com/cli/latest/reference/lambda/create-function.html
    https://docs.aws.amazon.com/cli/latest/reference/lambda/create-event-source-mapping.html
    https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html"""
    # Step 1: the table, CREATING at first, as on AWS, until `wait table-exists` returns.
    table = cli(
        "dynamodb", "create-table", "--table-name", "Orders",
        "--attribute-definitions", "AttributeName=orderId,AttributeType=S",
        "--key-schema", "AttributeName=orderId,KeyType=HASH",
        "--billing-mode", "PAY_PER_REQUEST",
    )["TableDescription"]  # fmt: skip
    assert table["TableStatus"] == "CREATING"
    assert table["TableArn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Orders"
    # AWS CLI v1 prints the epoch seconds DynamoDB sends (v2 would format them as ISO 8601).
    assert isinstance(table["CreationDateTime"], float) and abs(table["CreationDateTime"] - time.time()) < 120
    assert cli("dynamodb", "wait", "table-exists", "--table-name", "Orders") is None
    assert cli("dynamodb", "describe-table", "--table-name", "Orders")["Table"]["TableStatus"] == "ACTIVE"

    # Step 2: the topic.
    topic_arn = cli("sns", "create-topic", "--name", "OrderTopic")["TopicArn"]
    assert topic_arn == f"arn:aws:sns:{REGION}:{ACCOUNT}:OrderTopic"

    # Step 3: the DLQ, the queue with its redrive policy, and the subscription.
    dlq_url = cli("sqs", "create-queue", "--queue-name", "OrderDLQ")["QueueUrl"]
    dlq_arn = cli("sqs", "get-queue-attributes", "--queue-url", dlq_url, "--attribute-names", "QueueArn")["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}
    attributes = cli.file("attributes.json", {"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(redrive)})
    queue_url = cli("sqs", "create-queue", "--queue-name", "OrderQueue", "--attributes", attributes)["QueueUrl"]
    assert queue_url.endswith(f"/{ACCOUNT}/OrderQueue")
    queue = cli("sqs", "get-queue-attributes", "--queue-url", queue_url, "--attribute-names", "All")["Attributes"]
    queue_arn = queue["QueueArn"]
    assert queue["CreatedTimestamp"].isdigit() and queue["LastModifiedTimestamp"].isdigit()
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    assert queue["VisibilityTimeout"] == "30"
    subscription = cli(
        "sns", "subscribe", "--topic-arn", topic_arn, "--protocol", "sqs", "--notification-endpoint", queue_arn
    )["SubscriptionArn"]
    assert subscription.startswith(f"{topic_arn}:")

    # The most common mistake: no queue policy yet, so SNS may not deliver and the order is lost.
    cli("sns", "publish", "--topic-arn", topic_arn, "--message", json.dumps({**ORDER, "orderId": "lost"}))
    received = cli("sqs", "receive-message", "--queue-url", queue_url, "--wait-time-seconds", "0")
    assert not (received or {}).get("Messages")
    now = time.time()
    failed = cli(
        "cloudwatch", "get-metric-statistics", "--namespace", "AWS/SNS",
        "--metric-name", "NumberOfNotificationsFailed", "--dimensions", "Name=TopicName,Value=OrderTopic",
        "--start-time", str(int(now - 600)), "--end-time", str(int(now + 600)),
        "--period", "1200", "--statistics", "Sum",
    )["Datapoints"]  # fmt: skip
    assert sum(point["Sum"] for point in failed) == 1.0

    queue_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    policy_attributes = cli.file("policy.json", {"Policy": json.dumps(queue_policy)})
    cli("sqs", "set-queue-attributes", "--queue-url", queue_url, "--attributes", policy_attributes)

    # Step 4: the execution role.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = cli(
        "iam", "create-role", "--role-name", "OrderProcessorRole",
        "--assume-role-policy-document", cli.file("trust.json", trust),
    )["Role"]  # fmt: skip
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/OrderProcessorRole"
    for managed in (
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
        "arn:aws:iam::aws:policy/AmazonSQSFullAccess",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    ):
        cli("iam", "attach-role-policy", "--role-name", "OrderProcessorRole", "--policy-arn", managed)

    # Step 5: the function from a zip, Pending until `wait function-active-v2` returns.
    package = cli.workdir / "function.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("code.py", handler_source())
    function = cli(
        "lambda", "create-function", "--function-name", "OrderProcessor",
        "--runtime", "python3.12", "--handler", "code.lambda_handler", "--role", role["Arn"],
        "--zip-file", f"fileb://{package}", "--timeout", "3",
        "--environment", "Variables={TABLE_NAME=Orders}",
    )  # fmt: skip
    assert (function["State"], function["StateReasonCode"]) == ("Pending", "Creating")
    assert function["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:OrderProcessor"
    assert cli("lambda", "wait", "function-active-v2", "--function-name", "OrderProcessor") is None
    configuration = cli("lambda", "get-function-configuration", "--function-name", "OrderProcessor")
    assert (configuration["State"], configuration["LastUpdateStatus"]) == ("Active", "Successful")

    # Step 6: the trigger, Creating at first, then Enabled.
    mapping = cli(
        "lambda", "create-event-source-mapping", "--function-name", "OrderProcessor",
        "--event-source-arn", queue_arn, "--batch-size", "1",
    )  # fmt: skip
    assert mapping["State"] == "Creating"
    assert UUID_RE.match(mapping["UUID"])
    assert mapping["BatchSize"] == 1
    deadline = time.monotonic() + 30
    while mapping["State"] != "Enabled" and time.monotonic() < deadline:
        time.sleep(0.2)
        mapping = cli("lambda", "get-event-source-mapping", "--uuid", mapping["UUID"])
    assert mapping["State"] == "Enabled"

    # Step 7: publish an order; it lands in the table.
    published = cli("sns", "publish", "--topic-arn", topic_arn, "--message", json.dumps(ORDER))
    assert UUID_RE.match(published["MessageId"])
    key = cli.file("key.json", {"orderId": {"S": ORDER["orderId"]}})
    deadline = time.monotonic() + 60
    item = None
    while item is None and time.monotonic() < deadline:
        item = (cli("dynamodb", "get-item", "--table-name", "Orders", "--key", key) or {}).get("Item")
        if item is None:
            time.sleep(0.5)
    assert item is not None, "the order never reached the table"
    assert item["orderId"] == {"S": ORDER["orderId"]}
    assert item["itemName"] == {"S": "Laptop"}
    assert item["quantity"] == {"N": "1"}
    lost = cli.file("lost.json", {"orderId": {"S": "lost"}})
    assert "Item" not in (cli("dynamodb", "get-item", "--table-name", "Orders", "--key", lost) or {})
