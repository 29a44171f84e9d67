"""The grader's behaviour checks of steps 3 and 4: what the topic and the function really do with a message.

Reading the configuration says what should happen; these make it happen once, with a message of the
grader's own (a token in its body, an orderId of its own), and remove that message again, so a check
passes only when the step works now:
- `probe.delivery`: a message published to the topic arrives in the queue. Where a trigger empties the
  queue, the probe order (`probe.py`) is the evidence: it got past the topic if it was stored, reached
  the DLQ or was logged by the function.
- `function.invoke`: the function, invoked as the SQS trigger invokes it (an SQS record holding the SNS
  envelope), stores the order; the Lambda console's Test button does the same.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from botocore.exceptions import ClientError

from labkit import events
from labkit.config import BACKEND_AWS, PARTITION_KEY
from labkit.grading.checks_function import order_problems
from labkit.grading.facts import Facts
from labkit.grading.lookups import Missing
from labkit.grading.probe import SCAN_HIDE_S, blockers, run_probe
from labkit.grading.registry import Outcome, check, fail, ok
from labkit.grading.rubric import Rubric
from labkit.lambdaerrors import error_from_payload, parse_errors
from labkit.lambdalog import parse_record

# SNS hands a message to SQS within a second or two; allow more on AWS, where the queue is read remotely.
DELIVERY_WAIT_S = {True: 20.0, False: 5.0}


@check("probe.delivery", 3, "Probe: a message published to the topic reaches the queue", probe=True)
def probe_delivery(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: a message published to the topic arrives in the order queue."""
    missing = blockers(facts, ("topic", "queue", "subscription"))
    if missing:
        return fail(f"Probe not run, as nothing could get through: {'; '.join(b.rstrip('.') for b in missing)}.")
    topic, queue = facts.topic(), facts.queue()
    if any(m.get("State") == "Enabled" for m in facts.queue_mappings()):
        # A trigger takes whatever arrives: the probe order is the evidence.
        if facts.once("probe", lambda: run_probe(facts, rubric)).delivered:
            return ok(f"The probe order published to {topic.name} reached queue {queue.name} (its trigger took it).")
        return fail(
            f"The probe order published to {topic.name} never reached queue {queue.name}. {_why_not(queue.name)}"
        )
    waited = _Delivery(facts).run()
    if waited is None:
        wait = DELIVERY_WAIT_S[facts.config.backend == BACKEND_AWS]
        return fail(
            f"A message published to {topic.name} did not reach queue {queue.name} within {wait:.0f}s. "
            f"{_why_not(queue.name)}"
        )
    return ok(f"A message published to {topic.name} reached queue {queue.name} after {waited:.1f}s (then removed).")


def _why_not(queue: str) -> str:
    return (
        f"SNS delivers to a queue only through a confirmed subscription, and only if the queue's access policy lets "
        f"sns.amazonaws.com send for this topic (aws:SourceArn): otherwise it drops the message and counts it in the "
        f"topic's NumberOfNotificationsFailed metric. Look at {queue}'s access policy (queue.policy)."
    )


class _Delivery:
    """Publish a token to the topic and take it out of the queue again; the student's messages stay."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.sqs = facts.clients("sqs")
        self.token = f"labkit grade delivery probe {uuid.uuid4().hex}"

    def run(self) -> float | None:
        """Seconds until the token arrived, or None if it did not within the wait."""
        facts = self.facts
        aws = facts.config.backend == BACKEND_AWS
        started = time.monotonic()
        facts.clients("sns").publish(TopicArn=facts.topic().arn, Message=self.token)
        seen: list[dict[str, Any]] = []
        try:
            while time.monotonic() - started < DELIVERY_WAIT_S[aws]:
                messages = self.sqs.receive_message(
                    QueueUrl=facts.queue().url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=SCAN_HIDE_S,
                    WaitTimeSeconds=1 if aws else 0,
                ).get("Messages", [])
                for message in messages:
                    if self.token in message.get("Body", ""):
                        self.sqs.delete_message(QueueUrl=facts.queue().url, ReceiptHandle=message["ReceiptHandle"])
                        return time.monotonic() - started
                    seen.append(message)
                if not messages:
                    time.sleep(0.5 if aws else 0.05)
        finally:
            self._show_again(seen)
        return None

    def _show_again(self, messages: list[dict[str, Any]]) -> None:
        url = self.facts.queue().url
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


@check("function.invoke", 4, "Invoked with an SQS event, the function stores the order", probe=True)
def function_invoke(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: the function, given an order as the SQS trigger gives it, stores it."""
    function = facts.function()
    table = facts.table()["TableName"]
    topic_arn = _or_expected(lambda: facts.topic().arn, facts.arn("sns", facts.config.topic_name))
    queue_arn = _or_expected(lambda: facts.queue().arn, facts.arn("sqs", facts.config.queue_name))
    order = events.fresh_order("PROBE")
    event = events.sqs_event(order, topic_arn, queue_arn)
    ddb = facts.clients("dynamodb")
    key = {PARTITION_KEY: {"S": order["orderId"]}}
    said = f"Invoked with an SQS event holding order {order['orderId']} (as the trigger delivers it), function {function.name}"
    try:
        reply = facts.clients("lambda").invoke(FunctionName=function.name, Payload=json.dumps(event), LogType="Tail")
        payload = _payload(reply)
        tail = base64.b64decode(reply.get("LogResult", "")).decode("utf-8", "replace")
        if reply.get("FunctionError"):
            logged = parse_errors(tail.splitlines())
            error = error_from_payload(payload) or (logged[-1] if logged else None)
            if error is None:
                return fail(f"{said} failed: {payload}.")
            return fail(f"{said} failed with {error.summary()}. {error.advice()}")
        failed = payload.get("batchItemFailures") if isinstance(payload, dict) else None
        if failed:
            reasons = [r.reason for line in tail.splitlines() if (r := parse_record({"message": line})) and r.reason]
            why = f": {reasons[-1]}" if reasons else ""
            return fail(f"{said} reported the record as failed{why}. Its log has the whole story.")
        item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return fail(
                f"{said} returned no error but stored nothing in table {table}: does it write to TABLE_NAME "
                f"(function.table_name)?"
            )
        problems = order_problems(item, order)
        if problems:
            return fail(f"{said} stored it in table {table}, but {'; '.join(problems)}.")
        return ok(f"{said} stored it in table {table} with every field as sent (then deleted).")
    finally:
        try:
            ddb.delete_item(TableName=table, Key=key)
        except ClientError:
            pass  # the table check says why it cannot be written


def _or_expected(read: Any, expected: str) -> str:
    try:
        return str(read())
    except Missing:
        return expected


def _payload(reply: dict[str, Any]) -> Any:
    raw = reply["Payload"].read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")
