"""The pipeline as code with the real AWS CLI against `labkit serve`: package, deploy, grade, fail, delete.

`aws cloudformation deploy` waits 30 s before its first look at a stack it is creating (its waiter's
delay), so the three deploys run side by side. Select with `-m awscli`, leave out with `-m 'not awscli'`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cli import Cli, served

from labkit import iac
from labkit.cfnyaml import dump_template, load_template

pytestmark = [pytest.mark.awscli, pytest.mark.slow]

LABKIT = Path(sys.executable).with_name("labkit")
# The probe's bad message is received three times: a second's visibility each (below AWS's 6x: a warning only).
SHORT = ["FunctionTimeout=1", "VisibilityTimeout=1"]
# The plain template: moto's own CloudFormation listed its QueuePolicy and Subscription with no ids and made neither.
PLAIN = """
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: plain-Orders
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: orderId, AttributeType: S}]
      KeySchema: [{AttributeName: orderId, KeyType: HASH}]
  Topic:
    Type: AWS::SNS::Topic
    Properties: {TopicName: plain-OrderTopic}
  DLQ:
    Type: AWS::SQS::Queue
    Properties: {QueueName: plain-OrderDLQ}
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: plain-OrderQueue
      RedrivePolicy: {deadLetterTargetArn: !GetAtt DLQ.Arn, maxReceiveCount: 3}
  QueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Queue]
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: sns.amazonaws.com}, Action: sqs:SendMessage,
             Resource: !GetAtt Queue.Arn, Condition: {ArnEquals: {aws:SourceArn: !Ref Topic}}}
  Subscription:
    Type: AWS::SNS::Subscription
    Properties: {TopicArn: !Ref Topic, Protocol: sqs, Endpoint: !GetAtt Queue.Arn}
