"""Whether a CloudFormation stack tried to build the pipeline, and where it ended, for the grader's messages.

A pipeline deployed as a stack grades like one built by hand: the checks read the resources, not how
they were made. But when they are missing, "create it first" is the wrong advice for a stack that
rolled back: the stack's events say what failed and why. A stack is this pipeline's when one of its
CREATE_IN_PROGRESS events carries one of the pipeline's names in its ResourceProperties (the resolved
properties CloudFormation records; https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html).
Read-only: ListStacks and DescribeStackEvents.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from labkit.aws import paginate
from labkit.config import Config
from labkit.grading.report import CheckResult
from labkit.session import Clients

log = logging.getLogger(__name__)
# The checks that fail when a resource is missing, which a stack may explain.
EXISTENCE_CHECKS = frozenset({"table.exists", "topic.exists", "dlq.exists", "queue.exists", "function.exists"})
# How many of the newest stacks are read: a class account may hold many.
MAX_STACKS = 20


@dataclass(frozen=True)
class StackStory:
    """A stack that tried to build the pipeline: its name, status, reason, and what failed with why."""

    name: str
    status: str
    reason: str
    failures: tuple[tuple[str, str, str], ...]

    def sentence(self) -> str:
        """What the student reads after "X does not exist"."""
        if self.status.endswith("_IN_PROGRESS"):
            return (
                f"CloudFormation stack {self.name} is still {self.status}: wait for it to finish "
                f"(aws cloudformation describe-stacks --stack-name {self.name})."
            )
        failed = "; ".join(f"{logical} ({kind}) failed: {reason}" for logical, kind, reason in self.failures)
        return (
            f"CloudFormation stack {self.name} tried to create it and is {self.status}"
            f"{': ' + failed if failed else ''}. Fix the template, delete the stack "
            f"(aws cloudformation delete-stack --stack-name {self.name}) and deploy it again."
        )


def stack_story(config: Config, clients: Clients) -> StackStory | None:
    """The newest live stack that tried to make one of *config*'s resources, unless it completed; else None."""
    names = {config.table_name, config.topic_name, config.queue_name, config.dlq_name, *config.function_names}
    cfn = clients("cloudformation")
    summaries = [s for s in paginate(cfn, "list_stacks", "StackSummaries") if s["StackStatus"] != "DELETE_COMPLETE"]
    summaries.sort(key=lambda s: s["CreationTime"], reverse=True)
    for summary in summaries[:MAX_STACKS]:
        events = list(paginate(cfn, "describe_stack_events", "StackEvents", StackName=summary["StackId"]))
        if not any(_names_in(event.get("ResourceProperties")) & names for event in events):
            continue
        if summary["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            return None
        failures = tuple(
            (e["LogicalResourceId"], e["ResourceType"], e.get("ResourceStatusReason", ""))
            for e in reversed(events)
            if e["ResourceStatus"] == "CREATE_FAILED" and e["ResourceType"] != "AWS::CloudFormation::Stack"
        )
        return StackStory(summary["StackName"], summary["StackStatus"], summary.get("StackStatusReason", ""), failures)
    return None


def _names_in(properties: str | None) -> set[str]:
    if not properties:
        return set()
    try:
        return set(_strings(json.loads(properties)))
    except ValueError:
        return set()


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def explain_missing(results: tuple[CheckResult, ...], config: Config, clients: Clients) -> tuple[CheckResult, ...]:
    """*results* with a failed stack's story added to each failed existence check (none added if no stack tried)."""
    if not any(r.id in EXISTENCE_CHECKS and not r.passed for r in results):
        return results
    try:
        story = stack_story(config, clients)
    except (ClientError, BotoCoreError) as exc:
        # Not allowed to read CloudFormation, or no such service: the checks' own messages stand.
        log.debug("could not read the stacks: %s", exc)
        return results
    if story is None:
        return results
    return tuple(
        replace(r, message=f"{r.message} {story.sentence()}") if r.id in EXISTENCE_CHECKS and not r.passed else r
        for r in results
    )
