"""The grader tells a pipeline whose stack rolled back from one never deployed (it grades a completed stack's
pipeline like a hand-built one: tests/test_stacks.py and tests/test_iac.py give those full marks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit import iac
from labkit.cfnyaml import load_template
from labkit.config import Config
from labkit.experiments.scenarios import FAST
from labkit.grading.stacks import EXISTENCE_CHECKS, StackStory
from labkit.lab import Lab
from labkit.localcloud import LocalCloud


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    cloud = LocalCloud.in_process(Config.from_env({}, **FAST))
    yield Lab(cloud.config, cloud.clients, cloud=cloud)
    cloud.stop()


def test_a_rolled_back_stack_is_named_with_what_failed_and_why(lab):
    """The existence checks' messages name the stack, its ROLLBACK_COMPLETE, the resource that failed and AWS's
    reason (read from DescribeStackEvents), and how to redeploy; a prefix never deployed keeps the usual advice.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html"""
    template = load_template(iac.TEMPLATE_PATH.read_text())
    statements = template["Resources"]["OrderProcessorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s["Sid"] != "ConsumeOrderQueue"]
    template["Resources"]["OrderProcessor"]["Properties"]["CodeUri"] = str(iac.TEMPLATE_PATH.parent.parent / "lambda")
    assert lab.deploy_stack(template, prefix="p6").status == "ROLLBACK_COMPLETE"

    rolled_back = lab.for_prefix("p6").grade(probe=False)
    for check in EXISTENCE_CHECKS:
        message = rolled_back.result(check).message
        assert not rolled_back.result(check).passed
        assert "CloudFormation stack p6-OrdersLab tried to create it and is ROLLBACK_COMPLETE: " in message
        assert (
            "OrderProcessorOrderQueue (AWS::Lambda::EventSourceMapping) failed: Resource handler returned message"
            in message
        )
        assert "permissions to call ReceiveMessage on SQS" in message
        assert "aws cloudformation delete-stack --stack-name p6-OrdersLab" in message

    never = lab.for_prefix("p7").grade(probe=False)
    assert never.result("table.exists").message == (
        "Table p7-Orders does not exist: create it first (step 1, partition key orderId, String)."
    )
    assert all("CloudFormation" not in c.message for c in never.checks)


def test_a_stack_still_in_progress_says_to_wait():
    story = StackStory("s", "CREATE_IN_PROGRESS", "", ())
    assert story.sentence() == (
        "CloudFormation stack s is still CREATE_IN_PROGRESS: wait for it to finish "
        "(aws cloudformation describe-stacks --stack-name s)."
    )
