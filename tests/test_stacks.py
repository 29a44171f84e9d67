"""CloudFormation in the local cloud: stacks deployed, rolled back and deleted as AWS does, with its events.

One in-process cloud for the module; the lab's SAM template is deployed once under the prefix p2 and
shared by the tests that read it. The others deploy small templates of their own under their own names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from labkit import iac
from labkit.cfnyaml import dump_template, load_template
from labkit.config import Config
from labkit.experiments.scenarios import FAST
from labkit.lab import Lab
from labkit.localcloud import LocalCloud
from labkit.orders import SAMPLE_ORDER

SHORT = {"FunctionTimeout": str(FAST["function_timeout"]), "VisibilityTimeout": str(FAST["visibility_timeout"])}
MESSAGING = """
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: {name}-topic
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: {name}-queue
  QueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Queue]
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{Service: sns.amazonaws.com}}
            Action: sqs:SendMessage
            Resource: !GetAtt Queue.Arn
            Condition: {{ArnEquals: {{aws:SourceArn: !Ref Topic}}}}
  Subscription:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Topic
      Protocol: sqs
      Endpoint: !GetAtt Queue.Arn
"""


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    cloud = LocalCloud.in_process(Config.from_env({}, **FAST))
    yield cloud
    cloud.stop()


@pytest.fixture(scope="module")
def lab(cloud: LocalCloud) -> Lab:
    return Lab(cloud.config, cloud.clients, cloud=cloud)


@pytest.fixture(scope="module")
def pipeline(lab: Lab) -> iac.StackResult:
    """The lab's SAM template deployed as the stack p2-OrdersLab."""
    return lab.deploy_stack(prefix="p2", parameters=SHORT)


def cfn(lab: Lab) -> Any:
    return lab.clients("cloudformation")


def settle(lab: Lab, stack_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn(lab).describe_stacks(StackName=stack_id)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.1)


def events(lab: Lab, stack: str) -> list[dict[str, Any]]:
    """The stack's events, oldest first."""
    return list(reversed(cfn(lab).describe_stack_events(StackName=stack)["StackEvents"]))


def create(lab: Lab, name: str, body: str, **extra: Any) -> dict[str, Any]:
    stack_id = cfn(lab).create_stack(StackName=name, TemplateBody=body, **extra)["StackId"]
    return settle(lab, stack_id)


def test_the_sam_template_deploys_unchanged_to_create_complete(pipeline, lab):
    """`aws cloudformation package` + `deploy` of infra/template.yaml: the SAM transform applied, the stack
    CREATE_COMPLETE with its outputs, and the pipeline's resources under the prefix's names.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/transform-aws-serverless.html"""
    assert pipeline.ok, pipeline.describe()
    assert pipeline.outputs["TableName"] == "p2-Orders"
    assert pipeline.outputs["FunctionName"] == "p2-OrderProcessor"
    assert pipeline.outputs["QueueUrl"].endswith("/p2-OrderQueue")
    mapping = lab.clients("lambda").list_event_source_mappings(FunctionName="p2-OrderProcessor")["EventSourceMappings"]
    assert [(m["BatchSize"], m["State"], m["FunctionResponseTypes"]) for m in mapping] == [
        (1, "Enabled", ["ReportBatchItemFailures"])
    ]
    policy = lab.clients("sqs").get_queue_attributes(QueueUrl=pipeline.outputs["QueueUrl"], AttributeNames=["Policy"])
    assert pipeline.outputs["TopicArn"] in policy["Attributes"]["Policy"]


