"""The grader's reads of the table, the topic and the queues: each made once, read-only, a clear word if absent.

`Lookups` holds the caching every read goes through (`once`), and the reads of steps 1 to 3: the
table, the topic and its subscriptions, the order queue and the dead-letter queue, and the wiring
around them (every subscription in the region, the queues that redrive into the DLQ, the event
source mappings reading from either queue). A resource a check needs that does not exist raises
`Missing`, whose message says what to build. `Facts` (facts.py) adds the function, its role and its
trigger; the function is found through the order queue's mappings, so its reads stand on these.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from labkit.aws import SQS_NOT_FOUND_CODES, arn, error_code, paginate
from labkit.config import Config
from labkit.session import Clients

T = TypeVar("T")
FIFO_SUFFIX = ".fifo"


class Missing(Exception):
    """A resource a check needs does not exist; the message says what to build first."""


@dataclass(frozen=True)
class Topic:
    """The topic found for the lab (possibly a FIFO one, which a check then fails)."""

    name: str
    arn: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Queue:
    """A queue found by name, with all its attributes."""

    name: str
    url: str
    arn: str
    attributes: dict[str, str]


class Lookups:
    """Read-only lookups of one student's table, topic and queues, cached for the length of one grading run."""

    def __init__(
        self, config: Config, clients: Clients, selected: Collection[str] | None = None, since: float | None = None
    ) -> None:
        self.config = config
        self.clients = clients
        # Evidence older than this (epoch seconds) is not this run's: a notebook's check judges its own session.
        self.since = since
        # The ids of the checks this run grades (None: all), so a probe sends only what they need.
        self.selected = frozenset(selected) if selected is not None else None
        self._memo: dict[str, tuple[bool, Any]] = {}

    def grades(self, check_id: str) -> bool:
        """True if this run grades the check *check_id*."""
        return self.selected is None or check_id in self.selected

    def once(self, key: str, compute: Callable[[], T]) -> T:
        """Compute a lookup the first time; later calls return (or raise) the same outcome."""
        if key not in self._memo:
            try:
                self._memo[key] = (True, compute())
            except Exception as exc:  # kept and raised again to every check that needs this lookup
                self._memo[key] = (False, exc)
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    @property
    def account(self) -> str:
        """The account being graded."""
        return self.clients.account_id

    def arn(self, service: str, resource: str) -> str:
        """An ARN in the graded account and region."""
        return arn(service, self.config.region, self.account, resource)

    # Step 1.
    def table(self) -> dict[str, Any]:
        """The table's description."""
        return self.once("table", self._table)

    def _table(self) -> dict[str, Any]:
        name = self.config.table_name
        try:
            return self.clients("dynamodb").describe_table(TableName=name)["Table"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise Missing(
                    f"Table {name} does not exist: create it first (step 1, partition key orderId, String)."
                ) from None
            raise

    def table_arn(self) -> str:
        """The table's ARN, or the ARN it would have if it is missing or unreadable (ARNs are predictable)."""
        try:
            return str(self.table()["TableArn"])
        except (Missing, ClientError):
            return self.arn("dynamodb", f"table/{self.config.table_name}")

    # Step 2.
    def topic(self) -> Topic:
        """The topic named for the lab, standard or (wrongly) FIFO."""
        return self.once("topic", self._topic)

    def _topic(self) -> Topic:
        sns = self.clients("sns")
        name = self.config.topic_name
        for candidate in (name, name + FIFO_SUFFIX):
            topic_arn = self.arn("sns", candidate)
            try:
                attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
            except ClientError as exc:
                if error_code(exc) == "NotFound":
                    continue
                raise
            return Topic(name=candidate, arn=topic_arn, attributes=attributes)
        raise Missing(f"Topic {name} does not exist: create a standard SNS topic named {name} first (step 2).")

    def subscriptions(self) -> list[dict[str, Any]]:
        """Every subscription of the topic."""
        return self.once(
            "subscriptions",
            lambda: list(
                paginate(self.clients("sns"), "list_subscriptions_by_topic", "Subscriptions", TopicArn=self.topic().arn)
            ),
        )

    # Step 3.
    def queue(self) -> Queue:
        """The order queue."""
        return self.once("queue", lambda: self._queue(self.config.queue_name, "the order queue"))

    def dlq(self) -> Queue:
        """The dead-letter queue."""
        return self.once("dlq", lambda: self._queue(self.config.dlq_name, "the dead-letter queue"))

    def _queue(self, name: str, what: str) -> Queue:
        sqs = self.clients("sqs")
        url = self._queue_url(name)
        if url is None:
            hint = ""
            if self._queue_url(name + FIFO_SUFFIX) is not None:
                hint = f" (there is a FIFO queue {name}{FIFO_SUFFIX}; the lab needs a standard queue)"
            raise Missing(f"Queue {name}, {what}, does not exist{hint}: create a standard queue named {name} (step 3).")
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return Queue(name=name, url=url, arn=attributes["QueueArn"], attributes=attributes)

    def _queue_url(self, name: str) -> str | None:
        try:
            return str(self.clients("sqs").get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as exc:
            if error_code(exc) in SQS_NOT_FOUND_CODES:
                return None
            raise

    def queue_arn(self) -> str:
        """The order queue's ARN, or the ARN it would have if it is missing or unreadable."""
        try:
            return self.queue().arn
        except (Missing, ClientError):
            return self.arn("sqs", self.config.queue_name)

    # Step 4 finds the graded function among what these trigger (facts.py).
    def queue_mappings(self) -> list[dict[str, Any]]:
        """Every event source mapping reading from the order queue."""
        return self.once(
            "queue_mappings",
            lambda: list(
                paginate(
                    self.clients("lambda"),
                    "list_event_source_mappings",
                    "EventSourceMappings",
                    EventSourceArn=self.queue().arn,
                )
            ),
        )

    # The wiring graph's extra reads.
    def all_subscriptions(self) -> list[dict[str, Any]]:
        """Every SNS subscription in the account and region (any topic may deliver to the lab's queues)."""
        return self.once(
            "all_subscriptions", lambda: list(paginate(self.clients("sns"), "list_subscriptions", "Subscriptions"))
        )

    def dlq_sources(self) -> list[Queue]:
        """Every queue whose redrive policy sends its failed messages to the dead-letter queue."""
        return self.once("dlq_sources", self._dlq_sources)

    def _dlq_sources(self) -> list[Queue]:
        sqs = self.clients("sqs")
        urls = list(paginate(sqs, "list_dead_letter_source_queues", "queueUrls", QueueUrl=self.dlq().url))
        sources = []
        for url in urls:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            sources.append(
                Queue(
                    name=url.rstrip("/").rsplit("/", 1)[-1], url=url, arn=attributes["QueueArn"], attributes=attributes
                )
            )
        return sources

    def queue_by_arn(self, queue_arn: str) -> Queue | None:
        """Any queue of the graded account by ARN (a redrive target, say), or None if it does not exist."""
        name = queue_arn.rsplit(":", 1)[-1]
        if queue_arn != self.arn("sqs", name):
            return None  # another account's or region's queue: not the student's to grade
        return self.once(f"queue:{name}", lambda: self._queue_or_none(name))

    def _queue_or_none(self, name: str) -> Queue | None:
        try:
            return self._queue(name, "a redrive target")
        except Missing:
            return None

    def dlq_mappings(self) -> list[dict[str, Any]]:
        """Every event source mapping reading from the dead-letter queue."""
        return self.once(
            "dlq_mappings",
            lambda: list(
                paginate(
                    self.clients("lambda"),
                    "list_event_source_mappings",
                    "EventSourceMappings",
                    EventSourceArn=self.dlq().arn,
                )
            ),
        )
