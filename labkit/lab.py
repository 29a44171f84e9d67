"""The facade notebooks and the CLI use: one object that builds, feeds, observes and removes the pipeline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labkit.config import Config
from labkit.errors import NotReadyError, ResourceError
from labkit.iac.facade import StackMethods
from labkit.orders import SAMPLE_ORDER
from labkit.resources import dynamodb, functions, iam, sns, sqs, triggers
from labkit.session import Clients

if TYPE_CHECKING:
    import pandas as pd

    from labkit.grading import Report
    from labkit.localcloud import LocalCloud

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pipeline:
    """Everything `up()` built, step by step."""

    table: dynamodb.TableInfo
    topic: sns.TopicInfo
    dlq: sqs.QueueInfo
    queue: sqs.QueueInfo
    subscription: sns.SubscriptionInfo
    role: iam.RoleInfo
    function: functions.FunctionInfo
    mapping: triggers.MappingInfo


class Lab(StackMethods):
    """One student's pipeline on one backend."""

    def __init__(self, config: Config, clients: Clients | None = None, cloud: LocalCloud | None = None) -> None:
        self.config = config
        self.clients = clients or Clients(config)
        self.cloud = cloud
        # What a notebook's session records about itself (the steps it caught up, what it found at its start).
        self.session: dict[str, Any] = {}

    def __repr__(self) -> str:
        where = self.config.endpoint_url or self.config.region
        return f"<Lab backend={self.config.backend} at={where} prefix={self.config.prefix or '-'}>"

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the in-process local cloud if this lab owns one."""
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None

    # Step 1 to 4 of the assignment; each may be called again at no cost.
    def ensure_table(self) -> dynamodb.TableInfo:
        """Step 1: the DynamoDB table."""
        return dynamodb.ensure_table(self.config, self.clients)

    def ensure_topic(self) -> sns.TopicInfo:
        """Step 2: the SNS topic."""
        return sns.ensure_topic(self.config, self.clients)

    def ensure_queues(self, raw_delivery: bool = False) -> tuple[sqs.QueueInfo, sqs.QueueInfo, sns.SubscriptionInfo]:
        """Step 3: the DLQ, the queue with its redrive policy and policy, and the subscription to the topic."""
        topic = self.ensure_topic()
        dlq = sqs.ensure_dlq(self.config, self.clients)
        queue = sqs.ensure_queue(self.config, self.clients, dlq.arn)
        sqs.ensure_queue_policy(self.clients, queue, topic.arn)
        subscription = sns.ensure_subscription(self.clients, topic.arn, queue.arn, raw_delivery=raw_delivery)
        return dlq, queue, subscription

    def ensure_role(self) -> iam.RoleInfo:
        """Step 4a: the execution role."""
        table = self.ensure_table()
        queue = self._require_queue()
        return iam.ensure_role(self.config, self.clients, table.arn, queue.arn)

    def ensure_function(self, source: str | None = None) -> functions.FunctionInfo:
        """Step 4b: deploy `lambda/code.py` (or *source*) as the function."""
        role = self.ensure_role()
        return functions.ensure_function(self.config, self.clients, role.arn, source=source)

    def ensure_trigger(self, enabled: bool = True) -> triggers.MappingInfo:
        """Step 4c: the SQS trigger with the configured batch size."""
        queue = self._require_queue()
        mapping = triggers.ensure_mapping(self.config, self.clients, queue.arn, queue.url, enabled=enabled)
        if self.cloud is not None:
            # The Lambda service rereads mappings when one changes, in its own thread; read them now,
            # so orders published next already meet the trigger as it was just set (on or off).
            self.cloud.service.refresh()
        return mapping

    def up(self, through: int = 4) -> Pipeline | None:
        """Build steps 1 to *through* (1-4); with 4, return everything that was built."""
        table = self.ensure_table()
        if through < 2:
            return None
        topic = self.ensure_topic()
        if through < 3:
            return None
        dlq, queue, subscription = self.ensure_queues()
        if through < 4:
            return None
        role = iam.ensure_role(self.config, self.clients, table.arn, queue.arn)
        function = functions.ensure_function(self.config, self.clients, role.arn)
        mapping = triggers.ensure_mapping(self.config, self.clients, queue.arn, queue.url)
        return Pipeline(table, topic, dlq, queue, subscription, role, function, mapping)

    def down(self, confirm: bool = False, untagged: bool = False) -> dict[str, bool]:
        """Delete what `up()` built, trigger first; returns, per resource, whether it was deleted.

        Only resources that carry labkit's tags and this prefix are deleted (see labkit.resources.teardown),
        and with *untagged* those of the pipeline's names without them (built in an exercise without the
        tags); on a real AWS account only with *confirm*=True, else ConfirmationRequired says what would go.
        """
        from labkit.resources import teardown

        return teardown.teardown(self.config, self.clients, confirm=confirm, untagged=untagged)

    def function_exists(self) -> bool:
        """True if the function (under any name the lab accepts) exists."""
        return functions.find_function(self.config, self.clients) is not None

    # Feeding the pipeline.
    def publish_order(self, order: Mapping[str, Any] | str | None = None) -> str:
        """Publish one order (default: the seed's sample) or any raw body; returns the SNS message id."""
        return sns.publish_order(self.clients, self._topic_arn(), SAMPLE_ORDER if order is None else order)

    def publish_orders(
        self,
        orders: Iterable[Mapping[str, Any] | str],
        max_queue_depth: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Publish many orders in batches of ten, pausing while the queue is deeper than *max_queue_depth*.

        No limit by default, on AWS as on a local cloud (whose receive cost is flat at depth: see
        `python -m labkit.bench`, backlog); none applies while no enabled trigger drains the queue.
        *on_progress* is called with the number published after each batch (for a progress bar).
        """
        depth = max_queue_depth or 0
        topic = self._topic_arn()
        queue = self._require_queue() if depth else None
        queue_url = queue.url if queue and self._trigger_enabled(queue.arn) else None
        ids: list[str] = []
        chunk: list[Mapping[str, Any] | str] = []
        for order in orders:
            chunk.append(order)
            if len(chunk) == depth or len(chunk) == 100:
                ids.extend(sns.publish_orders(self.clients, topic, chunk))
                chunk = []
                if on_progress:
                    on_progress(len(ids))
                if queue_url:
                    self._wait_below(queue_url, depth)
        if chunk:
            ids.extend(sns.publish_orders(self.clients, topic, chunk))
            if on_progress:
                on_progress(len(ids))
        return ids

    def _trigger_enabled(self, queue_arn: str) -> bool:
        # Without a trigger nothing empties the queue, so waiting for it to shrink would only stall.
        reply = self.clients("lambda").list_event_source_mappings(EventSourceArn=queue_arn)
        return any(m.get("State") in ("Enabled", "Enabling", "Updating") for m in reply.get("EventSourceMappings", []))

    def _wait_below(self, queue_url: str, depth: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while sqs.get_queue_counts(self.clients, queue_url)["visible"] >= depth:
            if time.monotonic() > deadline:
                raise NotReadyError(
                    f"Queue {self.config.queue_name} stayed above {depth} messages for {timeout:.0f}s: "
                    "is the trigger enabled? Check with `labkit status`."
                )
            time.sleep(0.05)

    def wait_until_drained(self, timeout: float = 60, settle_reads: int | None = None) -> dict[str, int | None]:
        """Wait until the order queue is empty (nothing visible, in flight or delayed); returns the counts.

        Raises:
            NotReadyError: the queue did not drain in *timeout* seconds, with the counts and the likely cause.
        """
        queue = self._require_queue()
        # SQS counts are approximate on AWS and settle within about a minute; read zero several times.
        needed = settle_reads if settle_reads is not None else (1 if self.cloud or self.config.endpoint_url else 3)
        deadline = time.monotonic() + timeout
        zeros = 0
        while True:
            counts = sqs.get_queue_counts(self.clients, queue.url)
            zeros = zeros + 1 if not any(counts.values()) else 0
            if zeros >= needed:
                return self.counts()
            if time.monotonic() > deadline:
                hint = self._drain_hint(queue)
                raise NotReadyError(
                    f"Queue {queue.name} still holds {counts['visible']} visible and {counts['in_flight']} "
                    f"in-flight messages after {timeout:.0f}s. {hint}"
                )
            time.sleep(0.1 if needed == 1 else 2)

    def _drain_hint(self, queue: sqs.QueueInfo) -> str:
        mapping = triggers.find_mapping(self.clients, self.config.function_name, queue.arn)
        if mapping is None:
            return f"No trigger connects it to {self.config.function_name}: add one (notebook 04, or `labkit up`)."
        if mapping["State"] != "Enabled":
            return f"The trigger is {mapping['State']}: enable it."
        return (
            f"Failed messages come back every {self.config.visibility_timeout}s until they reach the DLQ; wait longer."
        )

    # Observing.
    def counts(self) -> dict[str, int | None]:
        """Stored orders and queue/DLQ message counts; None for a resource that does not exist."""
        result: dict[str, int | None] = {"orders": dynamodb.count_orders(self.config, self.clients)}
        for label, name in (("queue", self.config.queue_name), ("dlq", self.config.dlq_name)):
            info = sqs.get_queue(self.clients, name)
            counts = sqs.get_queue_counts(self.clients, info.url) if info else None
            result[f"{label}_visible"] = counts["visible"] if counts else None
            result[f"{label}_in_flight"] = counts["in_flight"] if counts else None
        return result

    def delivery_problem(self) -> str | None:
        """Why SNS cannot deliver from the topic to the queue (the queue's access policy), or None.

        SNS drops what the queue's policy does not allow and counts it in the topic's CloudWatch
        metric NumberOfNotificationsFailed; nothing else tells the student.
        """
        from labkit.localcloud.delivery import delivery_allowed

        topic = sns.get_topic_arn(self.config, self.clients)
        queue = sqs.get_queue(self.clients, self.config.queue_name)
        if topic is None or queue is None:
            return None
        try:
            policy = self.clients("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=["Policy"])
        except ClientError as exc:
            # A student's account may not let them read the policy; status still shows the counts.
            log.debug("could not read the policy of %s: %s", queue.name, exc)
            return None
        allowed, reason = delivery_allowed(policy.get("Attributes", {}).get("Policy"), queue.arn, topic)
        if allowed:
            return None
        failed = self._failed_notifications()
        seen = f" SNS dropped {failed} notification(s) in the last hour." if failed else ""
        return f"{reason}{seen} Console: SQS > {queue.name} > Access policy > Edit."

    def _failed_notifications(self) -> int:
        now = time.time()
        try:
            reply = self.clients("cloudwatch").get_metric_statistics(
                Namespace="AWS/SNS",
                MetricName="NumberOfNotificationsFailed",
                Dimensions=[{"Name": "TopicName", "Value": self.config.topic_name}],
                StartTime=now - 3600,
                EndTime=now + 60,
                Period=3600,
                Statistics=["Sum"],
            )
        except ClientError as exc:
            log.debug("could not read NumberOfNotificationsFailed: %s", exc)
            return 0
        return int(sum(point.get("Sum", 0) for point in reply.get("Datapoints", [])))

    def order_items(self) -> list[dict[str, Any]]:
        """The stored orders as a list of dicts, sorted by orderId."""
        return dynamodb.get_orders(self.config, self.clients)

    def orders(self) -> pd.DataFrame:
        """The stored orders as a DataFrame, one row per order, schema columns first."""
        import pandas as pd

        items = self.order_items()
        frame = pd.DataFrame(items)
        columns = [c for c in dynamodb.ORDER_ATTRIBUTES if c in frame.columns or not items]
        extra = [c for c in frame.columns if c not in dynamodb.ORDER_ATTRIBUTES]
        return frame.reindex(columns=columns + extra)

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        """One stored order, or None."""
        return dynamodb.get_order(self.config, self.clients, order_id)

    def dlq_messages(self, max_messages: int = 10) -> list[dict[str, Any]]:
        """Up to *max_messages* messages of the DLQ, left in place."""
        dlq = self._require(self.config.dlq_name, "DLQ")
        return sqs.peek_messages(self.clients, dlq.url, max_messages)

    def redrive(
        self,
        limit: int | None = None,
        transform: Callable[[str], str] | None = None,
        only: Collection[str] | None = None,
    ) -> int:
        """Move DLQ messages back to the order queue (each body rewritten by *transform*, if given); returns how many.

        With *only* (the DLQ messages' MessageIds) just those move; every other message stays in the DLQ.
        """
        dlq = self._require(self.config.dlq_name, "DLQ")
        queue = self._require_queue()
        return sqs.redrive(self.clients, dlq.url, queue.url, limit, transform, only)

    def invoke(self, event: dict[str, Any]) -> functions.InvokeResult:
        """Invoke the function with a test event, as the console's Test button does."""
        return functions.invoke(self.config, self.clients, event)

    def grade(
        self, probe: bool = True, rubric: Any = None, only: Collection[str] | None = None, since: float | None = None
    ) -> Report:
        """Check what was built and how it behaves (a probe order through it), step by step, and score it.

        With *probe*=False only reads, for accounts where publishing is not allowed; with *only*, just the
        checks of those ids (a notebook's check cell); see labkit.grading.
        """
        from labkit.grading import grade

        return grade(self.config, self.clients, probe=probe, rubric=rubric, only=only, since=since)

    # The pipeline as code (notebook 09): deploy_stack, stack_events, stack_resources, delete_stack,
    # export_template, lint_template and diff_templates come from labkit.iac.facade.StackMethods.
    def for_prefix(self, prefix: str) -> Lab:
        """This backend (and local cloud) under another prefix's names, e.g. a stack's `<prefix>-Orders`."""
        return Lab(self.config.with_(prefix=prefix), self.clients, cloud=self.cloud)

    # Lookups with a clear message when a step is missing.
    def _topic_arn(self) -> str:
        arn = sns.get_topic_arn(self.config, self.clients)
        if arn is None:
            raise ResourceError(
                f"Topic {self.config.topic_name} does not exist yet: build it first (notebook 02, or `labkit up`)."
            )
        return arn

    def _require_queue(self) -> sqs.QueueInfo:
        return self._require(self.config.queue_name, "queue")

    def _require(self, name: str, what: str) -> sqs.QueueInfo:
        info = sqs.get_queue(self.clients, name)
        if info is None:
            raise ResourceError(f"The {what} {name} does not exist yet: build it first (notebook 03, or `labkit up`).")
        return info


def connect(config: Config | None = None, **overrides: Any) -> Lab:
    """Connect to the backend the environment names: AWS_ENDPOINT_URL, LABKIT_BACKEND=aws, else a local cloud."""
    config = config.with_(**overrides) if config is not None else Config.from_env(**overrides)
    if config.is_local:
        from labkit.localcloud import LocalCloud

        cloud = LocalCloud.shared(config)
        return Lab(config, cloud=cloud)
    return Lab(config)


def grade(config: Config | None = None, probe: bool = True, rubric: Any = None) -> Report:
    """Grade the pipeline on the backend the environment names, as `connect(config).grade()` does."""
    return connect(config).grade(probe=probe, rubric=rubric)
