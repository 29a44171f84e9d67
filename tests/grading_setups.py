"""Pipelines built by plain boto3 calls, the way a student clicking through the AWS console leaves them.

No labkit builder is used: these setups check that the grader accepts what the console produces
(provisioned table, a `service-role` role with the console's logging policy plus the seed's managed
policies, a `lambda_function.py` package, the SQS console's queue policy and subscription, a trigger
without ReportBatchItemFailures, the console's default timeouts).
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

from labkit.config import Config
from labkit.orders import SAMPLE_ORDER
from labkit.resources.functions import handler_source

ClientFor = Callable[[str], Any]

CONSOLE_FUNCTION_TIMEOUT = 3  # the Lambda console's default
CONSOLE_VISIBILITY_TIMEOUT = 30  # the SQS console's default
# The assignment's test message, as typed into the SNS console.
SEED_MESSAGE = json.dumps(SAMPLE_ORDER, indent=2)


def console_zip() -> bytes:
    """The package the console deploys after code.py is pasted into its default file lambda_function.py."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lambda_function.py", handler_source())
    return buffer.getvalue()


def console_queue_policy(account: str, queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """The access policy the SQS console leaves: owner statement plus the one "Subscribe to SNS topic" adds."""
    return {
        "Version": "2012-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": "__owner_statement",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "SQS:*",
                "Resource": queue_arn,
            },
            {
                "Sid": f"topic-subscription-{topic_arn}",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "SQS:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": topic_arn}},
            },
        ],
    }


def build_console_pipeline(client: ClientFor, config: Config, function_name: str) -> dict[str, str]:
    """Steps 1-5 of the assignment by plain API calls; returns the ARNs and URLs made."""
    account = client("sts").get_caller_identity()["Account"]
    region = config.region
    ddb = client("dynamodb")
    ddb.create_table(
        TableName=config.table_name,
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )
    ddb.get_waiter("table_exists").wait(TableName=config.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    sns = client("sns")
    topic_arn = sns.create_topic(Name=config.topic_name)["TopicArn"]

    sqs = client("sqs")
    dlq_url = sqs.create_queue(QueueName=config.dlq_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=config.queue_name,
        Attributes={
            "VisibilityTimeout": str(CONSOLE_VISIBILITY_TIMEOUT),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # "Subscribe to Amazon SNS topic" in the SQS console: the policy first, then the subscription.
    policy = console_queue_policy(account, queue_arn, topic_arn)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    iam = client("iam")
    role_name = f"{function_name}-role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role_arn = iam.create_role(RoleName=role_name, Path="/service-role/", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    log_group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
    logging_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": f"arn:aws:logs:{region}:{account}:*"},
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"{log_group}:*"],
            },
        ],
    }
    policy_arn = iam.create_policy(
        PolicyName=f"AWSLambdaBasicExecutionRole-{uuid.uuid4()}",
        Path="/service-role/",
        PolicyDocument=json.dumps(logging_policy),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)

    lam = client("lambda")
    environment = {"Variables": {"TABLE_NAME": config.table_name}} if config.prefix else {"Variables": {}}
    lam.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": console_zip()},
        Timeout=CONSOLE_FUNCTION_TIMEOUT,
        Environment=environment,
    )
    for managed in ("AmazonDynamoDBFullAccess", "AmazonSQSFullAccess"):
        iam.attach_role_policy(RoleName=role_name, PolicyArn=f"arn:aws:iam::aws:policy/{managed}")
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=function_name, BatchSize=1, Enabled=True)

    sns.publish(TopicArn=topic_arn, Message=SEED_MESSAGE)
    wait_for_item(client, config.table_name, SAMPLE_ORDER["orderId"])
    return {"topic_arn": topic_arn, "queue_url": queue_url, "queue_arn": queue_arn, "dlq_url": dlq_url}


def wait_for_item(client: ClientFor, table: str, order_id: str, timeout: float = 15) -> dict[str, Any]:
    """Wait until the table holds *order_id*; returns the item (DynamoDB JSON)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = client("dynamodb").get_item(TableName=table, Key={"orderId": {"S": order_id}}).get("Item")
        if item:
            return item
        time.sleep(0.05)
    raise AssertionError(f"order {order_id} never reached table {table}")
