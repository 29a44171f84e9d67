"""Tests of instructor grading: full marks for right setups, exact failures for wrong ones, probe, outputs."""

from __future__ import annotations

import csv
import itertools
import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError
from grading_setups import build_console_pipeline, console_zip, wait_for_item

from labkit import grading
from labkit.cli import main
from labkit.config import Config
from labkit.errors import ConfigError
from labkit.grading import CHECKS, GRADEBOOK_COLUMNS, grade, load_rubric
from labkit.grading.function_log import refusals
from labkit.grading.policy import allows
from labkit.lab import Lab
from labkit.lambdaerrors import parse_errors
from labkit.localcloud import LocalCloud
from labkit.orders import SAMPLE_ORDER
from labkit.resources.functions import build_zip
from labkit.resources.sqs import queue_policy_for_topic
from labkit.session import Clients

ALL_IDS = {c.id for c in CHECKS}
STATIC_IDS = {c.id for c in CHECKS if not c.probe}
MAPPING_IDS = {"mapping.exists", "mapping.enabled", "mapping.batch_size", "dlq.triggers"}


@pytest.fixture(scope="class")
def cloud() -> Iterator[LocalCloud]:
    """One in-process local cloud for a class of tests; each test builds under its own name prefix."""
    with pytest.MonkeyPatch.context() as mp:
        # The class fixture starts before the per-test credential fixture: keep a developer's shell out too.
        for name in list(os.environ):
            if name.startswith(("LABKIT_", "AWS_ENDPOINT_URL", "AWS_PROFILE")):
                mp.delenv(name)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        # A 1 s visibility timeout: a first invocation slowed by a busy CI machine is retried in a second.
        local = LocalCloud.in_process(Config.from_env({}, function_timeout=1, visibility_timeout=1))
        try:
            yield local
        finally:
            local.stop()


@pytest.fixture
def build(cloud: LocalCloud) -> Iterator[Callable[..., Lab]]:
    """Build a correct pipeline with labkit under a prefix and drain the sample order; triggers removed after."""

    def make(prefix: str, **changes: Any) -> Lab:
        lab = Lab(cloud.config.with_(prefix=prefix, **changes), cloud.clients)
        lab.up()
        lab.publish_order()
        wait_for_item(cloud.clients, lab.config.table_name, SAMPLE_ORDER["orderId"])
        lab.wait_until_drained(timeout=15, settle_reads=1)
        return lab

    yield make
    _delete_all_mappings(cloud.clients)


def _delete_all_mappings(clients: Clients) -> None:
    # Stops the local cloud's pollers for this test's pipeline, so later tests do not share the CPU with them.
    lam = clients("lambda")
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        if mapping["State"] != "Deleting":
            lam.delete_event_source_mapping(UUID=mapping["UUID"])


def _queue(lab: Lab, name: str | None = None) -> tuple[str, str]:
    sqs = lab.clients("sqs")
    url = sqs.get_queue_url(QueueName=name or lab.config.queue_name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _topic_arn(lab: Lab) -> str:
    return f"arn:aws:sns:{lab.config.region}:{lab.clients.account_id}:{lab.config.topic_name}"


def _subscription_arns(lab: Lab) -> list[str]:
    subs = lab.clients("sns").list_subscriptions_by_topic(TopicArn=_topic_arn(lab))["Subscriptions"]
    return [s["SubscriptionArn"] for s in subs]


def _mapping_uuid(lab: Lab) -> str:
    reply = lab.clients("lambda").list_event_source_mappings(FunctionName=lab.config.function_name)
    return reply["EventSourceMappings"][0]["UUID"]


def _dlq_bodies(lab: Lab) -> list[str]:
    return sorted(m["Body"] for m in lab.dlq_messages())


# Misconfigurations: each changes one thing in a correct pipeline, the way a student's mistake would.
def recreate_table(key: str, kind: str) -> Callable[[Lab], None]:
    def mutate(lab: Lab) -> None:
        ddb = lab.clients("dynamodb")
        ddb.delete_table(TableName=lab.config.table_name)
        ddb.create_table(
            TableName=lab.config.table_name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": kind}],
            BillingMode="PAY_PER_REQUEST",
        )

    return mutate


def fifo_topic(lab: Lab) -> None:
    sns = lab.clients("sns")
    sns.delete_topic(TopicArn=_topic_arn(lab))
    fifo = sns.create_topic(Name=lab.config.topic_name + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    url, arn = _queue(lab)
    sns.subscribe(TopicArn=fifo, Protocol="sqs", Endpoint=arn)
    lab.clients("sqs").set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": json.dumps(queue_policy_for_topic(arn, fifo))}
    )


def set_queue(**attributes: Any) -> Callable[[Lab], None]:
    def mutate(lab: Lab) -> None:
        sqs, url = lab.clients("sqs"), _queue(lab)[0]
        values = {k: v if isinstance(v, str) else json.dumps(v(lab)) for k, v in attributes.items()}
        # moto drops a queue's Policy whenever SetQueueAttributes omits it; AWS keeps it. Resend it.
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
        values.setdefault("Policy", current.get("Policy", ""))
        sqs.set_queue_attributes(QueueUrl=url, Attributes=values)

    return mutate


def redrive_elsewhere(lab: Lab) -> None:
    sqs = lab.clients("sqs")
    other = sqs.create_queue(QueueName=f"{lab.config.prefix}-Other")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    set_queue(RedrivePolicy=lambda _: {"deadLetterTargetArn": other_arn, "maxReceiveCount": 3})(lab)


def delete_dlq(lab: Lab) -> None:
    lab.clients("sqs").delete_queue(QueueUrl=_queue(lab, lab.config.dlq_name)[0])


def unsubscribe(then: str | None = None) -> Callable[[Lab], None]:
    def mutate(lab: Lab) -> None:
        sns = lab.clients("sns")
        for arn in _subscription_arns(lab):
            sns.unsubscribe(SubscriptionArn=arn)
        if then == "other-queue":
            sqs = lab.clients("sqs")
            url = sqs.create_queue(QueueName=f"{lab.config.prefix}-Other")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=_topic_arn(lab), Protocol="sqs", Endpoint=arn)
        elif then == "lambda":
            function = lab.clients("lambda").get_function_configuration(FunctionName=lab.config.function_name)
            sns.subscribe(TopicArn=_topic_arn(lab), Protocol="lambda", Endpoint=function["FunctionArn"])

    return mutate


