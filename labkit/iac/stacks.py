"""A template deployed as a stack through CloudFormation's change sets, waited for, read back and deleted.

The steps are those of `aws cloudformation deploy` and `sam deploy`: package local code, create a
change set of type CREATE, wait until it is ready (a transform's error fails it: that is the reason
given), execute it, wait until the stack settles
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets.html).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code, paginate
from labkit.cfnyaml import dump_template, load_template
from labkit.errors import NotReadyError, ResourceError
from labkit.iac.package import artifact_bucket, package_template
from labkit.session import Clients

# What `aws cloudformation deploy --capabilities` must acknowledge for the lab's template: an IAM role
# without a name, and the SAM transform.
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND")
# CloudFormation takes a template body of up to 51,200 bytes; a larger one goes by S3.
MAX_BODY_BYTES = 51_200
FAILED_EVENT_STATUSES = ("CREATE_FAILED", "DELETE_FAILED", "UPDATE_FAILED")


@dataclass(frozen=True)
class StackResult:
    """Where a stack ended: its status and reason, its outputs, and each resource that failed with why."""

    name: str
    stack_id: str
    status: str
    reason: str = ""
    outputs: Mapping[str, str] = field(default_factory=dict)
    failures: tuple[tuple[str, str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """True if the stack was created."""
        return self.status == "CREATE_COMPLETE"

    def describe(self) -> str:
        """One sentence: the status, and what failed and why."""
        if self.ok:
            return f"Stack {self.name} is {self.status}."
        failed = "; ".join(f"{logical} ({kind}): {reason}" for logical, kind, reason in self.failures)
        return f"Stack {self.name} is {self.status}: {self.reason or ''} {failed}".strip()


def read_template(template: Path | str | Mapping[str, Any]) -> tuple[dict[str, Any], Path]:
    """A template from a path (or its text, or a dict) and the folder its relative paths start from."""
    if isinstance(template, Mapping):
        return dict(template), Path.cwd()
    path = Path(template)
    if isinstance(template, str) and "\n" in template:
        return load_template(template), Path.cwd()
    return load_template(path.read_text(encoding="utf-8"), source=str(path)), path.resolve().parent


def deploy_stack(
    clients: Clients,
    template: Path | str | Mapping[str, Any],
    stack: str,
    parameters: Mapping[str, str] | None = None,
    capabilities: tuple[str, ...] = CAPABILITIES,
    wait: bool = True,
    timeout: float = 300,
) -> StackResult:
    """Deploy *template* as the new stack *stack*, as `aws cloudformation deploy` does.

    Args:
        clients: the backend's clients (S3 for the packaged code, CloudFormation).
        template: a template file, its text or its dict; local CodeUri/Code paths are relative to the file.
        stack: the stack's name; it must not exist yet (delete a stack before deploying it again).
        parameters: the template's parameters, e.g. {"Prefix": "p2"}.
        capabilities: what the request acknowledges (an IAM role, the SAM transform).
        wait: wait until the stack settles (CREATE_COMPLETE, ROLLBACK_COMPLETE...).
        timeout: seconds to wait.
    Returns:
        Where the stack ended (or CREATE_IN_PROGRESS without *wait*); a rollback is a result, not an error.
    Raises:
        ResourceError: the stack exists already, or its change set failed (the transform's reason).
    """
    body, base = read_template(template)
    _refuse_existing(clients, stack)
    packaged = package_template(body, base, clients)
    text = dump_template(packaged)
    cfn = clients("cloudformation")
    request: dict[str, Any] = {
        "StackName": stack,
        "ChangeSetName": f"labkit-{uuid.uuid4().hex[:12]}",
        "ChangeSetType": "CREATE",
        "Capabilities": list(capabilities),
        "Parameters": [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in (parameters or {}).items()],
    }
    if len(text.encode()) > MAX_BODY_BYTES:
        bucket = artifact_bucket(clients)
        key = f"{stack}-{uuid.uuid4().hex}.template"
        clients("s3").put_object(Bucket=bucket, Key=key, Body=text.encode())
        request["TemplateURL"] = f"https://{bucket}.s3.amazonaws.com/{key}"
    else:
        request["TemplateBody"] = text
    try:
        created = cfn.create_change_set(**request)
    except ClientError as exc:
        raise ResourceError(f"Stack {stack} was refused: {exc.response['Error'].get('Message', exc)}") from exc
    change_set = _wait_change_set(cfn, created["Id"], timeout)
    if change_set["Status"] == "FAILED":
        raise ResourceError(
            f"The change set of stack {stack} failed: {change_set.get('StatusReason', 'no reason given')}. "
            "Fix the template and deploy again."
        )
    cfn.execute_change_set(ChangeSetName=created["Id"])
    if not wait:
        return StackResult(stack, created["StackId"], "CREATE_IN_PROGRESS")
    return wait_for_stack(clients, created["StackId"], timeout)


def _refuse_existing(clients: Clients, stack: str) -> None:
    try:
        found = clients("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if error_code(exc) == "ValidationError":
            return
        raise
    if found["StackStatus"] == "REVIEW_IN_PROGRESS":
        return
    raise ResourceError(
        f"Stack {stack} exists already ({found['StackStatus']}): delete it first "
        f"(lab.delete_stack('{stack}'), or aws cloudformation delete-stack --stack-name {stack}), then deploy again."
    )


def _wait_change_set(cfn: Any, change_set_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        change_set: dict[str, Any] = cfn.describe_change_set(ChangeSetName=change_set_id)
        if change_set["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return change_set
        if time.monotonic() > deadline:
            raise NotReadyError(f"Change set {change_set_id} is still {change_set['Status']} after {timeout:.0f}s.")
        time.sleep(0.2)


def wait_for_stack(clients: Clients, stack: str, timeout: float = 300) -> StackResult:
    """Wait until *stack* (name or id) is no longer in progress; returns where it ended."""
    cfn = clients("cloudformation")
    deadline = time.monotonic() + timeout
    pause = 0.2 if clients.config.backend != "aws" else 5.0
    while True:
        found = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not found["StackStatus"].endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise NotReadyError(
                f"Stack {found['StackName']} is still {found['StackStatus']} after {timeout:.0f}s: "
                "watch its events (lab.stack_events) and wait longer."
            )
        time.sleep(pause)
    failures = tuple(
        (event["LogicalResourceId"], event["ResourceType"], event.get("ResourceStatusReason", ""))
        for event in reversed(list(paginate(cfn, "describe_stack_events", "StackEvents", StackName=found["StackId"])))
        if event["ResourceStatus"] in FAILED_EVENT_STATUSES and event["ResourceType"] != "AWS::CloudFormation::Stack"
    )
    return StackResult(
        name=found["StackName"],
        stack_id=found["StackId"],
        status=found["StackStatus"],
        reason=found.get("StackStatusReason", ""),
        outputs={o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])},
        failures=failures,
    )


def stack_events(clients: Clients, stack: str) -> list[dict[str, Any]]:
    """The stack's events, oldest first: time, resource, type, status, reason."""
    events = paginate(clients("cloudformation"), "describe_stack_events", "StackEvents", StackName=stack)
    return [
        {
            "time": event["Timestamp"],
            "resource": event["LogicalResourceId"],
            "type": event["ResourceType"],
            "status": event["ResourceStatus"],
            "reason": event.get("ResourceStatusReason", ""),
        }
        for event in reversed(list(events))
    ]


def stack_resources(clients: Clients, stack: str) -> list[dict[str, Any]]:
    """The stack's resources: logical id, type, physical id, status (and the reason of a failure)."""
    rows = paginate(clients("cloudformation"), "list_stack_resources", "StackResourceSummaries", StackName=stack)
    return [
        {
            "resource": row["LogicalResourceId"],
            "type": row["ResourceType"],
            "physical_id": row.get("PhysicalResourceId", ""),
            "status": row["ResourceStatus"],
            "reason": row.get("ResourceStatusReason", ""),
        }
        for row in rows
    ]


def delete_stack(clients: Clients, stack: str, wait: bool = True, timeout: float = 300) -> bool:
    """Delete *stack* and everything it made; True if it existed. Raises ResourceError if a resource stays."""
    cfn = clients("cloudformation")
    try:
        stack_id = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackId"]
    except ClientError as exc:
        if error_code(exc) == "ValidationError":
            return False
        raise
    cfn.delete_stack(StackName=stack_id)
    if not wait:
        return True
    result = wait_for_stack(clients, stack_id, timeout)
    if result.status != "DELETE_COMPLETE":
        raise ResourceError(f"{result.describe()} Delete what remains by hand, then delete the stack again.")
    return True
