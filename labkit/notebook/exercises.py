"""The exercises of the notebooks: what each one asks the student to build, and which checks judge it.

An exercise's check cell runs the grader's checks of its step (`labkit.grading`, the same ids, points
and messages `labkit grade` reports) and, for the two exercises that are runs rather than resources
(notebooks 06 and 07), a check of their own with its points in the same rubric. Every grading check
belongs to exactly one exercise, so full marks in the notebooks are full marks in `labkit grade`, and
to the exercise whose work it judges: the probe order and the malformed message go through the whole
pipeline, so they judge the trigger, the piece that completes it; none is earned by what a catch-up
cell built.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    """One exercise: its notebook, the catch-up step that builds it, its checks, and where to start."""

    name: str
    notebook: str
    step: int
    title: str
    checks: tuple[str, ...]
    hint: str
    own: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        """Every check id the exercise is scored by, the grader's first."""
        return (*self.checks, *self.own)


EXERCISES = {
    exercise.name: exercise
    for exercise in (
        Exercise(
            "table",
            "01",
            1,
            "Create the table",
            ("table.exists", "table.key_schema"),
            "dynamodb.create_table(...) with the key schema and its attribute definition, then the table_exists "
            "waiter (console: DynamoDB > Tables > Create table)",
        ),
        Exercise(
            "topic",
            "02",
            2,
            "Create the topic",
            ("topic.exists", "topic.standard"),
            "sns.create_topic(Name=...) (console: SNS > Topics > Create topic, Standard)",
        ),
        Exercise(
            "queues",
            "03",
            3,
            "Create the queues and subscribe",
            (
                "dlq.exists",
                "queue.exists",
                "queue.redrive_target",
                "queue.max_receive_count",
                "subscription.exists",
                "queue.policy",
                "probe.delivery",
                "dlq.inputs",
                "dlq.outputs",
            ),
            "sqs.create_queue twice (the DLQ first, then the queue with its RedrivePolicy), "
            "sqs.set_queue_attributes with the Policy, sns.subscribe (console: SQS > Create queue, then "
            "Subscribe to Amazon SNS topic)",
        ),
        Exercise(
            "role",
            "04",
            4,
            "Give the function its role",
            ("role.trust", "role.permissions"),
            "iam.create_role with the trust policy, iam.put_role_policy with the permissions, "
            "iam.attach_role_policy for the logs (console: IAM > Roles > Create role)",
        ),
        Exercise(
            "function",
            "04",
            4,
            "Deploy the function",
            ("function.exists", "function.runtime", "function.handler", "function.table_name", "function.invoke"),
            "lambda.create_function with the zip, the role's ARN, the runtime, the handler and TABLE_NAME, then "
            "the function_active_v2 waiter (console: Lambda > Create function)",
        ),
        Exercise(
            "trigger",
            "04",
            4,
            "Add the SQS trigger",
            (
                "mapping.exists",
                "mapping.enabled",
                "mapping.batch_size",
                "queue.visibility_timeout",
                "dlq.triggers",
                "probe.order_stored",
                "probe.malformed_to_dlq",
            ),
            "lambda.create_event_source_mapping with the queue's ARN, BatchSize and FunctionResponseTypes "
            "(console: Lambda > your function > Add trigger > SQS)",
        ),
        Exercise(
            "flow",
            "05",
            5,
            "Publish the sample order",
            ("order.sample", "order.sample_logged"),
            "sns.publish(TopicArn=..., Message=json.dumps(order)), then dynamodb.get_item (console: SNS > "
            "Topics > Publish message; DynamoDB > Explore items)",
        ),
        Exercise(
            "failures",
            "06",
            6,
            "Fix the failed order and send it back",
            (),
            "sqs.receive_message on the DLQ, find your order, sqs.send_message of the fixed body to the queue, "
            "then sqs.delete_message on the DLQ (console: SQS > OrderDLQ > Send and receive messages)",
            own=("failures.fixed_and_redriven",),
        ),
        Exercise(
            "scale",
            "07",
            7,
            "Change the batch size and measure",
            (),
            "lambda.update_event_source_mapping(UUID=..., BatchSize=...) (console: Lambda > your function > "
            "Configuration > Triggers > Edit)",
            own=("scale.batch_sizes",),
        ),
        Exercise(
            "stack",
            "09",
            9,
            "Complete the template and deploy it",
            (),
            "the queue's access policy as an AWS::SQS::QueuePolicy resource (Queues, PolicyDocument), and the "
            "function's Events: an SQS event with Queue, BatchSize and FunctionResponseTypes (AWS SAM's "
            "AWS::Serverless::Function, Events, SQS)",
            own=("stack.deployed",),
        ),
    )
}


def exercises_of(notebook: str) -> list[Exercise]:
    """The exercises of notebook *notebook* ("01"...), in the order they come."""
    return [e for e in EXERCISES.values() if e.notebook == notebook]


def exercises_of_step(step: int) -> list[Exercise]:
    """The exercises that catch-up step *step* builds."""
    return [e for e in EXERCISES.values() if e.step == step]