def open_policy(lab: Lab) -> dict[str, Any]:
    policy = queue_policy_for_topic(_queue(lab)[1], _topic_arn(lab))
    del policy["Statement"][0]["Condition"]
    return policy


def other_topic_policy(lab: Lab) -> dict[str, Any]:
    return queue_policy_for_topic(_queue(lab)[1], _topic_arn(lab).replace("OrderTopic", "OtherTopic"))


def trust_ec2(lab: Lab) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    lab.clients("iam").update_assume_role_policy(RoleName=lab.config.role_name, PolicyDocument=json.dumps(trust))


def detach_dynamodb(lab: Lab) -> None:
    iam = lab.clients("iam")
    if lab.config.role_policy == "managed":
        iam.detach_role_policy(
            RoleName=lab.config.role_name, PolicyArn="arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"
        )
    else:
        # The least-privilege role's only DynamoDB grant is its inline policy.
        iam.delete_role_policy(RoleName=lab.config.role_name, PolicyName="OrderProcessorLeastPrivilege")


def set_function(**settings: Any) -> Callable[[Lab], None]:
    def mutate(lab: Lab) -> None:
        lab.clients("lambda").update_function_configuration(FunctionName=lab.config.function_name, **settings)

    return mutate


def set_mapping(**settings: Any) -> Callable[[Lab], None]:
    def mutate(lab: Lab) -> None:
        lab.clients("lambda").update_event_source_mapping(UUID=_mapping_uuid(lab), **settings)

    return mutate


def delete_mapping(lab: Lab) -> None:
    lab.clients("lambda").delete_event_source_mapping(UUID=_mapping_uuid(lab))


def put_sample(**changes: dict[str, str]) -> Callable[[Lab], None]:
    def mutate(lab: Lab) -> None:
        ddb = lab.clients("dynamodb")
        key = {"orderId": {"S": SAMPLE_ORDER["orderId"]}}
        item = ddb.get_item(TableName=lab.config.table_name, Key=key)["Item"]
        ddb.put_item(TableName=lab.config.table_name, Item={**item, **changes})

    return mutate


def delete_sample(lab: Lab) -> None:
    key = {"orderId": {"S": SAMPLE_ORDER["orderId"]}}
    lab.clients("dynamodb").delete_item(TableName=lab.config.table_name, Key=key)


def delete_table(lab: Lab) -> None:
    lab.clients("dynamodb").delete_table(TableName=lab.config.table_name)


# Wiring mistakes around the DLQ, made with the calls the SNS, SQS and Lambda consoles make.
def subscribe_dlq_to_topic(lab: Lab) -> None:
    lab.clients("sns").subscribe(TopicArn=_topic_arn(lab), Protocol="sqs", Endpoint=_queue(lab, lab.config.dlq_name)[1])


def other_queue_redrives_to_dlq(lab: Lab) -> None:
    redrive = {"deadLetterTargetArn": _queue(lab, lab.config.dlq_name)[1], "maxReceiveCount": "5"}
    lab.clients("sqs").create_queue(
        QueueName=f"{lab.config.prefix}-Returns", Attributes={"RedrivePolicy": json.dumps(redrive)}
    )


def dlq_redrives_to(target: str) -> Callable[[Lab], None]:
    def mutate(lab: Lab) -> None:
        sqs = lab.clients("sqs")
        if target == "order-queue":
            target_arn = _queue(lab)[1]
        else:
            url = sqs.create_queue(QueueName=f"{lab.config.prefix}-{target}")["QueueUrl"]
            target_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": target_arn, "maxReceiveCount": "3"}
        sqs.set_queue_attributes(
            QueueUrl=_queue(lab, lab.config.dlq_name)[0], Attributes={"RedrivePolicy": json.dumps(redrive)}
        )

    return mutate


