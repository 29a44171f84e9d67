"""The probe: with the student's permission, send one order and one malformed message through the pipeline.

It verifies the order is stored and the malformed message reaches the DLQ, then removes both (the item
from the table, the message from the DLQ, found by a token in its body), so the student's data is left
as it was. It never runs on a pipeline whose path is incomplete, where a probe would only pile up.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code
from labkit.config import BACKEND_AWS, PARTITION_KEY
from labkit.grading.checks import key_problem
from labkit.grading.facts import Facts
from labkit.grading.function_log import log_messages, refusals, summarise
from labkit.grading.lookups import Missing
from labkit.grading.registry import Outcome, fail, ok
from labkit.grading.rubric import Rubric
from labkit.grading.wiring import redrive_policy
from labkit.lambdaerrors import parse_errors

log = logging.getLogger(__name__)

# A DLQ scan hides the messages it has looked at for this long, then shows them again at once.
SCAN_HIDE_S = 20
MAX_SCAN_BATCHES = 100


@dataclass(frozen=True)
class ProbeResult:
    """The two probe checks' outcomes."""

    order: Outcome
    malformed: Outcome
    # The probe order got past the topic: stored, in the DLQ, or named in the function's log.
    delivered: bool = False


def run_probe(facts: Facts, rubric: Rubric) -> ProbeResult:
    """Publish a probe order and a malformed message, wait for both, verify, and clean up."""
    missing = blockers(facts, ("table", "topic", "queue", "subscription", "function", "mapping"))
    if missing:
        message = f"Probe not run, as nothing could get through: {'; '.join(b.rstrip('.') for b in missing)}."
        return ProbeResult(fail(message), fail(message))
    return _Probe(facts, rubric).run()


def blockers(facts: Facts, parts: tuple[str, ...]) -> list[str]:
    problems = []
    lookups = {
        "table": lambda: key_problem(facts.table()) and f"table {facts.config.table_name} has the wrong key",
        "topic": facts.topic,
        "queue": facts.queue,
        "subscription": lambda: (
            not any(
                s.get("Protocol") == "sqs" and s.get("Endpoint") == facts.queue().arn for s in facts.subscriptions()
            )
            and f"topic {facts.topic().name} does not deliver to queue {facts.queue().name}"
        ),
        "function": facts.function,
        "mapping": lambda: (
            facts.mapping().get("State") != "Enabled"
            and f"the trigger to function {facts.function().name} is not enabled"
        ),
        "dlq": lambda: (
            (redrive_policy(facts.queue().attributes) or {}).get("deadLetterTargetArn") != facts.dlq().arn
            and f"queue {facts.queue().name} does not send failed messages to {facts.dlq().name}"
        ),
    }
    for part in parts:
        try:
            problem = lookups[part]()
        except Missing as exc:
            problem = str(exc)
        if isinstance(problem, str) and problem and problem not in problems:
            problems.append(problem)
    return problems


