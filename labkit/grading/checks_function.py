"""The grader's checks for step 4 (function, role, trigger) and step 5 (the sample order, the probe)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from labkit.config import PARTITION_KEY, TABLE_NAME
from labkit.grading.checks import TYPE_NAMES, key_problem
from labkit.grading.facts import Facts
from labkit.grading.function_log import log_messages
from labkit.grading.lookups import Missing
from labkit.grading.policy import allows, principal_services, statement_covers, statements
from labkit.grading.probe import run_probe
from labkit.grading.registry import Outcome, check, fail, ok
from labkit.grading.rubric import Rubric
from labkit.lambdaerrors import message_lines, parse_errors
from labkit.lambdalog import SUCCESS_OUTCOMES, parse_record

LAMBDA_SERVICE = "lambda.amazonaws.com"

_PYTHON_RUNTIME_RE = re.compile(r"^python3\.(\d+)$")


# Step 4: the function, its role and its trigger.
@check("function.exists", 4, "Lambda function exists (the one the order queue triggers)")
def function_exists(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: the Lambda function exists under either spelling."""
    function = facts.function()
    configuration = function.configuration
    state = configuration.get("State", "Active")
    if state != "Active" or configuration.get("LastUpdateStatus") == "Failed":
        reason = configuration.get("StateReason") or configuration.get("LastUpdateStatusReason") or "no reason given"
        return fail(f"Function {function.name} is {state} ({reason}): fix it or create it again.")
    if function.name in facts.config.function_names[1:]:
        spelling = " (the assignment's spelling)"
    elif function.name != facts.config.function_name:
        spelling = f" (the function queue {facts.config.queue_name} triggers)"
    else:
        spelling = ""
    others = facts.other_functions()
    warning = None
    if others:
        warning = (
            f"Function{'s' if len(others) > 1 else ''} {', '.join(others)} also exist{'' if len(others) > 1 else 's'}; "
            f"only {function.name}, the one wired to queue {facts.config.queue_name}, is graded. Delete leftovers "
            "(Lambda console, Actions, Delete) so that no one edits the wrong copy."
        )
    return ok(f"Function {function.name}{spelling} exists and is Active.", warning)


