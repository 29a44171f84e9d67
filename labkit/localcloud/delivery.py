"""SNS -> SQS delivery that honours the queue's access policy, as AWS's does.

On AWS, SNS sends to a subscribed queue as the service principal `sns.amazonaws.com`, with the
topic as `aws:SourceArn` and its account as `aws:SourceAccount`; the queue's access policy must
allow that `sqs:SendMessage`, whatever account the queue is in
(https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html). Otherwise the
message is dropped and the topic's CloudWatch metric `NumberOfNotificationsFailed` counts it
(https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html). moto delivers
regardless; `install()` gates moto's delivery on the policy and records each refusal in the same
metric, so `labkit status` and the grader can read why an order never reached the queue, through
CloudWatch (any process, or real AWS) or `refused_deliveries()` (this process, with the reason).

The policy stays as it was when SetQueueAttributes changes other attributes: AWS sets only the
attributes a call names (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html),
and moto cleared the policy on any call without one (a redrive policy set after the subscription
silently cut the topic off).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.sns.models import Subscription
from moto.sqs.models import Queue, sqs_backends

from labkit.localcloud import policy
from labkit.localcloud.patching import Patch, PatchTable

SNS_PRINCIPAL = "sns.amazonaws.com"
METRIC_NAMESPACE = "AWS/SNS"
METRIC_FAILED = "NumberOfNotificationsFailed"
# Enough to explain the last few mistakes; older refusals stay counted in CloudWatch.
MAX_REFUSALS_KEPT = 200

_original_publish = Subscription.publish
_refusals: deque[Refusal] = deque(maxlen=MAX_REFUSALS_KEPT)
_refusals_lock = threading.Lock()


@dataclass(frozen=True)
class Refusal:
    """One SNS notification the queue's access policy refused."""

    time: float
    topic_arn: str
    queue_arn: str
    subscription_arn: str
    message_id: str
    reason: str


def refused_deliveries(queue_arn: str | None = None, since: float = 0.0) -> list[dict[str, Any]]:
    """Recent notifications the queue policy refused in this process, oldest first.

    Args:
        queue_arn: only those meant for this queue (all queues if None).
        since: only those at or after this `time.time()`.
    Returns:
        Dicts with time, topic_arn, queue_arn, subscription_arn, message_id and reason.
    """
    with _refusals_lock:
        kept = list(_refusals)
    return [asdict(r) for r in kept if (queue_arn is None or r.queue_arn == queue_arn) and r.time >= since]


def clear_refusals() -> None:
    """Forget the refusals recorded in this process."""
    with _refusals_lock:
        _refusals.clear()


def delivery_allowed(queue_policy: str | dict[str, Any] | None, queue_arn: str, topic_arn: str) -> tuple[bool, str]:
    """Whether a queue policy lets *topic_arn* deliver to *queue_arn* through SNS, and why not."""
    topic_account = topic_arn.split(":")[4] if topic_arn.count(":") >= 5 else ""
    decision = policy.evaluate(
        [queue_policy],
        "sqs:SendMessage",
        queue_arn,
        context={"aws:SourceArn": topic_arn, "aws:SourceAccount": topic_account},
        principals={"Service": [SNS_PRINCIPAL]},
    )
    queue = queue_arn.rsplit(":", 1)[-1]
    if decision == policy.ALLOW:
        return True, ""
    if decision == policy.DENY:
        return False, f"The access policy of queue {queue} explicitly denies sqs:SendMessage from topic {topic_arn}."
    if not policy.statements(queue_policy):
        return False, (
            f"Queue {queue} has no access policy, so SNS may not send to it: add a statement allowing "
            f"{SNS_PRINCIPAL} sqs:SendMessage on {queue_arn} with aws:SourceArn {topic_arn}."
        )
    return False, (
        f"The access policy of queue {queue} does not allow {SNS_PRINCIPAL} to call sqs:SendMessage "
        f"with aws:SourceArn {topic_arn}: add a statement that does."
    )


def _publish(self: Subscription, message: str, message_id: str, *args: Any, **kwargs: Any) -> None:
    if self.protocol != "sqs":
        return _original_publish(self, message, message_id, *args, **kwargs)
    queue_arn = self.endpoint
    parts = queue_arn.split(":")
    # moto looks the queue up in the subscription's account and the queue's region; so does this.
    queue = sqs_backends[self.account_id][parts[3]].queues.get(parts[-1]) if len(parts) >= 6 else None
    if queue is not None:
        allowed, reason = delivery_allowed(queue.policy, queue_arn, self.topic.arn)
        if not allowed:
            _record(self, queue_arn, message_id, reason)
            return None
    return _original_publish(self, message, message_id, *args, **kwargs)


def _record(subscription: Subscription, queue_arn: str, message_id: str, reason: str) -> None:
    topic = subscription.topic
    with _refusals_lock:
        _refusals.append(
            Refusal(
                time=time.time(),
                topic_arn=topic.arn,
                queue_arn=queue_arn,
                subscription_arn=subscription.arn,
                message_id=message_id,
                reason=reason,
            )
        )
    region = topic.arn.split(":")[3]
    cloudwatch_backends[topic.account_id][region].put_metric_data(
        METRIC_NAMESPACE,
        [
            {
                "MetricName": METRIC_FAILED,
                "Value": 1.0,
                "Unit": "Count",
                "Dimensions": [{"Name": "TopicName", "Value": topic.name}],
            }
        ],
    )


_original_set_attributes = Queue._set_attributes


def _set_attributes(self: Queue, attributes: dict[str, Any], now: float | None = None) -> None:
    # At creation the queue has no policy yet to keep; afterwards an absent "Policy" leaves it alone.
    kept = self.policy if "Policy" not in attributes and hasattr(self, "_policy_json") else None
    _original_set_attributes(self, attributes, now)
    if kept:
        self.policy = kept


_PATCHES = PatchTable(Patch(Subscription, "publish", _publish), Patch(Queue, "_set_attributes", _set_attributes))


def install() -> None:
    """Gate moto's SNS -> SQS delivery on the queue's access policy, and keep that policy through other changes."""
    _PATCHES.install()


def problems() -> list[str]:
    """What moto no longer has that this module replaces."""
    found = _PATCHES.missing()
    if not found and "sqs_backends" not in _original_publish.__code__.co_names:
        found.append("moto's Subscription.publish no longer delivers to SQS through sqs_backends")
    if not isinstance(vars(Queue).get("policy"), property):
        found.append("moto's Queue no longer keeps its access policy in the property policy")
    return found