def redrive_in_a_circle(lab: Lab) -> None:
    # OrderQueue -> Retry -> OrderQueue: a failing order goes round for ever and never reaches the DLQ.
    sqs = lab.clients("sqs")
    queue_arn = _queue(lab)[1]
    redrive = {"deadLetterTargetArn": queue_arn, "maxReceiveCount": "3"}
    retry = sqs.create_queue(QueueName=f"{lab.config.prefix}-Retry", Attributes={"RedrivePolicy": json.dumps(redrive)})
    retry_arn = sqs.get_queue_attributes(QueueUrl=retry["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    set_queue(RedrivePolicy=lambda _: {"deadLetterTargetArn": retry_arn, "maxReceiveCount": 3})(lab)


def trigger_on_dlq(lab: Lab) -> None:
    # AWS refuses a trigger whose role cannot read the queue: the student widened the role first.
    role = lab.clients("lambda").get_function_configuration(FunctionName=lab.config.function_name)["Role"]
    lab.clients("iam").put_role_policy(
        RoleName=role.rsplit("/", 1)[-1],
        PolicyName="read-dlq",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": _queue(lab, lab.config.dlq_name)[1]}],
            }
        ),
    )
    lab.clients("lambda").create_event_source_mapping(
        EventSourceArn=_queue(lab, lab.config.dlq_name)[1], FunctionName=lab.config.function_name, BatchSize=1
    )


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Callable[[Lab], None]
    failed: frozenset[str]
    names: Callable[[Config], str]
    prefix: str
    says: str = ""


_case_numbers = itertools.count()


def case(
    name: str, mutate: Callable[[Lab], None], failed: set[str], names: Callable[[Config], str], says: str = ""
) -> Any:
    """A misconfiguration, the checks it must fail, the resource name their messages must give (and more words)."""
    return pytest.param(Case(name, mutate, frozenset(failed), names, f"m{next(_case_numbers):02d}", says), id=name)


def dlq(c: Config) -> str:
    return c.dlq_name


def table(c: Config) -> str:
    return c.table_name


def queue(c: Config) -> str:
    return c.queue_name


def function(c: Config) -> str:
    return c.function_name


MISCONFIGURATIONS = [
    case("key-named-id", recreate_table("id", "S"), {"table.key_schema", "order.sample"}, table),
    case("key-type-number", recreate_table("orderId", "N"), {"table.key_schema", "order.sample"}, table),
    case("table-missing", delete_table, {"table.exists", "table.key_schema", "order.sample"}, table),
    case("fifo-topic", fifo_topic, {"topic.standard"}, lambda c: c.topic_name),
    case("no-redrive", set_queue(RedrivePolicy=""), {"queue.redrive_target", "queue.max_receive_count"}, queue),
    case(
        "max-receive-5",
        set_queue(
            RedrivePolicy=lambda lab: {"deadLetterTargetArn": _queue(lab, lab.config.dlq_name)[1], "maxReceiveCount": 5}
        ),
        {"queue.max_receive_count"},
        queue,
    ),
    case("redrive-to-other-queue", redrive_elsewhere, {"queue.redrive_target"}, queue),
    case(
        "dlq-missing",
        delete_dlq,
        {"dlq.exists", "queue.redrive_target", "dlq.inputs", "dlq.outputs", "dlq.triggers"},
        lambda c: c.dlq_name,
    ),
    case("no-subscription", unsubscribe(), {"subscription.exists"}, queue),
    case("subscription-to-other-queue", unsubscribe("other-queue"), {"subscription.exists"}, queue),
    case("subscription-by-lambda-protocol", unsubscribe("lambda"), {"subscription.exists"}, queue),
    case("no-queue-policy", set_queue(Policy=""), {"queue.policy"}, queue),
    case("policy-without-source-arn", set_queue(Policy=open_policy), {"queue.policy"}, queue),
    case("policy-for-other-topic", set_queue(Policy=other_topic_policy), {"queue.policy"}, queue),
    case("role-trusts-ec2", trust_ec2, {"role.trust"}, lambda c: c.role_name),
    case("role-without-dynamodb", detach_dynamodb, {"role.permissions"}, lambda c: c.role_name),
    case("runtime-nodejs", set_function(Runtime="nodejs20.x"), {"function.runtime"}, function),
    case("runtime-python-3.9", set_function(Runtime="python3.9"), {"function.runtime"}, function),
    case("handler-index-handler", set_function(Handler="index.handler"), {"function.handler"}, function),
    case(
        "table-name-env-wrong",
        set_function(Environment={"Variables": {"TABLE_NAME": "Orders2"}}),
        {"function.table_name"},
        function,
    ),
    case("no-trigger", delete_mapping, MAPPING_IDS, function),
    case("trigger-disabled", set_mapping(Enabled=False), {"mapping.enabled"}, function),
    case("batch-size-10", set_mapping(BatchSize=10), {"mapping.batch_size"}, function),
    case("visibility-below-timeout", set_function(Timeout=10), {"queue.visibility_timeout"}, queue),
    case("sample-order-missing", delete_sample, {"order.sample"}, table),
    case("sample-quantity-2", put_sample(quantity={"N": "2"}), {"order.sample"}, table),
    case("sample-quantity-string", put_sample(quantity={"S": "1"}), {"order.sample"}, table),
    case("sample-timestamp-other", put_sample(timestamp={"S": "2025-05-03T13:00:00Z"}), {"order.sample"}, table),
    case("topic-subscribed-to-dlq", subscribe_dlq_to_topic, {"dlq.inputs"}, dlq, says="SNS console"),
    case("other-queue-redrives-to-dlq", other_queue_redrives_to_dlq, {"dlq.inputs"}, dlq, says="-Returns"),
    case("dlq-redrives-to-order-queue", dlq_redrives_to("order-queue"), {"dlq.outputs"}, dlq, says="a loop ("),
    case("dlq-redrives-elsewhere", dlq_redrives_to("Retry"), {"dlq.outputs"}, dlq, says="Start DLQ redrive"),
    case("trigger-on-dlq", trigger_on_dlq, {"dlq.triggers"}, dlq, says="Triggers"),
    case("redrive-in-a-circle", redrive_in_a_circle, {"queue.redrive_target"}, queue, says="-Retry -> "),
]


