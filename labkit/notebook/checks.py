"""The check cell of each step: read the resource back through the AWS APIs and say what is wrong.

Each `check_*` returns a short note, or raises `ResourceError` saying what is wrong and how to fix
it, so a broken step stops the notebook (and a test run of it).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labkit.aws import error_code
from labkit.config import BASIC_EXECUTION_POLICY_ARN, LAMBDA_HANDLER, MANAGED_POLICY_ARNS, PARTITION_KEY, TABLE_NAME
from labkit.errors import ResourceError
from labkit.lab import Lab
from labkit.notebook.display import Note, ok
from labkit.resources import functions, sns, sqs, triggers

if TYPE_CHECKING:
    from labkit.experiments.backlog import BatchRun
    from labkit.grading import Report
    from labkit.observe.journey import Journey


def check_table(lab: Lab) -> Note:
    """Step 1: the table exists, is ACTIVE, and is keyed by orderId (String) alone."""
    name = lab.config.table_name
    try:
        table = lab.clients("dynamodb").describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise ResourceError(f"Table {name} does not exist: run the cell with lab.ensure_table().") from exc
        raise
    keys = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    if keys != [(PARTITION_KEY, "HASH")] or types.get(PARTITION_KEY) != "S":
        raise ResourceError(
            f"Table {name} is keyed by {keys} ({types}); it needs the partition key {PARTITION_KEY} (String) "
            "and no sort key. Delete it and create it again."
        )
    if table["TableStatus"] != "ACTIVE":
        raise ResourceError(f"Table {name} is {table['TableStatus']}, not ACTIVE yet: wait a moment and re-run.")
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    mode = "on-demand" if billing == "PAY_PER_REQUEST" else "provisioned"
    return ok(f"table {name}: partition key {PARTITION_KEY} (String), ACTIVE, {mode}")


def check_topic(lab: Lab) -> Note:
    """Step 2: the standard topic exists."""
    arn = sns.get_topic_arn(lab.config, lab.clients)
    if arn is None:
        raise ResourceError(f"Topic {lab.config.topic_name} does not exist: run the cell with lab.ensure_topic().")
    attributes = lab.clients("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
    if attributes.get("FifoTopic") == "true":
        raise ResourceError(f"Topic {lab.config.topic_name} is FIFO; the lab needs a standard topic.")
    return ok(f"topic {lab.config.topic_name}: standard")


def _queue(lab: Lab, name: str, what: str) -> sqs.QueueInfo:
    info = sqs.get_queue(lab.clients, name)
    if info is None:
        raise ResourceError(f"The {what} {name} does not exist: run the cell with lab.ensure_queues().")
    return info


def check_queues(lab: Lab) -> Note:
    """Step 3: the DLQ, the queue's redrive policy, the subscription, and the queue policy for the topic."""
    config = lab.config
    dlq = _queue(lab, config.dlq_name, "DLQ")
    queue = _queue(lab, config.queue_name, "queue")
    attributes = lab.clients("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    if redrive.get("deadLetterTargetArn") != dlq.arn:
        raise ResourceError(
            f"Queue {queue.name} has no dead-letter queue {dlq.name}: enable it under Dead-letter queue."
        )
    if int(redrive.get("maxReceiveCount", 0)) != config.max_receive_count:
        raise ResourceError(
            f"Queue {queue.name} moves messages to the DLQ after {redrive.get('maxReceiveCount')} receives; "
            f"the lab uses {config.max_receive_count}."
        )
    topic_arn = sns.get_topic_arn(config, lab.clients)
    if topic_arn is None or sns.find_subscription(lab.clients, topic_arn, queue.arn) is None:
        raise ResourceError(f"Queue {queue.name} is not subscribed to {config.topic_name}: subscribe it.")
    if not _policy_lets_topic_send(attributes.get("Policy"), topic_arn):
        raise ResourceError(
            f"The access policy of {queue.name} does not let {config.topic_name} send messages, so SNS cannot "
            "deliver: add an Allow of sqs:SendMessage for sns.amazonaws.com with aws:SourceArn = the topic."
        )
    return ok(
        f"DLQ {dlq.name} exists",
        f"queue {queue.name} moves a message to {dlq.name} after {config.max_receive_count} receives",
        f"queue {queue.name} is subscribed to {config.topic_name}",
        f"the queue policy lets {config.topic_name} send to {queue.name}",
    )


def _policy_lets_topic_send(document: str | None, topic_arn: str) -> bool:
    for statement in json.loads(document or "{}").get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = json.dumps(statement.get("Principal", ""))
        source = json.dumps(statement.get("Condition", {}))
        if (
            statement.get("Effect") == "Allow"
            and any(a in ("sqs:SendMessage", "sqs:*", "*") for a in actions)
            and "sns.amazonaws.com" in principal
            and topic_arn in source
        ):
            return True
    return False


def check_role(lab: Lab) -> Note:
    """Step 4a: the role trusts Lambda and may write the table, read the queue and write logs."""
    client = lab.clients("iam")
    name = lab.config.role_name
    try:
        role = client.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise ResourceError(f"Role {name} does not exist: run the cell with lab.ensure_role().") from exc
        raise
    if "lambda.amazonaws.com" not in json.dumps(role["AssumeRolePolicyDocument"]):
        raise ResourceError(f"Role {name} does not trust lambda.amazonaws.com, so the function cannot use it.")
    attached = {p["PolicyArn"] for p in client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]}
    if set(MANAGED_POLICY_ARNS) <= attached:
        return ok(f"role {name}: trusted by Lambda; the seed's managed policies (broad: every table, every queue)")
    documents = [
        client.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in client.list_role_policies(RoleName=name)["PolicyNames"]
    ]
    table = _table_arn(lab)
    queue = _queue(lab, lab.config.queue_name, "queue").arn
    needs = [("dynamodb:PutItem", table), ("sqs:ReceiveMessage", queue), ("sqs:DeleteMessage", queue)]
    missing = [action for action, resource in needs if not any(_allows(d, action, resource) for d in documents)]
    if BASIC_EXECUTION_POLICY_ARN in attached and not missing:
        return ok(f"role {name}: trusted by Lambda; least privilege (this table, this queue, its own logs)")
    raise ResourceError(
        f"Role {name} lacks permissions ({', '.join(missing) or 'writing logs'}): attach the seed's policies "
        f"({', '.join(a.rsplit('/', 1)[-1] for a in MANAGED_POLICY_ARNS)}) or use role_policy='least-privilege'."
    )


