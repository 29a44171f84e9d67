"""The SNS topic `OrderTopic`, its subscription to the queue, and publishing orders."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import arn, error_code, found_or_none, paginate, tag_list
from labkit.config import Config
from labkit.errors import InputError, ResourceError
from labkit.session import Clients

log = logging.getLogger(__name__)

# SNS caps one message at 256 KiB.
MAX_MESSAGE_BYTES = 256 * 1024
PUBLISH_BATCH = 10  # the most PublishBatch takes in one call


@dataclass(frozen=True)
class TopicInfo:
    """The topic's name and ARN."""

    name: str
    arn: str


@dataclass(frozen=True)
class SubscriptionInfo:
    """A subscription of the queue to the topic."""

    arn: str
    protocol: str
    endpoint: str
    raw_delivery: bool


def topic_arn(config: Config, clients: Clients) -> str:
    """The ARN the topic has (or would have) in this account and region."""
    return arn("sns", config.region, clients.account_id, config.topic_name)


def ensure_topic(config: Config, clients: Clients) -> TopicInfo:
    """Create the standard topic unless it exists.

    Args:
        config: names and tags.
        clients: boto3 clients for the backend.
    Returns:
        The topic's name and ARN.
    Raises:
        ResourceError: a FIFO topic stands where the standard one should.
    """
    sns = clients("sns")
    expected = topic_arn(config, clients)
    attributes = found_or_none(
        lambda: sns.get_topic_attributes(TopicArn=expected)["Attributes"], ("NotFound",), f"topic {config.topic_name}"
    )
    if attributes is None:
        log.info("creating topic %s", config.topic_name)
        # Looked up first, created second: CreateTopic on an existing topic with other tags is an error.
        created = sns.create_topic(Name=config.topic_name, Tags=tag_list(config.tags))["TopicArn"]
        return TopicInfo(name=config.topic_name, arn=created)
    if attributes.get("FifoTopic") == "true":
        raise ResourceError(
            f"Topic {config.topic_name} is FIFO; the lab needs a standard topic. Delete it and run again."
        )
    return TopicInfo(name=config.topic_name, arn=expected)


def get_topic_arn(config: Config, clients: Clients) -> str | None:
    """The topic's ARN if the topic exists, else None."""
    target = topic_arn(config, clients)
    try:
        clients("sns").get_topic_attributes(TopicArn=target)
    except ClientError as exc:
        if error_code(exc) == "NotFound":
            return None
        raise
    return target


def delete_topic(config: Config, clients: Clients) -> bool:
    """Delete the topic and so its subscriptions; True if it existed."""
    target = get_topic_arn(config, clients)
    if target is None:
        return False
    clients("sns").delete_topic(TopicArn=target)
    return True


def find_subscription(clients: Clients, topic: str, queue_arn: str) -> SubscriptionInfo | None:
    """The topic's SQS subscription for *queue_arn*, if any."""
    sns = clients("sns")
    for sub in paginate(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=topic):
        if sub["Protocol"] == "sqs" and sub["Endpoint"] == queue_arn and sub["SubscriptionArn"].startswith("arn:"):
            attributes = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
            return SubscriptionInfo(
                arn=sub["SubscriptionArn"],
                protocol="sqs",
                endpoint=queue_arn,
                raw_delivery=attributes.get("RawMessageDelivery") == "true",
            )
    return None


def ensure_subscription(clients: Clients, topic: str, queue_arn: str, raw_delivery: bool = False) -> SubscriptionInfo:
    """Subscribe the queue to the topic unless it already is.

    Args:
        clients: boto3 clients for the backend.
        topic: the topic's ARN.
        queue_arn: the queue's ARN.
        raw_delivery: deliver the bare order instead of the SNS envelope (the seed uses the envelope).
    Returns:
        The subscription, with its delivery mode as it now stands.
    """
    sns = clients("sns")
    existing = find_subscription(clients, topic, queue_arn)
    if existing is None:
        log.info("subscribing %s to %s", queue_arn, topic)
        sub_arn = sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": str(raw_delivery).lower()},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return SubscriptionInfo(arn=sub_arn, protocol="sqs", endpoint=queue_arn, raw_delivery=raw_delivery)
    if existing.raw_delivery != raw_delivery:
        sns.set_subscription_attributes(
            SubscriptionArn=existing.arn, AttributeName="RawMessageDelivery", AttributeValue=str(raw_delivery).lower()
        )
    return SubscriptionInfo(arn=existing.arn, protocol="sqs", endpoint=queue_arn, raw_delivery=raw_delivery)


def encode_order(order: Mapping[str, Any] | str) -> str:
    """The message body for an order: a dict becomes JSON, a string is sent as it is."""
    if isinstance(order, str):
        body = order
    elif isinstance(order, Mapping):
        try:
            body = json.dumps(dict(order), ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InputError(f"The order cannot be written as JSON: {exc}") from exc
    else:
        raise InputError(f"An order is a dict or a JSON string, not {type(order).__name__}.")
    if not body:
        raise InputError("SNS refuses an empty message: give the order some JSON.")
    if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise InputError(f"The message is {len(body.encode('utf-8'))} bytes; SNS takes at most {MAX_MESSAGE_BYTES}.")
    return body


def publish_order(clients: Clients, topic: str, order: Mapping[str, Any] | str) -> str:
    """Publish one order (or any body, to test bad input) to the topic; returns the SNS message id."""
    return clients("sns").publish(TopicArn=topic, Message=encode_order(order))["MessageId"]


def publish_orders(clients: Clients, topic: str, orders: Iterable[Mapping[str, Any] | str]) -> list[str]:
    """Publish many orders, ten to a PublishBatch call; returns the message ids in order."""
    sns = clients("sns")
    ids: list[str] = []
    batch: list[str] = []

    def flush() -> None:
        entries = [{"Id": str(i), "Message": body} for i, body in enumerate(batch)]
        reply = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
        if reply.get("Failed"):
            failed = reply["Failed"][0]
            raise ResourceError(
                f"Topic {topic} refused {len(reply['Failed'])} of {len(batch)} messages: {failed.get('Message')}"
            )
        by_id = {entry["Id"]: entry["MessageId"] for entry in reply["Successful"]}
        ids.extend(by_id[str(i)] for i in range(len(batch)))
        batch.clear()

    for order in orders:
        batch.append(encode_order(order))
        if len(batch) == PUBLISH_BATCH:
            flush()
    if batch:
        flush()
    return ids
