"""Catching up: build the steps before a notebook's own, or (for a stuck student) its own step too, on the record.

`catch_up(lab, step=N)` builds steps 1 to N-1 with the reference builders (`lab.ensure_*`), never the
step under test. `catch_up(lab, step=N, include_this=True)` builds step N as well and records that the
student did not: each resource of the step gets the tag `labkit:caught-up` (so the record survives a
kernel restart and a shared cloud), and the check cell scores that step's exercises 0 and says why.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import ClientError

from labkit.aws import error_code
from labkit.errors import ConfigError
from labkit.lab import Lab
from labkit.notebook.display import Note
from labkit.orders import SAMPLE_ORDER
from labkit.resources import functions, sns, sqs, triggers

CAUGHT_UP_TAG = "labkit:caught-up"
# Steps 1-4 build resources; step 5 publishes the sample order. Steps 6 and 7 are runs of the notebook's own.
LAST_BUILDABLE_STEP = 5


def catch_up(lab: Lab, step: int, include_this: bool = False) -> Note:
    """Build every step before *step* (idempotent: what exists is kept); says per resource "built" or "found".

    With *include_this*, step *step* too, recorded as not done by the student (its check scores 0).
    """
    if include_this and step > LAST_BUILDABLE_STEP:
        raise ConfigError(
            f"Step {step} is a run of this notebook, not something to build: the hint under the exercise names the "
            "calls, and the reference solution is in the instructor's edition."
        )
    through = min(step if include_this else step - 1, 4)
    lines = []
    if through >= 1:
        before = {label: exists() for label, exists in _resources(lab, through)}
        lab.up(through=through)
        lines = [f"  {'found' if before[label] else 'built'}  {label}" for label in before]
    if include_this:
        if step == LAST_BUILDABLE_STEP:
            from labkit.observe.journey import publish_and_track

            trip = publish_and_track(lab, SAMPLE_ORDER)
            lines.append(f"  published the sample order {SAMPLE_ORDER['orderId']}: {trip.final_line}")
        _mark(lab, step)
        lines.append(f"  recorded: step {step} was built by catch_up, not by you (its check scores 0)")
    if not lines:
        return Note(f"Step {step} needs nothing built before it.")
    steps = "Step 1" if through == 1 else f"Steps 1-{through}" if through > 1 else f"Step {step}"
    return Note(f"{steps} in place (found: it was there already; built: just now):\n" + "\n".join(lines))


def caught_up(lab: Lab, step: int) -> bool:
    """True if step *step* was built by `catch_up(include_this=True)` (a tag on its resources, or this session)."""
    if step in lab.session.setdefault("caught_up", set()):
        return True
    return any(_tags(lab, kind).get(CAUGHT_UP_TAG) for kind in _KINDS.get(step, ()))


def _mark(lab: Lab, step: int) -> None:
    lab.session.setdefault("caught_up", set()).add(step)
    for kind in _KINDS.get(step, ()):
        _tag(lab, kind)


# The resources whose tags record that a step was caught up.
_KINDS = {1: ("table",), 2: ("topic",), 3: ("queue", "dlq"), 4: ("role", "function")}


def _tag(lab: Lab, kind: str) -> None:
    config, clients = lab.config, lab.clients
    value = [{"Key": CAUGHT_UP_TAG, "Value": "true"}]
    if kind == "table":
        arn = clients("dynamodb").describe_table(TableName=config.table_name)["Table"]["TableArn"]
        clients("dynamodb").tag_resource(ResourceArn=arn, Tags=value)
    elif kind == "topic":
        clients("sns").tag_resource(ResourceArn=lab.ensure_topic().arn, Tags=value)
    elif kind in ("queue", "dlq"):
        queue = sqs.get_queue(clients, config.queue_name if kind == "queue" else config.dlq_name)
        if queue is not None:
            clients("sqs").tag_queue(QueueUrl=queue.url, Tags={CAUGHT_UP_TAG: "true"})
    elif kind == "role":
        clients("iam").tag_role(RoleName=config.role_name, Tags=value)
    elif kind == "function":
        arn = clients("lambda").get_function_configuration(FunctionName=config.function_name)["FunctionArn"]
        clients("lambda").tag_resource(Resource=arn, Tags={CAUGHT_UP_TAG: "true"})


def _tags(lab: Lab, kind: str) -> dict[str, str]:
    """The tags of the step's resource of *kind*; none when it does not exist."""
    config, clients = lab.config, lab.clients
    try:
        if kind == "table":
            arn = clients("dynamodb").describe_table(TableName=config.table_name)["Table"]["TableArn"]
            return _pairs(clients("dynamodb").list_tags_of_resource(ResourceArn=arn).get("Tags", []))
        if kind == "topic":
            topic = sns.get_topic_arn(config, clients)
            return _pairs(clients("sns").list_tags_for_resource(ResourceArn=topic)["Tags"]) if topic else {}
        if kind in ("queue", "dlq"):
            queue = sqs.get_queue(clients, config.queue_name if kind == "queue" else config.dlq_name)
            return clients("sqs").list_queue_tags(QueueUrl=queue.url).get("Tags", {}) if queue else {}
        if kind == "role":
            return _pairs(clients("iam").list_role_tags(RoleName=config.role_name)["Tags"])
        arn = clients("lambda").get_function_configuration(FunctionName=config.function_name)["FunctionArn"]
        return dict(clients("lambda").list_tags(Resource=arn).get("Tags", {}))
    except ClientError as exc:
        if error_code(exc) in ("ResourceNotFoundException", "NoSuchEntity", "NotFound"):
            return {}
        raise


def _pairs(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


def _resources(lab: Lab, through: int) -> list[tuple[str, Callable[[], bool]]]:
    """(label, does it exist?) for each resource of steps 1 to *through*, in build order."""
    config, clients = lab.config, lab.clients

    def exists(read: Callable[[], object], missing: str) -> bool:
        try:
            read()
        except ClientError as exc:
            if error_code(exc) == missing:
                return False
            raise
        return True

    def table() -> bool:
        return exists(
            lambda: clients("dynamodb").describe_table(TableName=config.table_name), "ResourceNotFoundException"
        )

    def subscription() -> bool:
        topic, queue = sns.get_topic_arn(config, clients), sqs.get_queue(clients, config.queue_name)
        return bool(topic and queue and sns.find_subscription(clients, topic, queue.arn))

    def role() -> bool:
        return exists(lambda: clients("iam").get_role(RoleName=config.role_name), "NoSuchEntity")

    def function() -> bool:
        return functions.find_function(config, clients) is not None

    def trigger() -> bool:
        queue = sqs.get_queue(clients, config.queue_name)
        return bool(queue and function() and triggers.find_mapping(clients, config.function_name, queue.arn))

    found: list[tuple[int, str, Callable[[], bool]]] = [
        (1, f"table {config.table_name}", table),
        (2, f"topic {config.topic_name}", lambda: sns.get_topic_arn(config, clients) is not None),
        (3, f"queue {config.dlq_name}", lambda: sqs.get_queue(clients, config.dlq_name) is not None),
        (3, f"queue {config.queue_name}", lambda: sqs.get_queue(clients, config.queue_name) is not None),
        (3, f"subscription {config.topic_name} -> {config.queue_name}", subscription),
        (4, f"role {config.role_name}", role),
        (4, f"function {config.function_name}", function),
        (4, f"trigger {config.queue_name} -> {config.function_name}", trigger),
    ]
    return [(label, exists) for step, label, exists in found if step <= through]