class TestGrading:
    """Grading against one in-process local cloud, a fresh name prefix per test."""

    # A grade with the probe waits for its malformed message to reach the DLQ (three receives): those are slow.
    @pytest.mark.slow
    def test_labkit_setup_scores_full_marks(self, build: Callable[..., Lab]) -> None:
        # GIVEN the pipeline built by labkit, the sample order published and stored
        lab = build("a1", visibility_timeout=6)
        # WHEN the lab grades itself (by default with a probe order through the pipeline)
        report = lab.grade()
        # THEN every check passes, with no warning (visibility 6 s = 6 x the 1 s function timeout)
        assert report.failed == []
        assert report.score == report.max_score == sum(load_rubric().points_for(i) for i in ALL_IDS)
        assert {c.id for c in report.checks} == ALL_IDS
        assert report.warnings == []
        assert report.step_scores()[1] == (5, 5)

    @pytest.mark.slow
    def test_least_privilege_role_scores_full_marks(self, build: Callable[..., Lab]) -> None:
        lab = build("a2", role_policy="least-privilege")
        report = grade(lab.config, lab.clients)
        assert report.failed == []
        assert "inline policy" in report.result("role.permissions").message

    @pytest.mark.parametrize(("prefix", "name"), [("", "OrderProcesor"), ("c2", "c2-OrderProcessor")])
    def test_console_setup_scores_full_marks(self, cloud: LocalCloud, prefix: str, name: str) -> None:
        # GIVEN the seed's steps done by plain API calls, as the console does them (the seed's spelling too)
        config = cloud.config.with_(prefix=prefix)
        try:
            build_console_pipeline(cloud.clients, config, function_name=name)
            # WHEN graded read-only (the console's 30 s visibility timeout would make a probe's bad message
            # take 90 s to reach the DLQ)
            report = grade(config, cloud.clients, probe=False)
        finally:
            _delete_all_mappings(cloud.clients)
        # THEN full marks, and the checks speak of the function that exists
        assert report.failed == [], report.to_table()
        assert report.score == report.max_score
        assert name in report.result("mapping.exists").message
        assert "service-role" not in report.result("role.trust").message
        assert report.warnings == []

    @pytest.mark.parametrize("bad", MISCONFIGURATIONS)
    def test_misconfiguration_fails_exactly_its_checks(self, build: Callable[..., Lab], bad: Case) -> None:
        # GIVEN a correct pipeline with one thing changed
        lab = build(bad.prefix)
        bad.mutate(lab)
        # WHEN graded read-only (the probe has tests of its own)
        report = grade(lab.config, lab.clients, probe=False)
        # THEN exactly the expected checks fail, each saying which resource is wrong
        assert set(report.failed) == bad.failed, report.to_table()
        assert {c.id for c in report.checks} == STATIC_IDS
        for check_id in bad.failed:
            result = report.result(check_id)
            assert result.points == 0 < result.max_points
            assert bad.names(lab.config) in result.message, result.message
            assert bad.says in result.message, result.message
            assert not result.message.startswith("could not check")
        assert report.score == report.max_score - sum(report.result(i).max_points for i in bad.failed)

    def test_leftover_function_under_the_other_spelling_costs_nothing(self, build: Callable[..., Lab]) -> None:
        # GIVEN a correct pipeline, and a broken leftover under the seed's spelling, made as in the console
        lab = build("f1")
        leftover = lab.config.function_names[1]
        _create_console_function(lab, leftover, Runtime="nodejs20.x", Handler="index.handler")
        # WHEN graded
        report = grade(lab.config, lab.clients, probe=False)
        # THEN full marks: the function the queue triggers is graded; the leftover earns a warning only
        assert report.failed == [], report.to_table()
        warning = report.result("function.exists").warning
        assert warning is not None and leftover in warning and "Delete" in warning

    @pytest.mark.slow
    def test_the_function_wired_to_the_queue_is_graded(self, build: Callable[..., Lab]) -> None:
        # GIVEN a student who made a new function, moved the trigger to it, and left the first one as a draft
        lab = build("f2")
        lam = lab.clients("lambda")
        copy = f"{lab.config.function_name}-v2"
        _create_console_function(lab, copy)
        delete_mapping(lab)
        lam.create_event_source_mapping(EventSourceArn=_queue(lab)[1], FunctionName=copy, BatchSize=1)
        lam.update_function_configuration(FunctionName=lab.config.function_name, Handler="index.handler")
        # WHEN graded, with the probe through the copy
        report = grade(lab.config, lab.clients)
        # THEN the copy is graded: full marks, and the draft named in a warning
        assert report.failed == [], report.to_table()
        assert copy in report.result("mapping.exists").message
        assert copy in report.result("function.exists").message
        warning = report.result("function.exists").warning
        assert warning is not None and lab.config.function_name in warning

    def test_visibility_under_six_times_passes_with_a_warning(self, build: Callable[..., Lab]) -> None:
        lab = build("w1", visibility_timeout=2)
        result = grade(lab.config, lab.clients, probe=False).result("queue.visibility_timeout")
        assert result.passed
        assert result.warning is not None and "6s" in result.warning and lab.config.queue_name in result.warning

    @pytest.mark.slow
    def test_probe_lands_and_cleans_up(self, build: Callable[..., Lab]) -> None:
        # GIVEN a pipeline that retries every second, and an earlier failure already waiting in the DLQ
        lab = build("p1")
        lab.clients("sqs").send_message(QueueUrl=_queue(lab, lab.config.dlq_name)[0], MessageBody="an old failure")
        items_before, dlq_before = lab.order_items(), _dlq_bodies(lab)
        # WHEN graded with the probe
        started = time.monotonic()
        report = lab.grade(probe=True)
        took = time.monotonic() - started
        # THEN the probe order was stored, the malformed message reached the DLQ, and both are gone again
        assert report.result("probe.order_stored").passed, report.to_table()
        assert report.result("probe.malformed_to_dlq").passed, report.to_table()
        assert report.result("probe.order_stored").warning is None
        assert report.max_score == grading.max_score(probe=True)
        assert took < 15
        assert lab.order_items() == items_before
        assert _dlq_bodies(lab) == dlq_before == ["an old failure"]
        counts = lab.counts()
        assert (counts["queue_visible"], counts["queue_in_flight"], counts["dlq_visible"]) == (0, 0, 1)

    @pytest.mark.slow
    def test_a_handler_that_raises_is_not_full_marks(self, build: Callable[..., Lab]) -> None:
        # GIVEN the sample order stored by a working handler, then a handler raising KeyError deployed over it
        lab = build("k1")
        lam = lab.clients("lambda")
        lam.update_function_code(FunctionName=lab.config.function_name, ZipFile=build_zip(KEYERROR_HANDLER))
        lam.get_waiter("function_updated_v2").wait(FunctionName=lab.config.function_name)
        # WHEN the lab grades itself (the probe runs by default)
        report = lab.grade()
        # THEN the probe order and the test invoke fail, each naming the error, and every static check still passes
        assert report.failed == ["function.invoke", "probe.order_stored"], report.to_table()
        assert report.score < report.max_score
        message = report.result("probe.order_stored").message
        assert "KeyError: 'customerId'" in message and f"/aws/lambda/{lab.config.function_name}" in message
        invoked = report.result("function.invoke").message
        assert "failed with KeyError: 'customerId' (code.py, line" in invoked
        assert "The handler raised it: fix the line the traceback names." in invoked
        # and the probe left nothing behind: no probe item, and its two messages taken out of the DLQ again
        assert not any(item["orderId"].startswith("PROBE-") for item in lab.order_items())
        assert _dlq_bodies(lab) == []

    def test_probe_does_not_run_on_an_incomplete_pipeline(self, build: Callable[..., Lab]) -> None:
        lab = build("p2")
        delete_mapping(lab)
        report = lab.grade(probe=True)
        for check_id in ("probe.order_stored", "probe.malformed_to_dlq"):
            assert report.result(check_id).message.startswith("Probe not run"), report.result(check_id).message
        assert lab.counts()["queue_visible"] == 0  # nothing was published into the stalled queue

    def test_json_and_junit_outputs(self, build: Callable[..., Lab], tmp_path: Path) -> None:
        lab = build("o1")
        delete_sample(lab)
        report = lab.grade(probe=False)
        data = json.loads(report.to_json())
        assert (data["score"], data["max_score"]) == (report.score, report.max_score)
        assert [c["id"] for c in data["checks"]] == [c.id for c in report.checks]
        assert set(data["checks"][0]) == {"id", "step", "title", "points", "max_points", "passed", "message", "warning"}
        # the sample is gone from the table; the function's log still shows it came through the pipeline once
        assert data["steps"]["5"] == {"title": "Test: orders flow through", "score": 2, "max_score": 5}
        assert data["probe"] is False and "Behaviour not checked" in report.to_table()
        root = ET.parse(report.to_junit(tmp_path / "grade.xml")).getroot()
        cases = root.findall("./testsuite/testcase")
        assert len(cases) == len(report.checks)
        failures = [(c.get("name"), c.find("failure")) for c in cases if c.find("failure") is not None]
        assert [(name, f.get("message")) for name, f in failures] == [
            ("order.sample", report.result("order.sample").message)
        ]
        assert "order.sample" in report.to_table() and "FAIL" in report.to_table()

    @pytest.mark.slow
    def test_roster_gradebook(self, build: Callable[..., Lab], cloud: LocalCloud, tmp_path: Path) -> None:
        # GIVEN a class on one shared account: one finished, one did nothing, two rows that cannot be graded
        build("r1")
        roster = tmp_path / "roster.csv"
        roster.write_text(
            "student,profile,prefix\nalice,,r1\nbob,,r2\ncarol,no-such-profile,\ndave,,bad prefix!\n", encoding="utf-8"
        )
        # WHEN the class is graded
        rows = grading.grade_roster(roster, base=cloud.config)
        out = grading.write_gradebook(rows, tmp_path / "gradebook.csv")
        # THEN one gradebook row per student, errors recorded instead of raised
        with out.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert tuple(reader.fieldnames or ()) == GRADEBOOK_COLUMNS
            book = {row["student"]: row for row in reader}
        full = str(grading.max_score())
        assert book["alice"]["score"] == book["alice"]["max_score"] == full and book["alice"]["error"] == ""
        assert sum(int(book["alice"][f"step{s}"]) for s in range(1, 6)) == int(full)
        assert book["bob"]["score"] == "0" and "table.exists" in book["bob"]["failed_checks"]
        assert "no-such-profile" in book["carol"]["error"] and book["carol"]["score"] == "0"
        assert "bad prefix!" in book["dave"]["error"] and book["dave"]["max_score"] == full
        assert "alice" in grading.gradebook_table(rows)

    @pytest.mark.slow
    def test_rubric_file_overrides_points_and_requirements(self, build: Callable[..., Lab], tmp_path: Path) -> None:
        lab = build("u1")
        rubric = tmp_path / "rubric.json"
        rubric.write_text(json.dumps({"points": {"order.sample": 10}, "batch_size": 10}), encoding="utf-8")
        report = lab.grade(rubric=rubric)
        assert report.failed == ["mapping.batch_size"]
        assert report.result("order.sample").points == 10
        assert report.rubric == str(rubric)

    def test_access_denied_scores_zero_without_crashing(self, build: Callable[..., Lab], cloud: LocalCloud) -> None:
        lab = build("d1")
        # Only DynamoDB refused: its checks fail and say why; role.permissions still judges the table's ARN.
        report = grade(lab.config, refusing(lab.config, {"dynamodb": "AccessDeniedException"}), probe=False)
        assert set(report.failed) == {"table.exists", "table.key_schema", "order.sample"}
        for check_id in report.failed:
            assert report.result(check_id).message.startswith("could not check: ")
            assert "AccessDeniedException" in report.result(check_id).message
        # Everything refused but the identity call: every check scores zero, none raises.
        services = {s: "AccessDenied" for s in ("dynamodb", "sns", "sqs", "lambda", "iam")}
        report = grade(lab.config, refusing(lab.config, services), probe=True)
        assert report.score == 0 and set(report.failed) == {c.id for c in report.checks}
        assert all(c.message.startswith("could not check") for c in report.checks)
        # Throttling and an unreachable endpoint are reported the same way.
        report = grade(lab.config, refusing(lab.config, {"sqs": "Throttling", "lambda": "unreachable"}), probe=False)
        assert "Throttling" in report.result("queue.exists").message
        assert "Could not connect" in report.result("function.exists").message
        assert report.result("table.key_schema").passed