@check("function.runtime", 4, "Runtime is Python, recent enough for code.py")
def function_runtime(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: runtime is Python, recent enough for code.py."""
    function = facts.function()
    runtime = str(function.configuration.get("Runtime") or "")
    match = _PYTHON_RUNTIME_RE.match(runtime)
    if match and int(match.group(1)) >= rubric.min_python_minor:
        return ok(f"Function {function.name} runs {runtime}.")
    found = runtime or f"a {function.configuration.get('PackageType', 'non-zip')} package without a managed runtime"
    return fail(
        f"Function {function.name} runs {found}; code.py needs Python {rubric.min_python} or newer. "
        f"Runtime settings, Edit: choose python3.{max(rubric.min_python_minor, 12)} (or newer)."
    )


@check("function.handler", 4, "Handler names the lambda_handler function")
def function_handler(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: handler names the lambda_handler function."""
    function = facts.function()
    handler = str(function.configuration.get("Handler") or "")
    module, _, name = handler.rpartition(".")
    module_ok = bool(module) and all(part.isidentifier() for part in re.split(r"[./]", module))
    if module_ok and name == rubric.handler_function:
        return ok(f"Function {function.name} has handler {handler} ({module}.py, function {name}).")
    return fail(
        f"Function {function.name} has handler {handler!r}; code.py defines {rubric.handler_function}, so the "
        f"handler must be FILE.{rubric.handler_function}, FILE being the code's file without .py: "
        f"code.{rubric.handler_function} for code.py, lambda_function.{rubric.handler_function} for the console's "
        "default file (Runtime settings, Edit, Handler)."
    )


@check("function.table_name", 4, "Function writes to this table")
def function_table_name(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: function writes to this table."""
    function = facts.function()
    variables = (function.configuration.get("Environment") or {}).get("Variables") or {}
    table = variables.get("TABLE_NAME") or TABLE_NAME
    source = "its TABLE_NAME" if variables.get("TABLE_NAME") else "TABLE_NAME unset, the handler's default"
    wanted = facts.config.table_name
    if table == wanted:
        return ok(f"Function {function.name} writes to table {table} ({source}).")
    return fail(
        f"Function {function.name} writes to table {table} ({source}), not {wanted}: set the environment "
        f"variable TABLE_NAME={wanted} (Configuration, Environment variables)."
    )


@check("role.trust", 4, "Execution role trusts lambda.amazonaws.com")
def role_trust(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: execution role trusts lambda.amazonaws.com."""
    role = facts.role()
    trust = statements(role.get("AssumeRolePolicyDocument"))
    for statement in trust:
        if (
            str(statement.get("Effect", "")).lower() == "allow"
            and statement_covers(statement, "sts:AssumeRole", None)
            and LAMBDA_SERVICE in principal_services(statement)
        ):
            return ok(f"Role {role['RoleName']} lets {LAMBDA_SERVICE} assume it.")
    services = sorted({service for s in trust for service in principal_services(s)})
    return fail(
        f"Role {role['RoleName']} does not let Lambda assume it (it trusts {', '.join(services) or 'no service'}): "
        f"edit its trust relationship to allow {LAMBDA_SERVICE} the action sts:AssumeRole."
    )


@check("role.permissions", 4, "Role may write the table and consume the queue")
def role_permissions(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: role may write the table and consume the queue."""
    role_name = facts.role()["RoleName"]
    documents = facts.role_documents()
    bodies = [document for _, document in documents]
    config = facts.config
    table_arn, queue_arn = facts.table_arn(), facts.queue_arn()
    missing = [f"{a} on table {config.table_name}" for a in rubric.table_actions if not allows(bodies, a, table_arn)]
    missing += [f"{a} on queue {config.queue_name}" for a in rubric.queue_actions if not allows(bodies, a, queue_arn)]
    log_stream = facts.arn("logs", f"log-group:/aws/lambda/{facts.function_name()}:log-stream:grader")
    no_logs = [a for a in rubric.log_actions if not allows(bodies, a, log_stream)]
    warning = (
        f"Role {role_name} may not {', '.join(no_logs)}, so the function's logs are lost: attach "
        "AWSLambdaBasicExecutionRole."
        if no_logs
        else None
    )
    held = ", ".join(label for label, _ in documents) or "no permissions policies"
    if missing:
        return fail(
            f"Role {role_name} ({held}) may not {'; '.join(missing)}. Attach AmazonDynamoDBFullAccess and "
            "AmazonSQSFullAccess as the assignment does, or allow exactly these actions on these resources in an "
            "inline policy.",
            warning,
        )
    return ok(
        f"Role {role_name} may write table {config.table_name} and consume queue {config.queue_name} ({held}).", warning
    )


@check("mapping.exists", 4, "SQS trigger from the queue to the function")
def mapping_exists(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: an SQS trigger connects the queue to the function."""
    mapping = facts.mapping()
    return ok(f"Queue {facts.queue().name} triggers function {facts.function().name} (mapping {mapping['UUID']}).")


@check("mapping.enabled", 4, "Trigger is enabled")
def mapping_enabled(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: trigger is enabled."""
    mapping = facts.mapping()
    where = f"The trigger from queue {facts.queue().name} to function {facts.function().name}"
    if mapping.get("State") == "Enabled":
        return ok(f"{where} is Enabled.")
    return fail(f"{where} is {mapping.get('State')}: enable it (Lambda console, Configuration, Triggers).")


@check("mapping.batch_size", 4, "Trigger batch size as required")
def mapping_batch_size(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: trigger batch size as required."""
    mapping = facts.mapping()
    where = f"The trigger from queue {facts.queue().name} to function {facts.function().name}"
    size = mapping.get("BatchSize")
    if size == rubric.batch_size:
        return ok(f"{where} has batch size {size}.")
    return fail(f"{where} has batch size {size}; the lab asks for {rubric.batch_size}: edit the trigger's Batch size.")


@check("queue.visibility_timeout", 4, "Queue visibility timeout covers the function timeout")
def queue_visibility_timeout(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: queue visibility timeout covers the function timeout."""
    queue = facts.queue()
    function = facts.function()
    visibility = int(queue.attributes.get("VisibilityTimeout", 30))
    timeout = int(function.configuration.get("Timeout", 3))
    recommended = rubric.recommended_visibility_factor * timeout
    if visibility < timeout:
        return fail(
            f"Queue {queue.name} has a visibility timeout of {visibility}s, shorter than function {function.name}'s "
            f"timeout of {timeout}s, so a message can be handed out again while still being processed (and AWS "
            f"refuses such a trigger). Raise the queue's visibility timeout to at least {timeout}s, {recommended}s "
            "as AWS recommends."
        )
    warning = None
    if visibility < recommended:
        warning = (
            f"AWS recommends a visibility timeout of at least {rubric.recommended_visibility_factor}x the function "
            f"timeout ({recommended}s) for queue {queue.name}, so that Lambda's own retries finish first."
        )
    return ok(
        f"Queue {queue.name}'s visibility timeout of {visibility}s covers function {function.name}'s {timeout}s.",
        warning,
    )


# Step 5: the sample order, and (unless --no-probe) a fresh order and a malformed message.
@check("order.sample", 5, "The sample order is stored with the right attributes")
def order_sample(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: the sample order is stored with the right attributes."""
    table = facts.table()
    name = table["TableName"]
    expected = rubric.sample_order
    order_id = str(expected["orderId"])
    if key_problem(table) is not None:
        return fail(
            f"The key of table {name} is not {PARTITION_KEY} (String), so order {order_id} cannot be stored: "
            "fix step 1 first."
        )
    item = (
        facts.clients("dynamodb")
        .get_item(TableName=name, Key={PARTITION_KEY: {"S": order_id}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        return fail(
            f"Table {name} holds no order {order_id}, the assignment's sample order: publishing it is the step "
            f"left. Publish it to topic {facts.config.topic_name} (`labkit publish --sample`, notebook 05, or the "
            "SNS console's Publish message with the sample's JSON), then grade again. If it was published while "
            f"the function failed, it waits in {facts.config.dlq_name}: `labkit redrive` sends it back. If it "
            f"still does not appear, read function {facts.function_name()}'s logs."
        )
    problems = order_problems(item, expected)
    if problems:
        return fail(f"Order {order_id} in table {name} is not the sample order: {'; '.join(problems)}.")
    return ok(
        f"Table {name} holds order {order_id} with the sample's userId, itemName, quantity, status and timestamp."
    )


@check("order.sample_logged", 5, "The function processed the sample order (its log says so)")
def order_sample_logged(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: the function's log holds its line for the sample order, so it came through the pipeline."""
    order_id = str(rubric.sample_order["orderId"])
    function = facts.function_name()
    since_ms = int((facts.since or 0) * 1000)
    # The order may have come through a function the queue triggered before the graded one (a draft, a copy).
    try:
        names = [function, *facts.other_functions()]
    except Missing:
        names = [function]
    messages = [message for name in names for message in log_messages(facts.clients, name, since_ms)]
    lines = [line for message in messages for line in message_lines(message)]
    records = [r for line in lines if (r := parse_record({"message": line})) and r.order_id == order_id]
    when = " since this notebook started" if facts.since else ""
    if any(r.outcome in SUCCESS_OUTCOMES for r in records):
        return ok(f"Function {function}'s log shows it took order {order_id}{when} ({records[-1].outcome}).")
    if records:
        return fail(
            f"Function {function} refused order {order_id}{when}: {records[-1].outcome} ({records[-1].reason}). "
            "Publish the sample order exactly as the assignment gives it."
        )
    errors = parse_errors(messages)
    if errors:
        return fail(
            f"Function {function}'s log has no line for order {order_id}{when}, and the function failed "
            f"{len(errors)} time(s), the last with {errors[-1].summary()}. {errors[-1].advice()} Then redeploy it "
            "and publish the sample order again (one that failed three times waits in the DLQ: `labkit redrive`)."
        )
    return fail(
        f"Function {function}'s log has no line for order {order_id}{when}: publish the sample order to topic "
        f"{facts.config.topic_name} (writing it into the table directly skips the pipeline this step tests)."
    )


def order_problems(item: dict[str, Any], expected: Any) -> list[str]:
    """How a stored item (DynamoDB JSON) differs from the expected order; status need only be non-empty."""
    problems = []
    for field in ("userId", "itemName"):
        if item.get(field) != {"S": str(expected[field])}:
            problems.append(f"{field} is {show(item.get(field))}, expected {expected[field]!r} (String)")
    quantity = item.get("quantity")
    if not isinstance(quantity, dict) or "N" not in quantity:
        problems.append(f"quantity is {show(quantity)}, expected the Number {expected['quantity']}")
    elif _decimal(quantity["N"]) != Decimal(expected["quantity"]):
        problems.append(f"quantity is {quantity['N']}, expected {expected['quantity']}")
    status = item.get("status")
    if not isinstance(status, dict) or not str(status.get("S", "")).strip():
        problems.append(f"status is {show(status)}, expected a non-empty String")
    stamp = item.get("timestamp")
    if not isinstance(stamp, dict) or _instant(stamp.get("S")) != _instant(str(expected["timestamp"])):
        problems.append(f"timestamp is {show(stamp)}, expected the instant {expected['timestamp']}")
    return problems


def show(value: Any) -> str:
    """A DynamoDB attribute value as a message shows it."""
    if not isinstance(value, dict) or len(value) != 1:
        return "missing"
    kind, raw = next(iter(value.items()))
    return f"{raw!r} ({TYPE_NAMES.get(kind, kind)})"


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@check("probe.order_stored", 5, "Probe: a freshly published order is stored", probe=True)
def probe_order_stored(facts: Facts, rubric: Rubric) -> Outcome:
    """Probe: a freshly published order is stored."""
    return facts.once("probe", lambda: run_probe(facts, rubric)).order


@check("probe.malformed_to_dlq", 5, "Probe: a malformed message reaches the DLQ", probe=True)
def probe_malformed_to_dlq(facts: Facts, rubric: Rubric) -> Outcome:
    """Probe: a malformed message reaches the DLQ."""
    return facts.once("probe", lambda: run_probe(facts, rubric)).malformed
