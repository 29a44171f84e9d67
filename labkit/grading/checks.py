"""The grader's checks for steps 1 to 3: the table, the topic, the queues, the subscription and the queue policy.

A check reads the account through `Facts` (read-only calls) and returns an `Outcome` whose message says
what was found and, when it fails, how to fix it. Steps 4 and 5 live in `checks_function.py`.
"""

from __future__ import annotations

from typing import Any

from labkit.config import PARTITION_KEY
from labkit.grading.facts import Facts
from labkit.grading.lookups import FIFO_SUFFIX, Missing
from labkit.grading.policy import describe_statement, is_public, principal_services, source_arns, statement_covers
from labkit.grading.policy import statements as policy_statements
from labkit.grading.registry import Outcome, check, fail, ok
from labkit.grading.rubric import Rubric
from labkit.grading.wiring import Edge, graph, loop_text, redrive_policy

TYPE_NAMES = {"S": "String", "N": "Number", "B": "Binary"}
SNS_SERVICE = "sns.amazonaws.com"


# Step 1: the table.
@check("table.exists", 1, "DynamoDB table exists")
def table_exists(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: the DynamoDB table exists."""
    table = facts.table()
    name, status = table["TableName"], table.get("TableStatus", "?")
    if status not in ("ACTIVE", "UPDATING"):
        return fail(f"Table {name} is {status}, not ACTIVE: wait until it is ACTIVE, or create it again.")
    return ok(f"Table {name} exists ({status}).")


def key_problem(table: dict[str, Any]) -> str | None:
    """What is wrong with a table's key schema for the lab, or None if it is right."""
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    keys = {k["KeyType"]: k["AttributeName"] for k in table.get("KeySchema", [])}
    if keys == {"HASH": PARTITION_KEY} and types.get(PARTITION_KEY) == "S":
        return None
    found = [f"partition key {keys.get('HASH')} ({TYPE_NAMES.get(types.get(keys.get('HASH', ''), ''), '?')})"]
    if "RANGE" in keys:
        found.append(f"sort key {keys['RANGE']} ({TYPE_NAMES.get(types.get(keys['RANGE'], ''), '?')})")
    return " and ".join(found)


@check("table.key_schema", 1, "Partition key orderId (String), no sort key")
def table_key_schema(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: partition key orderId (String), no sort key."""
    table = facts.table()
    problem = key_problem(table)
    if problem is None:
        return ok(f"Table {table['TableName']} has partition key {PARTITION_KEY} (String) and no sort key.")
    return fail(
        f"Table {table['TableName']} has {problem}; the lab needs partition key {PARTITION_KEY} (String) and no "
        f"sort key. A key cannot be changed: delete the table and create it again with partition key "
        f"{PARTITION_KEY}, type String."
    )


# Step 2: the topic.
@check("topic.exists", 2, "SNS topic exists")
def topic_exists(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: the SNS topic exists."""
    topic = facts.topic()
    return ok(f"Topic {topic.name} exists ({topic.arn}).")


@check("topic.standard", 2, "Topic is standard, not FIFO")
def topic_standard(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: topic is standard, not FIFO."""
    topic = facts.topic()
    if topic.attributes.get("FifoTopic") == "true" or topic.name.endswith(FIFO_SUFFIX):
        return fail(
            f"Topic {topic.name} is a FIFO topic; the lab needs a standard topic named {facts.config.topic_name}. "
            "Create it with Type: Standard, subscribe the queue to it, then delete the FIFO topic."
        )
    return ok(f"Topic {topic.name} is a standard topic.")


# Step 3: the queues, the subscription and the queue policy.
@check("dlq.exists", 3, "Dead-letter queue exists")
def dlq_exists(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: dead-letter queue exists."""
    dlq = facts.dlq()
    return ok(f"Dead-letter queue {dlq.name} exists.")


@check("queue.exists", 3, "Order queue exists (standard)")
def queue_exists(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: order queue exists (standard)."""
    queue = facts.queue()
    return ok(f"Queue {queue.name} exists (standard).")


def _enable_dlq_hint(queue: str, dlq: str, count: int) -> str:
    return f"Edit {queue}: Dead-letter queue, Enabled, choose {dlq}, Maximum receives {count} (step 3)."


@check("queue.redrive_target", 3, "Failed messages go to the dead-letter queue")
def queue_redrive_target(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: failed messages go to the dead-letter queue."""
    queue = facts.queue()
    dlq_name = facts.config.dlq_name
    policy = redrive_policy(queue.attributes)
    if policy is None:
        return fail(
            f"Queue {queue.name} has no dead-letter queue, so a message that keeps failing is retried until it "
            f"expires. {_enable_dlq_hint(queue.name, dlq_name, rubric.max_receive_count)}"
        )
    target = str(policy["deadLetterTargetArn"])
    try:
        dlq = facts.dlq()
    except Missing:
        return fail(
            f"Queue {queue.name} sends failed messages to {target.rsplit(':', 1)[-1]}, but {dlq_name} does not "
            f"exist: create a standard queue named {dlq_name} first. "
            f"{_enable_dlq_hint(queue.name, dlq_name, rubric.max_receive_count)}"
        )
    if target != dlq.arn:
        loop = loop_text(graph(facts), Edge(queue.arn, target, "redrive"))
        return fail(
            f"Queue {queue.name} sends failed messages to {target.rsplit(':', 1)[-1]}{loop}, not to {dlq.name}. "
            f"{_enable_dlq_hint(queue.name, dlq.name, rubric.max_receive_count)}"
        )
    return ok(f"Queue {queue.name} moves failed messages to {dlq.name}.")


@check("queue.max_receive_count", 3, "Maximum receives before the DLQ")
def queue_max_receive_count(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: maximum receives before the DLQ."""
    queue = facts.queue()
    wanted = rubric.max_receive_count
    policy = redrive_policy(queue.attributes)
    if policy is None:
        return fail(
            f"Queue {queue.name} has no redrive policy, hence no Maximum receives. "
            f"{_enable_dlq_hint(queue.name, facts.config.dlq_name, wanted)}"
        )
    try:
        count = int(policy.get("maxReceiveCount"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return fail(f"Queue {queue.name} has an unreadable maxReceiveCount: set Maximum receives to {wanted}.")
    if count != wanted:
        return fail(
            f"Queue {queue.name} moves a message to the DLQ after {count} receives; the lab asks for {wanted}. "
            f"Edit {queue.name}: Dead-letter queue, Maximum receives {wanted}."
        )
    return ok(f"Queue {queue.name} moves a message to the DLQ after {count} receives.")


@check("subscription.exists", 3, "Topic delivers to the queue (protocol sqs)")
def subscription_exists(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: topic delivers to the queue (protocol sqs)."""
    topic = facts.topic()
    queue = facts.queue()
    subscriptions = facts.subscriptions()
    for sub in subscriptions:
        if sub.get("Protocol") == "sqs" and sub.get("Endpoint") == queue.arn:
            if not str(sub.get("SubscriptionArn", "")).startswith("arn:"):
                return fail(
                    f"The subscription of queue {queue.name} to topic {topic.name} is pending confirmation: "
                    f"subscribe from the SQS console ({queue.name}, Subscribe to Amazon SNS topic), which confirms it."
                )
            return ok(f"Topic {topic.name} delivers to queue {queue.name} (protocol sqs).")
    found = ", ".join(f"{s.get('Protocol')} to {str(s.get('Endpoint')).rsplit(':', 1)[-1]}" for s in subscriptions)
    return fail(
        f"Topic {topic.name} has no sqs subscription to queue {queue.name} "
        f"({'it has: ' + found if found else 'it has no subscriptions'}). In the SQS console open {queue.name}, "
        f"Subscribe to Amazon SNS topic, choose {topic.name} (step 3)."
    )


@check("queue.policy", 3, "Queue policy lets only this topic send")
def queue_policy(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: queue policy lets only this topic send."""
    queue = facts.queue()
    topic = facts.topic()
    fix = (
        f"Give {queue.name} an access policy statement that allows principal {SNS_SERVICE} the action "
        f"sqs:SendMessage on {queue.arn} with the condition ArnEquals aws:SourceArn = {topic.arn} (the SQS "
        "console's Subscribe to Amazon SNS topic writes such a statement)."
    )
    raw = queue.attributes.get("Policy")
    if not raw:
        return fail(f"Queue {queue.name} has no access policy, so SNS may not deliver {topic.name}'s orders. {fix}")
    statements = policy_statements(raw)
    granting = [
        (i, s)
        for i, s in enumerate(statements)
        if str(s.get("Effect", "")).lower() == "allow"
        and statement_covers(s, "sqs:SendMessage", queue.arn)
        and (SNS_SERVICE in principal_services(s) or is_public(s))
    ]
    if not granting:
        return fail(f"Queue {queue.name}'s access policy does not let SNS send messages to it. {fix}")
    for i, statement in granting:
        arns = source_arns(statement)
        if not arns:
            return fail(
                f"Queue {queue.name}'s policy {describe_statement(statement, i)} lets SNS send for any topic "
                f"(no aws:SourceArn condition). {fix}"
            )
        if any(a != topic.arn for a in arns):
            return fail(
                f"Queue {queue.name}'s policy {describe_statement(statement, i)} names source {', '.join(arns)}, "
                f"not only topic {topic.name}. {fix}"
            )
    return ok(f"Queue {queue.name} accepts sqs:SendMessage from SNS for topic {topic.name} only.")