def _table_arn(lab: Lab) -> str:
    return lab.clients("dynamodb").describe_table(TableName=lab.config.table_name)["Table"]["TableArn"]


def _allows(document: Any, action: str, resource: str) -> bool:
    document = json.loads(document) if isinstance(document, str) else document
    for statement in document.get("Statement", []):
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if statement.get("Effect") == "Allow" and action in actions and resource in resources:
            return True
    return False


def check_function(lab: Lab) -> Note:
    """Step 4b: the function runs lambda/code.py with the role and writes to the table."""
    config = lab.config
    settings = _function_settings(lab)
    problems = []
    if settings.get("Handler") != LAMBDA_HANDLER:
        problems.append(f"its handler is {settings.get('Handler')!r}, not {LAMBDA_HANDLER!r}")
    if not str(settings.get("Runtime", "")).startswith("python3"):
        problems.append(f"its runtime is {settings.get('Runtime')}, not Python 3")
    table = settings.get("Environment", {}).get("Variables", {}).get("TABLE_NAME", TABLE_NAME)
    if table != config.table_name:
        problems.append(f"TABLE_NAME is {table!r}, not {config.table_name!r}")
    if not settings.get("Role", "").endswith(f"/{config.role_name}"):
        problems.append(f"it runs as {settings.get('Role')}, not the role {config.role_name}")
    if problems:
        raise ResourceError(f"Function {settings['FunctionName']}: " + "; ".join(problems) + ". Redeploy it.")
    same = settings.get("CodeSha256") == functions.code_sha256(functions.build_zip())
    code = "the code of lambda/code.py" if same else "code that differs from lambda/code.py"
    return ok(f"function {settings['FunctionName']}: {settings.get('Runtime')}, {LAMBDA_HANDLER}, {code}")