def _create_console_function(lab: Lab, name: str, **settings: Any) -> None:
    """A function made in the Lambda console with code.py pasted in, with the lab's role and table."""
    lam = lab.clients("lambda")
    role = lam.get_function_configuration(FunctionName=lab.config.function_name)["Role"]
    options = {
        "Runtime": "python3.12",
        "Handler": "lambda_function.lambda_handler",
        "Timeout": 1,
        "Environment": {"Variables": {"TABLE_NAME": lab.config.table_name}},
        **settings,
    }
    lam.create_function(FunctionName=name, Role=role, Code={"ZipFile": console_zip()}, **options)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})


def refusing(config: Config, refusals: dict[str, str]) -> Clients:
    """Clients whose calls to the given services fail with an error code (or "unreachable")."""

    class Refusing(Clients):
        def __call__(self, service: str) -> Any:
            client = super().__call__(service)
            code = refusals.get(service)
            if code and not getattr(client, "_refusing", False):
                client.meta.events.register("before-call", lambda model, **_: _refuse(model, code))
                client._refusing = True
            return client

    return Refusing(config)


class _Status:
    status_code = 400


def _refuse(model: Any, code: str) -> tuple[Any, dict[str, Any]]:
    if code == "unreachable":
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    return _Status(), {"Error": {"Code": code, "Message": f"refused {model.name} in a test"}}


