"""The grader's checks of the wiring as a whole, around the dead-letter queue (the graph is in wiring.py).

The only way into OrderDLQ is OrderQueue's redrive policy, and nothing takes messages out of it by itself:
a failed order waits there for a person to look at it
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
"""

from __future__ import annotations

from labkit.grading.facts import Facts, function_name_of
from labkit.grading.registry import Outcome, check, fail, ok
from labkit.grading.rubric import Rubric
from labkit.grading.wiring import Edge, graph, loop_text, name_of, unqualified


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
            f"topic {name_of(edge.source)} delivers straight to {dlq.name}{loop_text(edges, edge)}, so every "
            f"order lands there untried (SNS console, Subscriptions: delete the subscription of {dlq.name} to "
            f"{name_of(edge.source)}; subscribe {queue} instead)"
        )
    for edge in (e for e in edges if e.target == dlq.arn and e.kind == "redrive" and e.source != facts.queue_arn()):
        problems.append(
            f"queue {name_of(edge.source)} also sends its failed messages to {dlq.name}{loop_text(edges, edge)}, "
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
        f"Dead-letter queue {dlq.name} has a redrive policy to {name_of(edge.target)}{loop_text(edges, edge)}: "
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
        # Wired right means the trigger reads the order queue: with no trigger at all there is no wiring to credit.
        mapping = facts.mapping()
        return ok(
            f"No trigger reads dead-letter queue {dlq.name}; the function's trigger reads {facts.queue().name} "
            f"(mapping {mapping.get('UUID')})."
        )
    edges = graph(facts)
    found = []
    for mapping in mappings:
        function = function_name_of(mapping.get("FunctionArn", ""))
        edge = Edge(dlq.arn, unqualified(mapping.get("FunctionArn", "")), "trigger")
        found.append(
            f"function {function} (trigger {mapping.get('UUID')}, {mapping.get('State')}){loop_text(edges, edge)}"
        )
    return fail(
        f"Dead-letter queue {dlq.name} triggers {'; '.join(found)}: failed orders are taken out of it automatically "
        f"and retried with nothing fixed, or lost. Lambda console: open the function, Configuration, Triggers, "
        f"select the {dlq.name} trigger, Delete."
    )