def test_every_resource_gets_its_stack_events(pipeline, lab):
    """Each resource: CREATE_IN_PROGRESS (with its resolved properties), CREATE_IN_PROGRESS "Resource creation
    Initiated" (with its physical id), CREATE_COMPLETE; the stack: REVIEW_IN_PROGRESS and CREATE_IN_PROGRESS
    "User Initiated" first, CREATE_COMPLETE last; newest first in the answer.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html"""
    found = events(lab, "p2-OrdersLab")
    stamps = [e["Timestamp"] for e in found]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    stack = [
        (e["ResourceStatus"], e.get("ResourceStatusReason")) for e in found if e["LogicalResourceId"] == "p2-OrdersLab"
    ]
    assert stack == [
        ("REVIEW_IN_PROGRESS", "User Initiated"),
        ("CREATE_IN_PROGRESS", "User Initiated"),
        ("CREATE_COMPLETE", None),
    ]
    resources = [
        r["LogicalResourceId"]
        for r in cfn(lab).list_stack_resources(StackName="p2-OrdersLab")["StackResourceSummaries"]
    ]
    assert len(resources) == 9
    for logical in resources:
        own = [e for e in found if e["LogicalResourceId"] == logical]
        assert [(e["ResourceStatus"], e.get("ResourceStatusReason")) for e in own] == [
            ("CREATE_IN_PROGRESS", None),
            ("CREATE_IN_PROGRESS", "Resource creation Initiated"),
            ("CREATE_COMPLETE", None),
        ], logical
        assert "ResourceProperties" in own[0] and own[1]["PhysicalResourceId"]


def test_every_resource_is_listed_with_its_ids(pipeline, lab):
    """ListStackResources names each resource with its logical and physical id, and DescribeStackResources finds
    the stack that owns a physical resource.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResources.html"""
    rows = cfn(lab).list_stack_resources(StackName="p2-OrdersLab")["StackResourceSummaries"]
    assert {r["ResourceType"] for r in rows} == {
        "AWS::DynamoDB::Table",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::Subscription",
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
    }
    assert all(
        r["LogicalResourceId"] and r["PhysicalResourceId"] and r["ResourceStatus"] == "CREATE_COMPLETE" for r in rows
    )
    owned = cfn(lab).describe_stack_resources(PhysicalResourceId="p2-OrderProcessor")["StackResources"]
    assert [(r["StackName"], r["LogicalResourceId"]) for r in owned] == [("p2-OrdersLab", "OrderProcessor")]


def test_the_lab_shows_the_stacks_events_and_resources_as_tables(pipeline, lab):
    """Notebook 09's views: `lab.stack_events` (oldest first) and `lab.stack_resources`, from DescribeStackEvents
    and ListStackResources. https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html"""
    table = lab.stack_events(prefix="p2")
    assert list(table.columns) == ["time", "resource", "type", "status", "reason"]
    assert (table.iloc[0]["status"], table.iloc[-1]["status"]) == ("REVIEW_IN_PROGRESS", "CREATE_COMPLETE")
    assert table["time"].is_monotonic_increasing
    resources = lab.stack_resources(prefix="p2").set_index("resource")
    assert resources.loc["OrdersTable", "physical_id"] == "p2-Orders"
    assert set(resources["status"]) == {"CREATE_COMPLETE"}


def test_get_template_gives_the_original_and_the_processed_template(pipeline, lab):
    """GetTemplate: the template as given (with its Transform), or as processed (the SAM transform applied).
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html"""
    original = cfn(lab).get_template(StackName="p2-OrdersLab")["TemplateBody"]
    processed = cfn(lab).get_template(StackName="p2-OrdersLab", TemplateStage="Processed")["TemplateBody"]
    assert (
        load_template(original if isinstance(original, str) else str(original))["Transform"] == iac.names.SAM_TRANSFORM
    )
    kinds = {
        r["Type"]
        for r in (processed if isinstance(processed, dict) else load_template(processed))["Resources"].values()
    }
    assert "AWS::Lambda::EventSourceMapping" in kinds and not any(k.startswith("AWS::Serverless") for k in kinds)


def test_the_stack_built_pipeline_stores_orders_and_grades_full_marks(pipeline, lab):
    """The function a stack made runs in an execution environment like any other: the sample order published
    to the stack's topic is stored and the grader's reads give full marks
    (tests/test_awscli_stacks.py runs its probe too)."""
    stacked = lab.for_prefix("p2")
    stacked.publish_order()
    stacked.wait_until_drained(timeout=30)
    assert stacked.get_order(str(SAMPLE_ORDER["orderId"]))["itemName"] == SAMPLE_ORDER["itemName"]
    report = stacked.grade(probe=False)
    assert report.score == report.max_score, report.to_table()