def test_default_rubric_covers_every_check() -> None:
    rubric = load_rubric()
    # every check has points; the other ids are the notebooks' own exercises (tests/test_exercises.py)
    assert {c.id for c in CHECKS} <= set(rubric.points)
    assert set(rubric.points) - {c.id for c in CHECKS} == {
        "failures.fixed_and_redriven",
        "scale.batch_sizes",
        "stack.deployed",
    }
    assert {k: v for k, v in SAMPLE_ORDER.items() if k != "status"} == dict(rubric.sample_order)
    assert (rubric.batch_size, rubric.max_receive_count) == (1, 3)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not valid JSON"),
        ('{"points": {"table.exist": 1}}', "table.exist"),
        ('{"batch_sise": 1}', "batch_sise"),
        ('{"batch_size": 11}', "batch_size"),
        ('{"points": {"table.exists": -1}}', "points"),
    ],
)
def test_bad_rubric_is_a_clear_error(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "rubric.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=words) as caught:
        load_rubric(path)
    assert str(path) in str(caught.value)


def test_policy_reader_follows_wildcards_and_denies() -> None:
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders"
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    deny_put = {"Statement": {"Effect": "Deny", "Action": "DynamoDB:Put*", "Resource": table}}
    other_table = {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": table + "2"}]}
    not_action = {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:dynamodb:*"}]}
    assert allows([allow_all], "dynamodb:PutItem", table)
    assert not allows([allow_all, deny_put], "dynamodb:PutItem", table)
    assert not allows([other_table], "dynamodb:PutItem", table)
    assert allows([not_action], "dynamodb:PutItem", table)
    assert allows([json.dumps(allow_all)], "dynamodb:PutItem", table)


@contextmanager
def served_pipeline(monkeypatch: pytest.MonkeyPatch, timeout: int) -> Iterator[Lab]:
    """`labkit serve`'s local cloud with the pipeline built and the sample order stored, at AWS_ENDPOINT_URL.

    The function's timeout and the queue's visibility timeout are both *timeout* seconds.
    """
    cloud = LocalCloud.server(Config.from_env({}, function_timeout=timeout, visibility_timeout=timeout))
    try:
        lab = Lab(cloud.config, cloud.clients)
        lab.up()
        lab.publish_order()
        wait_for_item(cloud.clients, lab.config.table_name, SAMPLE_ORDER["orderId"])
        # The runtime lends the process environment to a running function and then restores it: set the
        # variable only once no invocation is running, or its restore would undo the change.
        lab.wait_until_drained(timeout=30, settle_reads=1)
        monkeypatch.setenv("AWS_ENDPOINT_URL", str(cloud.endpoint_url))
        yield lab
    finally:
        # Leave the process's moto state empty for later tests; pollers first, so none sees a half-reset backend.
        cloud.service.stop()
        requests.post(f"{cloud.endpoint_url}/moto-api/reset", timeout=10)
        cloud.stop()


@pytest.mark.slow
def test_cli_grade_against_a_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN `labkit serve`'s local cloud with a finished pipeline, reached through AWS_ENDPOINT_URL
    # A short visibility timeout: should a busy machine time out the first invocation, its retry comes soon.
    with served_pipeline(monkeypatch, timeout=2):
        # WHEN `labkit grade --json --junit FILE` runs
        junit = tmp_path / "grade.xml"
        status = main(["grade", "--json", "--junit", str(junit)])
        # THEN it exits 0 with the report as JSON, and writes the JUnit file
        out = capsys.readouterr().out
        assert status == 0
        data = json.loads(out)
        assert data["score"] == data["max_score"] > 0
        assert len(ET.parse(junit).getroot().findall(".//testcase")) == len(data["checks"])
        # Below full marks exits 1 (a prefix with nothing built scores zero); errors of the run exit 2.
        assert main(["grade", "--prefix", "nobody"]) == 1
        assert "Score: 0/" in capsys.readouterr().out
        # A roster over the same server writes a gradebook.
        roster, book = tmp_path / "roster.csv", tmp_path / "book.csv"
        roster.write_text("student,prefix\nalice,\nbob,bob\n", encoding="utf-8")
        assert main(["grade", "--roster", str(roster), "--out", str(book)]) == 0
        with book.open(newline="", encoding="utf-8") as handle:
            rows = {r["student"]: r for r in csv.DictReader(handle)}
        assert rows["alice"]["score"] == str(data["max_score"]) and rows["bob"]["score"] == "0"
        # Errors of the run itself exit 2.
        assert main(["grade", "--roster", str(roster)]) == 2
        assert main(["grade", "--rubric", str(tmp_path / "missing.json")]) == 2
        assert "missing.json" in capsys.readouterr().err


def test_cli_grade_without_a_cloud_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade"]) == 2
    assert "labkit serve" in capsys.readouterr().err


def test_refused_client_error_is_a_client_error() -> None:
    # The test double above must produce what botocore produces for a real refusal.
    clients = refusing(Config.from_env({}), {"sqs": "AccessDenied"})
    with pytest.raises(ClientError) as caught:
        clients("sqs").list_queues()
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


# A student's handler that reads an attribute the orders do not have: every real message fails.
KEYERROR_HANDLER = """
import json
import os

import boto3


def lambda_handler(event, context):
    table = boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", "Orders"))
    for record in event["Records"]:
        order = json.loads(json.loads(record["body"])["Message"])
        table.put_item(Item={"orderId": order["orderId"], "customer": order["customerId"]})
"""


@pytest.mark.slow
def test_cli_grade_fails_a_handler_that_raises_and_names_its_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pipeline whose sample order was stored by an earlier, working handler, and then a handler
    # that raises KeyError on every real message deployed over it
    with served_pipeline(monkeypatch, timeout=1) as lab:
        lam = lab.clients("lambda")
        lam.update_function_code(FunctionName=lab.config.function_name, ZipFile=build_zip(KEYERROR_HANDLER))
        lam.get_waiter("function_updated_v2").wait(FunctionName=lab.config.function_name)
        # WHEN `labkit grade` runs (a probe order through the pipeline by default)
        status = main(["grade"])
        out = capsys.readouterr().out
        # THEN not full marks, exit status 1, and the probe's failure names the function's real error
        assert status == 1, out
        assert "FAIL  probe.order_stored" in out
        assert "KeyError: 'customerId'" in " ".join(out.split())
        assert "Failed: " in out and "probe.order_stored" in out.split("Failed: ")[1]
        # Read-only grading cannot see behaviour, and says so.
        assert main(["grade", "--no-probe"]) == 0
        assert "Behaviour not checked" in capsys.readouterr().out


# What Lambda's Python runtime writes for an unhandled exception, in each shape the grader may read.
AWS_TEXT_EVENT = (
    "[ERROR] KeyError: 'customerId'\r"
    "Traceback (most recent call last):\r"
    '  File "/var/task/lambda_function.py", line 12, in lambda_handler\r'
    '    table.put_item(Item={"orderId": order["orderId"], "customer": order["customerId"]})'
)
AWS_JSON_EVENT = json.dumps(
    {
        "timestamp": "2025-05-03T12:00:01Z",
        "level": "ERROR",
        "message": {
            "errorMessage": "'customerId'",
            "errorType": "KeyError",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678",
            "stackTrace": [
                '  File "/var/task/lambda_function.py", line 12, in lambda_handler\n    x = order["customerId"]\n'
            ],
        },
    }
)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # One event whose lines are separated by "\r", as CloudWatch holds it on AWS.
        (
            ["START RequestId: 1 Version: $LATEST", AWS_TEXT_EVENT, "END RequestId: 1"],
            "KeyError: 'customerId' (File \"/var/task/lambda_function.py\", line 12, in lambda_handler: "
            'table.put_item(Item={"orderId": order["orderId"], "customer": order["customerId"]}))',
        ),
        # The same lines as separate events, "\n" between them, and a runtime frame after the student's.
        (
            [
                "[ERROR] KeyError: 'customerId'",
                "Traceback (most recent call last):",
                '  File "/var/task/code.py", line 7, in lambda_handler\n    order["customerId"]',
                '  File "/var/runtime/bootstrap.py", line 60, in handle',
                "END RequestId: 2",
            ],
            'KeyError: \'customerId\' (File "/var/task/code.py", line 7, in lambda_handler: order["customerId"])',
        ),
        # No traceback at all: the error line alone, bare or after a timestamp and request id.
        (["[ERROR] KeyError: 'customerId'"], "KeyError: 'customerId'"),
        (["2025-05-03T12:00:01.000Z\t1\t[ERROR] KeyError: 'customerId'"], "KeyError: 'customerId'"),
        # The JSON log format.
        (
            [AWS_JSON_EVENT],
            "KeyError: 'customerId' (File \"/var/task/lambda_function.py\", line 12, in lambda_handler: "
            'x = order["customerId"])',
        ),
        # A timeout, and a line the logging module wrote, which is not an unhandled error.
        (
            [
                "[ERROR]\t2025-05-03T12:00:00.000Z\t1\tsomething logged",
                "2025-05-03T12:00:03Z 1 Task timed out after 3.00 seconds",
            ],
            "Sandbox.Timedout: Task timed out after 3.00 seconds",
        ),
    ],
    ids=["aws-one-event", "separate-events", "no-traceback", "prefixed", "json-format", "timeout"],
)
def test_function_errors_are_read_from_every_log_shape(events: list[str], expected: str) -> None:
    errors = parse_errors(events)
    assert [e.describe() for e in errors] == [expected]


def test_a_log_without_errors_has_none() -> None:
    lines = ["START RequestId: 1", '{"orderId": "01234", "outcome": "stored", "reason": null}', "END RequestId: 1"]
    assert parse_errors(lines) == []
    assert refusals(lines, "01234") == []
    refused = '{"orderId": "P-1", "messageId": "m", "outcome": "error", "reason": "AccessDeniedException: no"}'
    assert refusals([refused], "P-1") == ["error: AccessDeniedException: no"]
