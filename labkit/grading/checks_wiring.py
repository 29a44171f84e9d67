"""The grader's checks of the wiring as a whole: the graph of what delivers to what, around the dead-letter queue.

Edges: topic subscriptions (topic -> queue or function), redrive policies (queue -> its DLQ) and event source
mappings (queue -> function), and the graded function's table (function -> table). A function's own dead-letter queue is left out: it serves asynchronous
invocations only, and an SQS trigger invokes synchronously, so no order takes that way.
The lab's graph is OrderTopic -> OrderQueue -> OrderProcessor -> Orders, with OrderQueue -> OrderDLQ as the
only way into the DLQ and nothing out of it: a failed order waits there for a person to look at it
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
Each check flags, in the step that made it, another way in, a way out, or a loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from labkit.config import TABLE_NAME
from labkit.grading.checks import redrive_policy
from labkit.grading.facts import Facts, Missing, function_name_of
from labkit.grading.registry import Outcome, check, fail, ok
from labkit.grading.rubric import Rubric


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
    for source in {q.arn: q for q in queues}.values():
        policy = redrive_policy(source.attributes)
        if policy is not None:
            edges.append(Edge(source.arn, str(policy["deadLetterTargetArn"]), "redrive"))
    for mapping in mappings:
        edges.append(Edge(mapping["EventSourceArn"], _unqualified(mapping.get("FunctionArn", "")), "trigger"))
    try:
        function = facts.function()
    except Missing:
        return edges
    variables = (function.configuration.get("Environment") or {}).get("Variables") or {}
    table = facts.arn("dynamodb", f"table/{variables.get('TABLE_NAME') or TABLE_NAME}")
    edges.append(Edge(_unqualified(function.configuration["FunctionArn"]), table, "writes"))
    return edges


def _endpoint_arn(subscription: dict[str, str]) -> str:
    return (
        _unqualified(subscription["Endpoint"]) if subscription.get("Protocol") == "lambda" else subscription["Endpoint"]
    )


def _unqualified(function_arn: str) -> str:
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


def _loop_text(edges: list[Edge], edge: Edge) -> str:
    loop = loop_through(edges, edge)
    return f", a loop ({' -> '.join(loop)}) in which a failing order never rests" if loop else ""


# Step 3: what the queues and subscriptions send into and out of the dead-letter queue.
@check("dlq.inputs", 3, "Only the order queue's redrive policy sends messages to the DLQ")
def dlq_inputs(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: nothing but the order queue's redrive policy delivers into the dead-letter queue."""
    dlq = facts.dlq()  # without a DLQ its wiring cannot be right: Missing fails the check, saying to build it
    queue = facts.config.queue_name
    edges = graph(facts)
    problems = []
    for edge in (e for e in edges if e.target == dlq.arn and e.kind == "subscription"):
        problems.append(
            f"topic {name_of(edge.source)} delivers straight to {dlq.name}{_loop_text(edges, edge)}, so every "
            f"order lands there untried (SNS console, Subscriptions: delete the subscription of {dlq.name} to "
            f"{name_of(edge.source)}; subscribe {queue} instead)"
        )
    for edge in (e for e in edges if e.target == dlq.arn and e.kind == "redrive" and e.source != facts.queue_arn()):
        problems.append(
            f"queue {name_of(edge.source)} also sends its failed messages to {dlq.name}{_loop_text(edges, edge)}, "
            f"so the DLQ mixes in messages that are not failed orders (SQS console: edit {name_of(edge.source)}, "
            f"Dead-letter queue, Disabled, or give it a DLQ of its own)"
        )
    if problems:
        return fail(
            f"Dead-letter queue {dlq.name} is fed by more than {queue}'s redrive policy: {'; '.join(problems)}."
        )
    return ok(f"Only {queue}'s redrive policy sends messages to {dlq.name}.")


@check("dlq.outputs", 3, "The DLQ keeps its messages (no redrive policy of its own)")
def dlq_outputs(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: the dead-letter queue does not pass its messages on by itself."""
    dlq = facts.dlq()  # without a DLQ its wiring cannot be right: Missing fails the check, saying to build it
    edges = graph(facts)
    out = [e for e in edges if e.source == dlq.arn and e.kind == "redrive"]
    if not out:
        return ok(f"Dead-letter queue {dlq.name} has no redrive policy: failed orders wait there to be looked at.")
    edge = out[0]
    return fail(
        f"Dead-letter queue {dlq.name} has a redrive policy to {name_of(edge.target)}{_loop_text(edges, edge)}: "
        f"failed orders move on after a few receives instead of waiting to be looked at. SQS console: edit "
        f"{dlq.name}, Dead-letter queue, Disabled; once the cause is fixed, send them back with Start DLQ redrive."
    )


# Step 4: what the triggers and the function's settings take out of the DLQ or put into it.
@check("dlq.triggers", 4, "No trigger takes messages out of the DLQ")
def dlq_triggers(facts: Facts, rubric: Rubric) -> Outcome:
    """Check: no event source mapping reads the dead-letter queue."""
    dlq = facts.dlq()  # without a DLQ its wiring cannot be right: Missing fails the check, saying to build it
    mappings = facts.dlq_mappings()
    if not mappings:
        return ok(f"No trigger reads dead-letter queue {dlq.name}.")
    edges = graph(facts)
    found = []
    for mapping in mappings:
        function = function_name_of(mapping.get("FunctionArn", ""))
        edge = Edge(dlq.arn, _unqualified(mapping.get("FunctionArn", "")), "trigger")
        found.append(
            f"function {function} (trigger {mapping.get('UUID')}, {mapping.get('State')}){_loop_text(edges, edge)}"
        )
    return fail(
        f"Dead-letter queue {dlq.name} triggers {'; '.join(found)}: failed orders are taken out of it automatically "
        f"and retried with nothing fixed, or lost. Lambda console: open the function, Configuration, Triggers, "
        f"select the {dlq.name} trigger, Delete."
    )
