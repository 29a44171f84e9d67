"""The wiring as a graph: what delivers to what, read from the account, and the loops in it.

Edges: topic subscriptions (topic -> queue or function), redrive policies (queue -> its DLQ, followed from
queue to queue), event source mappings (queue -> function) and the graded function's table (function -> table).
A function's own dead-letter queue is left out: it serves asynchronous invocations only, and an SQS trigger
invokes synchronously, so no order takes that way.
The lab's graph is OrderTopic -> OrderQueue -> OrderProcessor -> Orders, with OrderQueue -> OrderDLQ as the
only way into the DLQ and nothing out of it: a failed order waits there for a person to look at it
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
The checks in checks_wiring.py flag, in the step that made it, another way in, a way out, or a loop.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from labkit.config import TABLE_NAME
from labkit.grading.facts import Facts, function_name_of
from labkit.grading.lookups import Missing

MAX_QUEUES = 20  # how far a chain of redrive policies is followed


@dataclass(frozen=True)
class Edge:
    """One delivery: from a resource (ARN) to another, and what makes it (for messages and fixes)."""

    source: str
    target: str
    kind: str  # subscription, redrive, trigger, writes


def name_of(resource_arn: str) -> str:
    """The name in an ARN (a function's, a queue's or a topic's)."""
    if ":function:" in resource_arn:
        return function_name_of(resource_arn)
    return resource_arn.rsplit(":", 1)[-1]


def graph(facts: Facts) -> list[Edge]:
    """Every delivery that touches the lab's queues, topic or function, as far as the grader can read it."""
    return facts.once("graph", lambda: _graph(facts))


def _graph(facts: Facts) -> list[Edge]:
    edges = [
        Edge(s["TopicArn"], _endpoint_arn(s), "subscription")
        for s in facts.all_subscriptions()
        if s.get("Protocol") in ("sqs", "lambda") and s.get("Endpoint")
    ]
    queues, mappings = [], []
    for lookup, sources, readers in (
        (facts.queue, lambda: [], facts.queue_mappings),
        (facts.dlq, facts.dlq_sources, facts.dlq_mappings),
    ):
        try:  # a missing queue has no edges; its own check says so
            queues += [lookup(), *sources()]
            mappings += readers()
        except Missing:
            continue
    # Follow redrive policies from queue to queue, so that a chain back to where it started shows as a loop.
    todo, seen = deque(queues), {q.arn for q in queues}
    while todo and len(seen) <= MAX_QUEUES:
        source = todo.popleft()
        policy = redrive_policy(source.attributes)
        if policy is None:
            continue
        target = str(policy["deadLetterTargetArn"])
        edges.append(Edge(source.arn, target, "redrive"))
        if target not in seen:
            seen.add(target)
            found = facts.queue_by_arn(target)
            if found is not None:
                todo.append(found)
    for mapping in mappings:
        edges.append(Edge(mapping["EventSourceArn"], unqualified(mapping.get("FunctionArn", "")), "trigger"))
    try:
        function = facts.function()
    except Missing:
        return edges
    variables = (function.configuration.get("Environment") or {}).get("Variables") or {}
    table = facts.arn("dynamodb", f"table/{variables.get('TABLE_NAME') or TABLE_NAME}")
    edges.append(Edge(unqualified(function.configuration["FunctionArn"]), table, "writes"))
    return edges


def _endpoint_arn(subscription: dict[str, str]) -> str:
    return (
        unqualified(subscription["Endpoint"]) if subscription.get("Protocol") == "lambda" else subscription["Endpoint"]
    )


def unqualified(function_arn: str) -> str:
    # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]: a version or alias is the same function here.
    return ":".join(function_arn.split(":")[:7])


def loop_through(edges: list[Edge], edge: Edge) -> list[str] | None:
    """The names along a loop that *edge* closes (back from its target to its source), or None."""
    previous: dict[str, str | None] = {edge.target: None}
    todo = deque([edge.target])
    while todo:
        node = todo.popleft()
        if node == edge.source:
            path = [node]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])  # type: ignore[arg-type]
            return [name_of(edge.source), *(name_of(n) for n in reversed(path))]
        for nxt in (e.target for e in edges if e.source == node):
            if nxt not in previous:
                previous[nxt] = node
                todo.append(nxt)
    return None


def loop_text(edges: list[Edge], edge: Edge) -> str:
    loop = loop_through(edges, edge)
    return f", a loop ({' -> '.join(loop)}) in which a failing order never rests" if loop else ""


def redrive_policy(attributes: dict[str, str]) -> dict[str, Any] | None:
    """A queue's redrive policy, or None if it has none (or an unreadable one)."""
    raw = attributes.get("RedrivePolicy")
    if not raw:
        return None
    try:
        policy = json.loads(raw)
    except ValueError:
        return None
    return policy if isinstance(policy, dict) and policy.get("deadLetterTargetArn") else None