"""


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """`labkit serve` on a free port in its own process; `aws cloudformation package` uploads with a client of its
    own that reads only AWS_ENDPOINT_URL."""
    with served(tmp_path, AWS_ENDPOINT_URL="{endpoint}") as runner:
        yield runner


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=180)
    return process.returncode, out + err


def test_the_template_deploys_grades_fails_and_deletes_through_the_aws_cli(cli, tmp_path):
    """`aws cloudformation package` + `deploy` of infra/template.yaml reaches CREATE_COMPLETE and `labkit grade`
    gives full marks with the probe; a role without SQS permissions ends ROLLBACK_COMPLETE with AWS's reason;
    a plain template's queue policy and subscription are made and listed; `delete-stack` removes everything.
    https://docs.aws.amazon.com/cli/latest/reference/cloudformation/deploy/
    https://docs.aws.amazon.com/cli/latest/reference/cloudformation/package.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html"""
    cli("s3api", "create-bucket", "--bucket", "artifacts")
    packaged = tmp_path / "packaged.yaml"
    cli("cloudformation", "package", "--template-file", str(iac.TEMPLATE_PATH), "--s3-bucket", "artifacts",
        "--output-template-file", str(packaged))  # fmt: skip
    assert load_template(packaged.read_text())["Resources"]["OrderProcessor"]["Properties"]["CodeUri"].startswith(
        "s3://artifacts/"
    )
    broken = load_template(packaged.read_text())
    statements = broken["Resources"]["OrderProcessorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s["Sid"] != "ConsumeOrderQueue"]
    (tmp_path / "broken.yaml").write_text(dump_template(broken))
    (tmp_path / "plain.yaml").write_text(PLAIN)

    deploys = {
        "p2": cli.start("cloudformation", "deploy", "--template-file", str(packaged), "--stack-name", "p2-OrdersLab",
                        "--capabilities", "CAPABILITY_IAM", "--parameter-overrides", "Prefix=p2", *SHORT),
        "p5": cli.start("cloudformation", "deploy", "--template-file", str(tmp_path / "broken.yaml"),
                        "--stack-name", "p5-OrdersLab", "--capabilities", "CAPABILITY_IAM",
                        "--parameter-overrides", "Prefix=p5", *SHORT),
        "plain": cli.start("cloudformation", "deploy", "--template-file", str(tmp_path / "plain.yaml"),
                           "--stack-name", "plain"),
    }  # fmt: skip
    finished = {name: finish(process) for name, process in deploys.items()}

    # The pipeline: CREATE_COMPLETE, the function the transform made, full marks with the probe.
    assert finished["p2"][0] == 0, finished["p2"][1]
    assert "Successfully created/updated stack - p2-OrdersLab" in finished["p2"][1]
    assert cli("lambda", "list-functions")["Functions"][0]["FunctionName"] == "p2-OrderProcessor"
    grading_env = {**cli.env, "LABKIT_PREFIX": "p2"}
    subprocess.run([str(LABKIT), "publish", "--sample"], env=grading_env, check=True, capture_output=True, timeout=60)
    graded = subprocess.run(
        [str(LABKIT), "grade", "--json"], env=grading_env, capture_output=True, text=True, timeout=120
    )
    report = json.loads(graded.stdout)
    assert (graded.returncode, report["score"]) == (0, report["max_score"]), graded.stdout

    # The role without SQS permissions: the deploy fails, the stack rolled back, with AWS's reason.
    assert finished["p5"][0] != 0
    assert "Failed to create/update the stack" in finished["p5"][1]
    stack = cli("cloudformation", "describe-stacks", "--stack-name", "p5-OrdersLab")["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert stack["StackStatusReason"] == (
        "The following resource(s) failed to create: [OrderProcessorOrderQueue]. Rollback requested by user."
    )
    events = cli("cloudformation", "describe-stack-events", "--stack-name", "p5-OrdersLab")["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert "does not have permissions to call ReceiveMessage on SQS" in failed["ResourceStatusReason"]
    rolled = {e["LogicalResourceId"] for e in events if e["ResourceStatus"] == "DELETE_COMPLETE"}
    assert {"OrdersTable", "OrderTopic", "OrderQueue", "OrderDLQ", "OrderProcessor", "OrderProcessorRole"} <= rolled

    # The plain template: every resource with its ids and events, the policy and the subscription made.
    assert finished["plain"][0] == 0, finished["plain"][1]
    resources = cli("cloudformation", "list-stack-resources", "--stack-name", "plain")["StackResourceSummaries"]
    assert sorted(r["LogicalResourceId"] for r in resources if r.get("PhysicalResourceId")) == [
        "DLQ", "Queue", "QueuePolicy", "Subscription", "Table", "Topic"
    ]  # fmt: skip
    plain_events = cli("cloudformation", "describe-stack-events", "--stack-name", "plain")["StackEvents"]
    assert (
        len(plain_events) == 3 + 3 * 6
    )  # the stack's REVIEW_, CREATE_IN_PROGRESS and CREATE_COMPLETE; three per resource
    url = cli("sqs", "get-queue-url", "--queue-name", "plain-OrderQueue")["QueueUrl"]
    policy = cli("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "Policy")["Attributes"]
    assert "plain-OrderTopic" in policy["Policy"]
    subscriptions = cli("sns", "list-subscriptions")["Subscriptions"]
    assert any(s["TopicArn"].endswith(":plain-OrderTopic") and s["Protocol"] == "sqs" for s in subscriptions)

    # delete-stack removes all the stack made.
    cli("cloudformation", "delete-stack", "--stack-name", "p2-OrdersLab")
    deadline = time.monotonic() + 60
    while cli("lambda", "list-functions")["Functions"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cli("lambda", "list-functions")["Functions"] == []
    summaries = cli("cloudformation", "list-stacks")["StackSummaries"]
    while time.monotonic() < deadline and any(
        s["StackName"] == "p2-OrdersLab" and s["StackStatus"] != "DELETE_COMPLETE" for s in summaries
    ):
        time.sleep(0.2)
        summaries = cli("cloudformation", "list-stacks")["StackSummaries"]
    assert [s["StackStatus"] for s in summaries if s["StackName"] == "p2-OrdersLab"] == ["DELETE_COMPLETE"]
    assert not any(q.endswith("/p2-OrderQueue") for q in (cli("sqs", "list-queues") or {}).get("QueueUrls", []))
