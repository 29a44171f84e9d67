"""Provisioners of the pipeline's data path: the table, the topic, the queues, the queue policy, the subscription.

Return values (Ref) and attributes (Fn::GetAtt) as each type's reference page gives them:
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-dynamodb-table.html,
aws-resource-sns-topic.html, aws-resource-sqs-queue.html, aws-resource-sqs-queuepolicy.html,
aws-resource-sns-subscription.html.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from labkit.localcloud.stacks.provision import (
    Context,
    Created,
    Provisioner,
    ProvisionError,
    already_exists,
    as_text,
    calling,
    exists,
    gone,
    tag_list,
    tag_map,
)

TABLE = "AWS::DynamoDB::Table"
TOPIC = "AWS::SNS::Topic"
QUEUE = "AWS::SQS::Queue"
QUEUE_POLICY = "AWS::SQS::QueuePolicy"
SUBSCRIPTION = "AWS::SNS::Subscription"

# Table properties that CreateTable takes as they are.
_TABLE_DIRECT = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
    "TableClass",
    "DeletionProtectionEnabled",
)
_WAIT = {"Delay": 0.2, "MaxAttempts": 300}


def _create_table(context: Context, logical_id: str, props: dict[str, Any]) -> Created:
    ddb = context.clients("dynamodb")
    name = props.get("TableName") or context.name_for(logical_id, 255)
    if props.get("TableName") and exists(lambda: ddb.describe_table(TableName=name), "ResourceNotFoundException"):
        raise already_exists(TABLE, name)
    request: dict[str, Any] = {k: props[k] for k in _TABLE_DIRECT if k in props}
    if "StreamSpecification" in request:
        request["StreamSpecification"] = {"StreamEnabled": True, **request["StreamSpecification"]}
    if props.get("Tags"):
        request["Tags"] = tag_list(props["Tags"])
    # CloudFormation's default billing mode is PROVISIONED, as DynamoDB's own.
    described = calling("dynamodb", lambda: ddb.create_table(TableName=name, **request))["TableDescription"]
    calling("dynamodb", lambda: ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=_WAIT))
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        calling("dynamodb", lambda: ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl))
    attributes = {"Arn": described["TableArn"]}
    if described.get("LatestStreamArn"):
        attributes["StreamArn"] = described["LatestStreamArn"]
    return Created(name, attributes)


def _delete_table(context: Context, created: Created, props: dict[str, Any]) -> None:
    ddb = context.clients("dynamodb")
    try:
        ddb.delete_table(TableName=created.physical_id)
    except ClientError as exc:
        if gone(exc, "ResourceNotFoundException"):
            return
        raise
    calling(
        "dynamodb",
        lambda: ddb.get_waiter("table_not_exists").wait(TableName=created.physical_id, WaiterConfig=_WAIT),
    )


_TOPIC_ATTRIBUTES = (
    "DisplayName",
    "FifoTopic",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "SignatureVersion",
    "TracingConfig",
)


def _create_topic(context: Context, logical_id: str, props: dict[str, Any]) -> Created:
    sns = context.clients("sns")
    fifo = str(props.get("FifoTopic", "false")).lower() == "true"
    name = props.get("TopicName") or context.name_for(logical_id, 256, ".fifo" if fifo else "")
    arn = context.arn("sns", name)
    if props.get("TopicName") and exists(lambda: sns.get_topic_attributes(TopicArn=arn), "NotFound"):
        raise already_exists(TOPIC, arn)
    attributes: dict[str, str] = {key: as_text(props[key]) for key in _TOPIC_ATTRIBUTES if key in props}
    request: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if props.get("Tags"):
        request["Tags"] = tag_list(props["Tags"])
    arn = calling("sns", lambda: sns.create_topic(**request))["TopicArn"]
    for subscription in props.get("Subscription") or []:
        calling(
            "sns",
            partial(sns.subscribe, TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]),
        )
    return Created(arn, {"TopicArn": arn, "TopicName": name})


def _delete_topic(context: Context, created: Created, props: dict[str, Any]) -> None:
    calling("sns", lambda: context.clients("sns").delete_topic(TopicArn=created.physical_id))


_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def _create_queue(context: Context, logical_id: str, props: dict[str, Any]) -> Created:
    sqs = context.clients("sqs")
    fifo = str(props.get("FifoQueue", "false")).lower() == "true"
    name = props.get("QueueName") or context.name_for(logical_id, 80, ".fifo" if fifo else "")
    if props.get("QueueName") and exists(
        lambda: sqs.get_queue_url(QueueName=name), "NonExistentQueue", "QueueDoesNotExist"
    ):
        raise already_exists(QUEUE, name)
    attributes = {key: as_text(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if props.get("Tags"):
        request["tags"] = tag_map(props["Tags"])
    url = calling("sqs", lambda: sqs.create_queue(**request))["QueueUrl"]
    arn = calling("sqs", lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"][
        "QueueArn"
    ]
    return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _delete_queue(context: Context, created: Created, props: dict[str, Any]) -> None:
    try:
        context.clients("sqs").delete_queue(QueueUrl=created.physical_id)
    except ClientError as exc:
        if not gone(exc, "NonExistentQueue", "QueueDoesNotExist"):
            raise ProvisionError(str(exc)) from exc


def _create_queue_policy(context: Context, logical_id: str, props: dict[str, Any]) -> Created:
    sqs = context.clients("sqs")
    policy = as_text(props["PolicyDocument"])
    for url in props["Queues"]:
        calling("sqs", partial(sqs.set_queue_attributes, QueueUrl=url, Attributes={"Policy": policy}))
    return Created(context.name_for(logical_id, 255))


def _delete_queue_policy(context: Context, created: Created, props: dict[str, Any]) -> None:
    sqs = context.clients("sqs")
    for url in props.get("Queues") or []:
        try:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
        except ClientError as exc:
            if not gone(exc, "NonExistentQueue", "QueueDoesNotExist"):
                raise


_SUBSCRIPTION_ATTRIBUTES = (
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "ReplayPolicy",
    "SubscriptionRoleArn",
)


def _create_subscription(context: Context, logical_id: str, props: dict[str, Any]) -> Created:
    sns = context.clients("sns")
    attributes = {key: as_text(props[key]) for key in _SUBSCRIPTION_ATTRIBUTES if key in props}
    request: dict[str, Any] = {"TopicArn": props["TopicArn"], "Protocol": props["Protocol"]}
    if "Endpoint" in props:
        request["Endpoint"] = props["Endpoint"]
    if attributes:
        request["Attributes"] = attributes
    arn = calling("sns", lambda: sns.subscribe(ReturnSubscriptionArn=True, **request))["SubscriptionArn"]
    return Created(arn, {"Arn": arn})


def _delete_subscription(context: Context, created: Created, props: dict[str, Any]) -> None:
    try:
        context.clients("sns").unsubscribe(SubscriptionArn=created.physical_id)
    except ClientError as exc:
        if not gone(exc, "NotFound"):
            raise


PROVISIONERS = (
    Provisioner(
        TABLE, frozenset((*_TABLE_DIRECT, "TableName", "Tags", "TimeToLiveSpecification")), _create_table, _delete_table
    ),
    Provisioner(
        TOPIC,
        frozenset((*_TOPIC_ATTRIBUTES, "TopicName", "Tags", "Subscription")),
        _create_topic,
        _delete_topic,
    ),
    Provisioner(QUEUE, frozenset((*_QUEUE_ATTRIBUTES, "QueueName", "Tags")), _create_queue, _delete_queue),
    Provisioner(QUEUE_POLICY, frozenset(("PolicyDocument", "Queues")), _create_queue_policy, _delete_queue_policy),
    Provisioner(
        SUBSCRIPTION,
        frozenset((*_SUBSCRIPTION_ATTRIBUTES, "TopicArn", "Protocol", "Endpoint")),
        _create_subscription,
        _delete_subscription,
    ),
)
