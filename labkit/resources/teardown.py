"""Safe teardown: delete only what labkit built here, the resources that carry its tags and this prefix.

A resource with one of the pipeline's names but without labkit's tags (made in the console, or by
another tool) is kept and reported, never deleted. On a real AWS account nothing is deleted without
an explicit confirmation: `Lab.down(confirm=True)`, or the question `labkit down` asks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import arn, error_code
from labkit.config import BACKEND_AWS, TAG_KEY, Config
from labkit.errors import LabkitError
from labkit.resources import dynamodb, functions, iam, sns, sqs, triggers
from labkit.session import Clients

log = logging.getLogger(__name__)

# In the order they are deleted: the trigger first, so nothing consumes a queue that is going away.
KINDS = ("trigger", "function", "role", "topic", "queue", "dlq", "table")
NOT_FOUND = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchEntity",
        "NotFound",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)


class ConfirmationRequired(LabkitError):
    """Deleting from a real AWS account needs an explicit yes."""


@dataclass(frozen=True)
class Found:
    """A resource with one of the pipeline's names; `owned` when it carries labkit's tags and this prefix."""

    kind: str
    name: str
    arn: str
    owned: bool
    note: str = ""

    def describe(self) -> str:
        """One line: kind, name and the note."""
        return f"{self.kind:<9}{self.name}" + (f"  ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Plan:
    """What `down` would delete and what it keeps."""

    found: tuple[Found, ...]

    @property
    def delete(self) -> tuple[Found, ...]:
        """The resources labkit built here."""
        return tuple(f for f in self.found if f.owned)

    @property
    def keep(self) -> tuple[Found, ...]:
        """The resources that have a pipeline name but not labkit's tags: left alone."""
        return tuple(f for f in self.found if not f.owned)


def required_tags(config: Config) -> dict[str, str]:
    """The tags a resource must carry to be deleted: labkit's own and this prefix (not the extra tags)."""
    return {key: value for key, value in config.tags.items() if key.split(":")[0] == TAG_KEY.split(":")[0]}


def plan(config: Config, clients: Clients, untagged: bool = False) -> Plan:
    """Find the pipeline's resources by name and tell labkit's (tagged, this prefix) from the others.

    With *untagged*, a resource of the pipeline's name without labkit's tags is deleted too: one the
    student built in an exercise or the console without the tags, on their own say-so.
    """
    wanted = required_tags(config)
    found: list[Found] = []

    def add(kind: str, name: str, resource_arn: str, tags: dict[str, str], note: str = "") -> None:
        owned = all(tags.get(k) == v for k, v in wanted.items())
        if not owned and untagged:
            owned, note = True, "no labkit tags: deleted as asked (untagged)"
        elif not owned:
            note = (
                f"no {TAG_KEY}={wanted[TAG_KEY]} tag for this prefix: labkit did not create it "
                "(if you did, without the tags, delete it with `labkit down --untagged`)"
            )
        found.append(Found(kind, name, resource_arn, owned, note))

    function = _lookup(lambda: clients("lambda").get_function(FunctionName=config.function_name))
    queue_arn = arn("sqs", config.region, clients.account_id, config.queue_name)
    if function is not None:
        function_arn = function["Configuration"]["FunctionArn"]
        tags = function.get("Tags") or {}
        mapping = triggers.find_mapping(clients, config.function_name, queue_arn)
        if mapping is not None:
            mapping_arn = mapping.get("EventSourceMappingArn", mapping["UUID"])
            add("trigger", f"{config.queue_name} -> {config.function_name}", mapping_arn, tags)
        add("function", config.function_name, function_arn, tags)
    role = _lookup(lambda: clients("iam").get_role(RoleName=config.role_name))
    if role is not None:
        tags = _pairs(clients("iam").list_role_tags(RoleName=config.role_name)["Tags"])
        add("role", config.role_name, role["Role"]["Arn"], tags)
    topic_arn = sns.get_topic_arn(config, clients)
    if topic_arn is not None:
        add(
            "topic",
            config.topic_name,
            topic_arn,
            _pairs(clients("sns").list_tags_for_resource(ResourceArn=topic_arn)["Tags"]),
        )
    for kind, name in (("queue", config.queue_name), ("dlq", config.dlq_name)):
        queue = sqs.get_queue(clients, name)
        if queue is not None:
            tags = clients("sqs").list_queue_tags(QueueUrl=queue.url).get("Tags", {})
            waiting = sum(sqs.get_queue_counts(clients, queue.url).values())
            add(kind, name, queue.arn, tags, f"holds {waiting} message(s), deleted with it" if waiting else "")
    table = _lookup(lambda: clients("dynamodb").describe_table(TableName=config.table_name))
    if table is not None:
        table_arn = table["Table"]["TableArn"]
        tags = _pairs(clients("dynamodb").list_tags_of_resource(ResourceArn=table_arn).get("Tags", []))
        count = table["Table"].get("ItemCount", 0)
        add("table", config.table_name, table_arn, tags, f"about {count} order(s), deleted with it" if count else "")
    return Plan(tuple(found))


def execute(config: Config, clients: Clients, chosen: Plan) -> dict[str, bool]:
    """Delete the owned resources of *chosen*, trigger first; returns, per kind, whether it was deleted."""
    owned = {f.kind for f in chosen.delete}
    queue_arn = arn("sqs", config.region, clients.account_id, config.queue_name)
    deleters: dict[str, Callable[[], bool]] = {
        "trigger": lambda: triggers.delete_mapping(config, clients, queue_arn),
        "function": lambda: functions.delete_function(config, clients),
        "role": lambda: iam.delete_role(config, clients),
        "topic": lambda: sns.delete_topic(config, clients),
        "queue": lambda: sqs.delete_queue(clients, config.queue_name),
        "dlq": lambda: sqs.delete_queue(clients, config.dlq_name),
        "table": lambda: dynamodb.delete_table(config, clients),
    }
    return {kind: kind in owned and deleters[kind]() for kind in KINDS}


def teardown(config: Config, clients: Clients, confirm: bool = False, untagged: bool = False) -> dict[str, bool]:
    """Delete what labkit built for *config* (with *untagged*, also what has its names but not its tags);
    on a real AWS account only with *confirm*.

    Raises:
        ConfirmationRequired: the backend is AWS, something would be deleted, and *confirm* is False.
    """
    chosen = plan(config, clients, untagged)
    if config.backend == BACKEND_AWS and chosen.delete and not confirm:
        names = ", ".join(f"{f.kind} {f.name}" for f in chosen.delete)
        raise ConfirmationRequired(
            f"This deletes {len(chosen.delete)} resource(s) from AWS account {clients.account_id} "
            f"({config.region}): {names}. Call lab.down(confirm=True) to go ahead, or run `labkit down`, "
            "which asks first."
        )
    for kept in chosen.keep:
        log.warning("kept %s %s: %s", kept.kind, kept.name, kept.note)
    return execute(config, clients, chosen)


def _lookup(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise


def _pairs(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}