def test_a_role_without_sqs_permissions_rolls_back_with_awss_reason(lab):
    """The trigger's CreateEventSourceMapping is refused as Lambda refuses it; the mapping is CREATE_FAILED with
    the handler's message, the stack ROLLBACK_IN_PROGRESS "The following resource(s) failed to create: [X].
    Rollback requested by user.", everything made is deleted in reverse order, and the stack ends ROLLBACK_COMPLETE.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions"""
    template = load_template(iac.TEMPLATE_PATH.read_text())
    statements = template["Resources"]["OrderProcessorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s["Sid"] != "ConsumeOrderQueue"]
    template["Resources"]["OrderProcessor"]["Properties"]["CodeUri"] = str(iac.TEMPLATE_PATH.parent.parent / "lambda")
    result = lab.deploy_stack(template, prefix="p4", parameters=SHORT)
    assert result.status == "ROLLBACK_COMPLETE"
    assert (
        result.reason
        == "The following resource(s) failed to create: [OrderProcessorOrderQueue]. Rollback requested by user."
    )
    ((logical, kind, reason),) = result.failures
    assert (logical, kind) == ("OrderProcessorOrderQueue", "AWS::Lambda::EventSourceMapping")
    assert reason.startswith(
        'Resource handler returned message: "The function execution role does not have permissions to call ReceiveMessage on SQS'
    )
    assert "HandlerErrorCode: InvalidRequest" in reason
    found = events(lab, result.stack_id)
    created = [e["LogicalResourceId"] for e in found if e.get("ResourceStatusReason") == "Resource creation Initiated"]
    deleted = [e["LogicalResourceId"] for e in found if e["ResourceStatus"] == "DELETE_COMPLETE"]
    assert deleted == ["OrderProcessorOrderQueue", *reversed(created)]
    assert found[-1]["ResourceStatus"] == "ROLLBACK_COMPLETE"
    with pytest.raises(ClientError):
        lab.clients("lambda").get_function(FunctionName="p4-OrderProcessor")
    with pytest.raises(ClientError):
        lab.clients("sqs").get_queue_url(QueueName="p4-OrderQueue")
    assert "p4-Orders" not in lab.clients("dynamodb").list_tables()["TableNames"]
    # A rolled-back stack cannot be updated, only deleted (the message AWS gives `aws cloudformation deploy`).
    with pytest.raises(ClientError, match="is in ROLLBACK_COMPLETE state and can not be updated"):
        cfn(lab).create_change_set(
            StackName="p4-OrdersLab",
            ChangeSetName="again",
            ChangeSetType="UPDATE",
            TemplateBody=dump_template(template),
        )


def test_a_type_the_local_cloud_cannot_create_fails_the_stack_by_name(lab):
    """A type CloudFormation knows but the local cloud does not create: that resource is CREATE_FAILED with its
    name and why, and the stack rolls back, never CREATE_COMPLETE with a resource missing."""
    body = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n  Network:\n    Type: AWS::EC2::VPC\n    DependsOn: Queue\n    Properties:\n      CidrBlock: 10.0.0.0/16\n"
    stack = create(lab, "vpc", body)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [e for e in events(lab, stack["StackId"]) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["Network"]
    assert "cannot create resources of type AWS::EC2::VPC (Network)" in failed[0]["ResourceStatusReason"]
    assert lab.clients("sqs").list_queues(QueueNamePrefix="vpc-Queue").get("QueueUrls") is None


def test_an_unknown_type_is_refused_before_anything_is_made(lab):
    """A type CloudFormation's registry does not know: ValidationError at once, as AWS answers.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html"""
    with pytest.raises(ClientError, match=r"Template format error: Unrecognized resource types: \[AWS::Foo::Bar\]"):
        cfn(lab).create_stack(StackName="foo", TemplateBody="Resources:\n  X:\n    Type: AWS::Foo::Bar\n")


def test_a_property_aws_refuses_fails_its_resource(lab):
    """A property the type's schema does not have fails the resource with CloudFormation's validation message.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html"""
    stack = create(
        lab, "typo", "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueNmae: typo\n"
    )
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [e for e in events(lab, stack["StackId"]) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed[0]["ResourceStatusReason"] == (
        "Properties validation failed for resource Queue with message: [#: extraneous key [QueueNmae] is not permitted]"
    )


def test_a_property_the_local_cloud_does_not_implement_fails_its_resource_by_name(lab):
    """A property AWS takes but the local cloud does not implement is never dropped silently."""
    body = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      ArchivePolicy: {MessageRetentionPeriod: 30}\n"
    stack = create(lab, "archive", body)
    failed = [e for e in events(lab, stack["StackId"]) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert "does not implement ArchivePolicy of AWS::SNS::Topic (Topic)" in failed[0]["ResourceStatusReason"]


def test_local_code_in_a_sam_template_fails_the_change_set_with_the_transforms_reason(lab):
    """Deployed without `package`, a SAM template's local CodeUri is refused by the transform: the change set is
    FAILED with "Transform AWS::Serverless-2016-10-31 failed with: ..." and nothing is made, as on AWS."""
    answer = cfn(lab).create_change_set(
        StackName="raw",
        ChangeSetName="raw",
        ChangeSetType="CREATE",
        TemplateBody=iac.TEMPLATE_PATH.read_text(),
        Capabilities=["CAPABILITY_IAM"],
    )
    change_set = cfn(lab).describe_change_set(ChangeSetName=answer["Id"])
    assert (change_set["Status"], change_set["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    assert change_set["StatusReason"].startswith(
        "Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application Specification document."
    )
    assert "'CodeUri' is not a valid S3 Uri" in change_set["StatusReason"]
    with pytest.raises(ClientError, match="InvalidChangeSetStatus"):
        cfn(lab).execute_change_set(ChangeSetName=answer["Id"])


def test_capabilities_are_required_as_aws_requires_them(lab):
    """An IAM role needs CAPABILITY_IAM (a named one CAPABILITY_NAMED_IAM), and CreateStack of a template with a
    transform CAPABILITY_AUTO_EXPAND: InsufficientCapabilitiesException otherwise.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html"""
    role = "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument: {}\n"
    with pytest.raises(
        ClientError, match=r"InsufficientCapabilitiesException.*Requires capabilities : \[CAPABILITY_IAM\]"
    ):
        cfn(lab).create_stack(StackName="role", TemplateBody=role)
    named = role + "      RoleName: named\n"
    with pytest.raises(ClientError, match=r"Requires capabilities : \[CAPABILITY_NAMED_IAM\]"):
        cfn(lab).create_stack(StackName="role", TemplateBody=named, Capabilities=["CAPABILITY_IAM"])
    with pytest.raises(ClientError, match=r"Requires capabilities : \[CAPABILITY_AUTO_EXPAND\]"):
        cfn(lab).create_stack(
            StackName="sam", TemplateBody=iac.TEMPLATE_PATH.read_text(), Capabilities=["CAPABILITY_IAM"]
        )


def test_parameters_are_checked_before_anything_is_made(lab):
    """AllowedPattern with its ConstraintDescription, and a parameter the template does not declare: ValidationError.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html"""
    body = iac.TEMPLATE_PATH.read_text()
    with pytest.raises(ClientError, match="Parameter Prefix failed to satisfy constraint: up to 20 letters"):
        cfn(lab).create_change_set(
            StackName="bad", ChangeSetName="bad", ChangeSetType="CREATE", TemplateBody=body,
            Parameters=[{"ParameterKey": "Prefix", "ParameterValue": "not a prefix!"}],
        )  # fmt: skip
    with pytest.raises(ClientError, match=r"Parameters: \[Nope\] do not exist in the template"):
        cfn(lab).create_stack(
            StackName="bad",
            TemplateBody=MESSAGING.format(name="bad"),
            Parameters=[{"ParameterKey": "Nope", "ParameterValue": "x"}],
        )


def test_a_named_resource_that_exists_already_fails_its_creation(lab):
    """CloudFormation does not adopt a queue of the same name: "Resource of type 'AWS::SQS::Queue' with
    identifier 'taken-queue' already exists." (handler contract: AlreadyExists).
    https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-test-contract-errors.html"""
    lab.clients("sqs").create_queue(QueueName="taken-queue")
    stack = create(lab, "taken", MESSAGING.format(name="taken"))
    failed = [e for e in events(lab, stack["StackId"]) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert (
        failed[0]["ResourceStatusReason"]
        == "Resource of type 'AWS::SQS::Queue' with identifier 'taken-queue' already exists."
    )
    assert lab.clients("sqs").get_queue_url(QueueName="taken-queue")  # the student's queue is left alone


TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
KEY = {
    "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
}
# A kind -> (make the resource outside any stack, its name, the stack's properties for the same name).
TAKEN: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "AWS::IAM::Role": (
        lambda lab: lab.clients("iam").create_role(RoleName="taken-role", AssumeRolePolicyDocument=json.dumps(TRUST)),
        "taken-role",
        {"RoleName": "taken-role", "AssumeRolePolicyDocument": TRUST},
    ),
    "AWS::DynamoDB::Table": (
        lambda lab: lab.clients("dynamodb").create_table(TableName="taken-table", BillingMode="PAY_PER_REQUEST", **KEY),
        "taken-table",
        {"TableName": "taken-table", "BillingMode": "PAY_PER_REQUEST", **KEY},
    ),
}


@pytest.mark.parametrize("kind", sorted(TAKEN))
def test_a_named_role_or_table_that_exists_already_fails_its_creation(lab, kind):
    """The same handler contract for a role and a table: CREATE_FAILED, "already exists", the original kept.
    https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-test-contract-errors.html"""
    make, name, properties = TAKEN[kind]
    make(lab)
    body = json.dumps({"Resources": {"R": {"Type": kind, "Properties": properties}}})
    stack = create(lab, f"taken-{kind.split('::')[-1].lower()}", body, Capabilities=["CAPABILITY_NAMED_IAM"])
    failed = [e for e in events(lab, stack["StackId"]) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed[0]["ResourceStatusReason"] == f"Resource of type '{kind}' with identifier '{name}' already exists."


def test_on_failure_do_nothing_keeps_what_was_made(lab):
    """OnFailure DO_NOTHING: the stack stops at CREATE_FAILED and keeps the resources made before the failure."""
    body = (
        MESSAGING.format(name="keep")
        + "  Bad:\n    Type: AWS::SQS::Queue\n    DependsOn: Subscription\n    Properties:\n      QueueName: taken-queue\n"
    )
    lab.clients("sqs").create_queue(QueueName="taken-queue")
    stack = create(lab, "keep", body, OnFailure="DO_NOTHING")
    assert (stack["StackStatus"], stack["StackStatusReason"]) == (
        "CREATE_FAILED",
        "The following resource(s) failed to create: [Bad]. ",
    )
    assert lab.clients("sqs").get_queue_url(QueueName="keep-queue")


def test_delete_stack_removes_everything_it_made(lab):
    """The queue policy and the subscription are made (moto's own CloudFormation skipped both), and DeleteStack
    removes every resource (DELETE_IN_PROGRESS, DELETE_COMPLETE each); the deleted stack answers by id only.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html"""
    stack = create(lab, "gone", MESSAGING.format(name="gone"))
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    sqs, sns = lab.clients("sqs"), lab.clients("sns")
    url = sqs.get_queue_url(QueueName="gone-queue")["QueueUrl"]
    topic = f"arn:aws:sns:us-east-1:{lab.clients.account_id}:gone-topic"
    assert (
        "sns.amazonaws.com" in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    assert [s["Protocol"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]] == ["sqs"]

    cfn(lab).delete_stack(StackName="gone")
    done = settle(lab, stack["StackId"])
    assert done["StackStatus"] == "DELETE_COMPLETE"
    deleted = [
        (e["LogicalResourceId"], e["ResourceStatus"])
        for e in events(lab, stack["StackId"])
        if e["ResourceStatus"].startswith("DELETE_") and e["LogicalResourceId"] != "gone"
    ]
    assert deleted == [
        ("Subscription", "DELETE_IN_PROGRESS"), ("Subscription", "DELETE_COMPLETE"),
        ("QueuePolicy", "DELETE_IN_PROGRESS"), ("QueuePolicy", "DELETE_COMPLETE"),
        ("Queue", "DELETE_IN_PROGRESS"), ("Queue", "DELETE_COMPLETE"),
        ("Topic", "DELETE_IN_PROGRESS"), ("Topic", "DELETE_COMPLETE"),
    ]  # fmt: skip
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName="gone-queue")
    assert topic not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    with pytest.raises(ClientError, match="Stack with id gone does not exist"):
        cfn(lab).describe_stacks(StackName="gone")
    statuses = {s["StackId"]: s["StackStatus"] for s in cfn(lab).list_stacks()["StackSummaries"]}
    assert statuses[stack["StackId"]] == "DELETE_COMPLETE"
    cfn(lab).delete_stack(StackName="gone")  # deleting what is gone is no error, as on AWS


def test_the_lab_deletes_its_stack(lab):
    """`lab.delete_stack(prefix)` deletes a stack the lab deployed and waits for DELETE_COMPLETE."""
    template = load_template(MESSAGING.format(name="own"))
    result = iac.deploy_stack(lab.clients, template, "own-OrdersLab")
    assert result.ok
    assert lab.delete_stack(prefix="own") is True
    assert lab.delete_stack(prefix="own") is False
    with pytest.raises(ClientError):
        lab.clients("sqs").get_queue_url(QueueName="own-queue")


def test_a_template_refused_at_create_stack_leaves_no_stack_behind(lab):
    """A circular dependency is a ValidationError of CreateStack; no stack is left in progress."""
    body = (
        "Resources:\n  A:\n    Type: AWS::SQS::Queue\n    DependsOn: B\n"
        "  B:\n    Type: AWS::SQS::Queue\n    DependsOn: A\n"
    )
    with pytest.raises(ClientError, match=r"Circular dependency between resources: \[A, B\]"):
        cfn(lab).create_stack(StackName="circle", TemplateBody=body)
    with pytest.raises(ClientError, match="Stack with id circle does not exist"):
        cfn(lab).describe_stacks(StackName="circle")


def test_deploying_a_stack_again_as_it_is_changes_nothing(pipeline, lab):
    """A change set that changes nothing is FAILED with AWS's reason (so `aws cloudformation deploy` says the stack
    is up to date); one that changes something is refused, since the local cloud does not update stacks.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets-create.html"""
    body = cfn(lab).get_template(StackName="p2-OrdersLab")["TemplateBody"]
    same = [{"ParameterKey": "Prefix", "UsePreviousValue": True}] + [
        {"ParameterKey": k, "ParameterValue": v} for k, v in SHORT.items()
    ]
    answer = cfn(lab).create_change_set(
        StackName="p2-OrdersLab", ChangeSetName="again", ChangeSetType="UPDATE", TemplateBody=body, Parameters=same
    )
    change_set = cfn(lab).describe_change_set(ChangeSetName=answer["Id"])
    assert (change_set["Status"], change_set["StatusReason"]) == (
        "FAILED",
        "The submitted information didn't contain changes. Submit different information to create a change set.",
    )
    with pytest.raises(ClientError, match="does not update stacks: delete stack p2-OrdersLab"):
        cfn(lab).create_change_set(
            StackName="p2-OrdersLab", ChangeSetName="other", ChangeSetType="UPDATE", TemplateBody=body,
            Parameters=[{"ParameterKey": "Prefix", "ParameterValue": "p2"}],
        )  # fmt: skip