class _Probe:
    def __init__(self, facts: Facts, rubric: Rubric) -> None:
        self.facts = facts
        self.rubric = rubric
        self.token = uuid.uuid4().hex
        self.order_id = f"PROBE-{self.token}"
        self.malformed_body = f"labkit grade probe {self.token}: this is not an order {{"
        self.sqs = facts.clients("sqs")
        self.ddb = facts.clients("dynamodb")
        self.aws = facts.config.backend == BACKEND_AWS
        self.removed: set[str] = set()
        self.split_ms: int | None = None
        self.delivered = False

    def run(self) -> ProbeResult:
        facts = self.facts
        queue, function, table = facts.queue(), facts.function(), facts.table()["TableName"]
        dlq_blockers = blockers(facts, ("dlq",))
        # Each message goes out only when a check of this run needs it: a notebook's check cell grades one step.
        send_order = facts.grades("probe.order_stored") or facts.grades("probe.delivery")
        skip_malformed = bool(dlq_blockers) or not facts.grades("probe.malformed_to_dlq")
        visibility = int(queue.attributes.get("VisibilityTimeout", 30))
        timeout = int(function.configuration.get("Timeout", 3))
        receives = self.rubric.max_receive_count if dlq_blockers else self._max_receives(queue.attributes)
        # A poison message leaves the queue after maxReceiveCount visibility timeouts; allow that plus margin.
        budget = receives * visibility + timeout + self.rubric.probe_margin_seconds
        sns = facts.clients("sns")
        started = time.monotonic()
        started_ms = int(time.time() * 1000)
        deadline = started + budget
        stored_after: float | None = None
        dlq_after: float | None = None
        # The malformed message goes out once the order's first try is over, so that the function's log,
        # up to then, tells what happened to the order alone.
        malformed_sent: float | None = None
        dlq_before = 0 if skip_malformed else self._depth(facts.dlq().url)
        notes: list[str] = []
        try:
            if send_order:
                log.info("probe %s: publishing to %s", self.token, facts.topic().name)
                sns.publish(TopicArn=facts.topic().arn, Message=json.dumps(self._order()))
            while time.monotonic() < deadline:
                if send_order and stored_after is None and self._stored(table):
                    stored_after = time.monotonic() - started
                if (
                    malformed_sent is None
                    and not skip_malformed
                    and (
                        not send_order
                        or stored_after is not None
                        or time.monotonic() - started > timeout + visibility
                        or self._function_failed(started_ms)
                    )
                ):
                    malformed_sent = time.monotonic()
                    self.split_ms = int(time.time() * 1000)
                    sns.publish(TopicArn=facts.topic().arn, Message=self.malformed_body)
                    deadline = max(deadline, malformed_sent + budget)
                order_done = not send_order or stored_after is not None or "order" in self.removed
                if not skip_malformed and not (order_done and dlq_after is not None):
                    if self._depth(facts.dlq().url) > dlq_before:
                        # Something arrived in the DLQ: only now scan it, so the student's messages are rarely touched.
                        if "malformed" in self._take_probe_messages(facts.dlq().url) and dlq_after is None:
                            dlq_after = time.monotonic() - (malformed_sent or started)
                        dlq_before = self._depth(facts.dlq().url)
                # The probe order in the DLQ failed every receive: it will never be stored, so stop waiting for it.
                order_done = not send_order or stored_after is not None or "order" in self.removed
                if order_done and (skip_malformed or dlq_after is not None):
                    break
                time.sleep(2.0 if self.aws else 0.1)
        finally:
            notes = self._clean_up(table, skip_malformed, stored_after is not None or not send_order)
        order = self._order_outcome(stored_after, budget, table, queue.name, notes, started_ms)
        self.delivered = stored_after is not None or "order" in self.removed or self._order_logged(started_ms)
        if dlq_blockers:
            malformed = fail(f"Malformed probe message not sent: {'; '.join(b.rstrip('.') for b in dlq_blockers)}.")
        elif dlq_after is not None:
            malformed = ok(
                f"A malformed message published to {facts.topic().name} reached {facts.dlq().name} after "
                f"{dlq_after:.1f}s (then removed from it).",
                "; ".join(notes) or None,
            )
        else:
            malformed = fail(
                f"A malformed message published to {facts.topic().name} did not reach {facts.dlq().name} within "
                f"{budget:.0f}s: check that the function fails on it and that queue {queue.name} moves it to "
                f"{facts.dlq().name} after {receives} receives.",
                "; ".join(notes) or None,
            )
        return ProbeResult(order, malformed, self.delivered)

    def _order_logged(self, since_ms: int) -> bool:
        """True if the function's log names the probe order: it was delivered, whatever the function did with it."""
        try:
            return any(
                self.order_id in line for line in log_messages(self.facts.clients, self.facts.function().name, since_ms)
            )
        except ClientError:
            return False

    def _order(self) -> dict[str, Any]:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "orderId": self.order_id,
            "userId": "PROBE",
            "itemName": "labkit grade probe",
            "quantity": 1,
            "status": "probe",
            "timestamp": stamp,
        }

    def _order_outcome(
        self, stored_after: float | None, budget: float, table: str, queue: str, notes: list[str], since_ms: int
    ) -> Outcome:
        warning = "; ".join(notes) or None
        if stored_after is None:
            where = (
                f"it reached dead-letter queue {self.facts.dlq().name} after failing every receive"
                if "order" in self.removed
                else f"it was not stored within {budget:.0f}s"
            )
            return fail(
                f"A probe order ({self.order_id}) published to {self.facts.topic().name} never reached table "
                f"{table}: {where}. {self._why(since_ms, queue)}",
                warning,
            )
        return ok(
            f"A probe order published to {self.facts.topic().name} was stored in table {table} after "
            f"{stored_after:.1f}s (then deleted).",
            warning,
        )

    def _function_failed(self, since_ms: int) -> bool:
        """True once the function's log shows an error since *since_ms* (an unreadable log shows none)."""
        try:
            return bool(parse_errors(log_messages(self.facts.clients, self.facts.function().name, since_ms)))
        except ClientError:
            return False

    def _why(self, since_ms: int, queue: str) -> str:
        """What the function's log group says went wrong with the probe order, with the fix to look for."""
        function = self.facts.function().name
        group = f"/aws/lambda/{function}"
        try:
            messages = log_messages(self.facts.clients, function, since_ms)
            # Before the malformed message went out, every failure was the order's.
            alone = log_messages(self.facts.clients, function, since_ms, self.split_ms) if self.split_ms else []
        except ClientError as exc:
            return f"Its log group {group} could not be read ({error_code(exc)}); read it in the CloudWatch console."
        refused = refusals(messages, self.order_id)
        if refused:
            return f"Function {function} logged for it: {refused[-1]}."
        errors = parse_errors(alone) or parse_errors(messages)
        if errors:
            return (
                f"Function {function} failed: {summarise(errors)}, as its log group {group} shows. Fix the code, "
                "Deploy, and test it with a message like the sample order (Lambda console, Test)."
            )
        return (
            f"Function {function}'s log group {group} shows no error since the probe was published: check that "
            f"the trigger from queue {queue} is enabled and that the queue holds no stuck messages."
        )

    def _max_receives(self, attributes: dict[str, str]) -> int:
        try:
            return int(json.loads(attributes.get("RedrivePolicy") or "{}").get("maxReceiveCount"))
        except (TypeError, ValueError):
            return self.rubric.max_receive_count

    def _stored(self, table: str) -> bool:
        key = {PARTITION_KEY: {"S": self.order_id}}
        return "Item" in self.ddb.get_item(TableName=table, Key=key, ConsistentRead=True)

    def _depth(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def _take_probe_messages(self, url: str) -> set[str]:
        """Delete this probe's messages from a queue; returns which kinds were found ("order", "malformed")."""
        found: set[str] = set()
        hidden: list[dict[str, Any]] = []
        try:
            for _ in range(MAX_SCAN_BATCHES):
                messages = self.sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=SCAN_HIDE_S,
                    WaitTimeSeconds=1 if self.aws else 0,
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    body = message.get("Body", "")
                    if self.token in body:
                        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                        found.add("order" if self.order_id in body else "malformed")
                        self.removed |= found
                    else:
                        hidden.append(message)
        finally:
            self._show_again(url, hidden)
        return found

    def _show_again(self, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)

    def _clean_up(self, table: str, skip_malformed: bool, stored: bool) -> list[str]:
        """Remove what the probe added; returns notes on anything that could not be removed (yet)."""
        self.ddb.delete_item(TableName=table, Key={PARTITION_KEY: {"S": self.order_id}})
        order_astray = not stored and "order" not in self.removed
        malformed_astray = not skip_malformed and "malformed" not in self.removed
        if order_astray or malformed_astray:
            if not skip_malformed:
                self._take_probe_messages(self.facts.dlq().url)
            self._take_probe_messages(self.facts.queue().url)
        pending = []
        if malformed_astray and "malformed" not in self.removed:
            pending.append("malformed message")
        if order_astray and "order" not in self.removed:
            pending.append(f"order {self.order_id}")
        if pending:
            return [
                f"the probe's {' and '.join(pending)} may still be on its way; its body holds {self.token}, "
                "and a late order can be deleted by that orderId"
            ]
        return []