def _function_settings(lab: Lab) -> dict[str, Any]:
    for name in lab.config.function_names:
        try:
            return lab.clients("lambda").get_function_configuration(FunctionName=name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
    raise ResourceError(f"Function {lab.config.function_name} does not exist: run the cell with lab.ensure_function().")


def check_trigger(lab: Lab) -> Note:
    """Step 4c: an enabled SQS trigger with the configured batch size."""
    config = lab.config
    queue = _queue(lab, config.queue_name, "queue")
    settings = _function_settings(lab)
    mapping = triggers.find_mapping(lab.clients, settings["FunctionName"], queue.arn)
    if mapping is None:
        raise ResourceError(f"No trigger connects {queue.name} to {settings['FunctionName']}: add the SQS trigger.")
    if mapping["State"] != "Enabled":
        raise ResourceError(f"The trigger from {queue.name} is {mapping['State']}: enable it.")
    if mapping["BatchSize"] != config.batch_size:
        raise ResourceError(f"The trigger's batch size is {mapping['BatchSize']}; the lab uses {config.batch_size}.")
    return ok(f"trigger {queue.name} -> {settings['FunctionName']}: enabled, batch size {mapping['BatchSize']}")


def check_removed(lab: Lab) -> Note:
    """After `lab.down()`: nothing of the pipeline is left."""
    config = lab.config
    left = [f"queue {name}" for name in (config.queue_name, config.dlq_name) if sqs.get_queue(lab.clients, name)]
    if lab.counts()["orders"] is not None:
        left.append(f"table {config.table_name}")
    if sns.get_topic_arn(config, lab.clients) is not None:
        left.append(f"topic {config.topic_name}")
    with contextlib.suppress(ResourceError):
        left.append(f"function {_function_settings(lab)['FunctionName']}")
    with contextlib.suppress(lab.clients("iam").exceptions.NoSuchEntityException):
        lab.clients("iam").get_role(RoleName=config.role_name)
        left.append(f"role {config.role_name}")
    if left:
        raise ResourceError(f"Still there after lab.down(): {', '.join(left)}. Run lab.down() again.")
    return ok("table, topic, queues, function, trigger and role are gone")


def check_dead_lettered(lab: Lab, journey: Journey) -> Note:
    """Step 6: the order failed maxReceiveCount receives in a row, then sat in the DLQ."""
    expected = tuple(range(1, lab.config.max_receive_count + 1))
    if journey.outcome != "dlq":
        raise ResourceError(f"Expected the order in {lab.config.dlq_name}, but its journey ended: {journey.final_line}")
    if journey.receive_counts != expected:
        raise ResourceError(
            f"The function received the order {len(journey.receive_counts)} times {journey.receive_counts}; "
            f"the queue's redrive policy should allow {len(expected)}. Check maxReceiveCount (notebook 03)."
        )
    return ok(
        f"order {journey.order_id} failed {len(expected)} receives: {journey.reason}",
        f"then the queue moved it to {lab.config.dlq_name}",
    )


def check_runs(lab: Lab, runs: Sequence[BatchRun]) -> Note:
    """Step 7: every run stored all its orders, larger batches needed fewer invocations, and the trigger is back."""
    lines = []
    for run in runs:
        if run.records != run.orders:
            raise ResourceError(
                f"At batch size {run.batch_size} the function logged {run.records} of {run.orders} orders: "
                "some are missing. Look at lab.counts() and the DLQ."
            )
        lines.append(f"batch size {run.batch_size}: all {run.orders} orders processed")
    by_size = sorted(runs, key=lambda run: run.batch_size)
    if any(big.invocations >= small.invocations for small, big in itertools.pairwise(by_size)):
        raise ResourceError(
            f"Larger batches did not need fewer invocations: {[(r.batch_size, r.invocations) for r in by_size]}"
        )
    lines.append("larger batches needed fewer invocations")
    return Note(f"{ok(*lines)}\n{check_trigger(lab)}")


def require_passed(report: Report) -> Note:
    """Raise ResourceError naming every failed check of a grading report; else say so."""
    if report.failed:
        lines = [f"{check_id}: {report.result(check_id).message}" for check_id in report.failed]
        raise ResourceError(f"{len(lines)} check(s) failed:\n" + "\n".join(lines))
    return ok("every check of the grader passed")
