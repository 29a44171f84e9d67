"""Provisioners of the pipeline's compute: the execution role, the function and its event source mapping.

As CloudFormation's handlers do, a function is complete once it is Active and a mapping once it
is Enabled or Disabled, so a stack that completes has a pipeline that runs
(https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html). Return values and attributes:
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-role.html,
aws-resource-lambda-function.html, aws-resource-lambda-eventsourcemapping.html.
"""

from __future__ import annotations

import io
import time
import zipfile
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from labkit.localcloud.stacks.provision import (
    Context,
    Created,
    Provisioner,
    ProvisionError,
    already_exists,
    as_text,
    calling,
    exists,
    gone,
    tag_list,
    tag_map,
)

ROLE = "AWS::IAM::Role"
FUNCTION = "AWS::Lambda::Function"
MAPPING = "AWS::Lambda::EventSourceMapping"
_ROLE_OPTIONAL = ("Description", "MaxSessionDuration", "Path", "PermissionsBoundary")
_FUNCTION_DIRECT = (
    "Architectures",
    "DeadLetterConfig",
    "Description",
    "Environment",
    "EphemeralStorage",
    "Handler",
    "Layers",
    "LoggingConfig",
    "MemorySize",
    "PackageType",
    "Role",
    "Runtime",
    "Timeout",
    "TracingConfig",
)
_MAPPING_DIRECT = (
    "BatchSize",
    "Enabled",
    "EventSourceArn",
    "FilterCriteria",
    "FunctionName",
    "FunctionResponseTypes",
    "MaximumBatchingWindowInSeconds",
    "ScalingConfig",
)
_WAIT = {"Delay": 0.2, "MaxAttempts": 300}
# CloudFormation's handlers wait for a mapping to leave Creating/Deleting; far beyond the local delay.
_SETTLE_S = 120.0


def _create_role(context: Context, logical_id: str, props: dict[str, Any]) -> Created:
    iam = context.clients("iam")
    name = props.get("RoleName") or context.name_for(logical_id, 64)
    if props.get("RoleName") and exists(lambda: iam.get_role(RoleName=name), "NoSuchEntity"):
        raise already_exists(ROLE, name)
    request: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": as_text(props["AssumeRolePolicyDocument"]),
        **{k: props[k] for k in _ROLE_OPTIONAL if k in props},
    }
    if props.get("Tags"):
        request["Tags"] = tag_list(props["Tags"])
    role = calling("iam", lambda: iam.create_role(**request))["Role"]
    for arn in props.get("ManagedPolicyArns") or []:
        calling("iam", partial(iam.attach_role_policy, RoleName=name, PolicyArn=arn))
    for policy in props.get("Policies") or []:
        document = as_text(policy["PolicyDocument"])
        calling(
            "iam", partial(iam.put_role_policy, RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=document)
        )
    return Created(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


def _delete_role(context: Context, created: Created, props: dict[str, Any]) -> None:
    iam = context.clients("iam")
    name = created.physical_id
    try:
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if not gone(exc, "NoSuchEntity"):
            raise


def _code(props: dict[str, Any], runtime: str) -> dict[str, Any]:
    code = dict(props["Code"])
    if "ImageUri" in code:
        raise ProvisionError(
            "labkit's local cloud runs zip packages only, not container images (Code.ImageUri): give Code.S3Bucket "
            "and Code.S3Key (aws cloudformation package does), or Code.ZipFile."
        )
    if "ZipFile" in code:
        # CloudFormation writes inline code to a file named index (index.py for Python) and zips it.
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("index.py" if runtime.startswith("python") else "index.js", code["ZipFile"])
        return {"ZipFile": buffer.getvalue()}
    return {k: code[k] for k in ("S3Bucket", "S3Key", "S3ObjectVersion") if k in code}


def _create_function(context: Context, logical_id: str, props: dict[str, Any]) -> Created:
    lam = context.clients("lambda")
    name = props.get("FunctionName") or context.name_for(logical_id, 64)
    if props.get("FunctionName") and exists(
        lambda: lam.get_function_configuration(FunctionName=name), "ResourceNotFoundException"
    ):
        raise already_exists(FUNCTION, name)
    request: dict[str, Any] = {
        "FunctionName": name,
        "Code": _code(props, str(props.get("Runtime", ""))),
        **{k: props[k] for k in _FUNCTION_DIRECT if k in props},
    }
    if props.get("Tags"):
        request["Tags"] = tag_map(props["Tags"])
    function = calling("lambda", lambda: lam.create_function(**request))
    calling("lambda", lambda: lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=_WAIT))
    if "ReservedConcurrentExecutions" in props:
        calling(
            "lambda",
            lambda: lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
            ),
        )
    return Created(name, {"Arn": function["FunctionArn"]})


def _delete_function(context: Context, created: Created, props: dict[str, Any]) -> None:
    try:
        context.clients("lambda").delete_function(FunctionName=created.physical_id)
    except ClientError as exc:
        if not gone(exc, "ResourceNotFoundException"):
            raise


def _create_mapping(context: Context, logical_id: str, props: dict[str, Any]) -> Created:
    lam = context.clients("lambda")
    request = {k: props[k] for k in _MAPPING_DIRECT if k in props}
    if props.get("Tags"):
        request["Tags"] = tag_map(props["Tags"])
    mapping = calling("lambda", lambda: lam.create_event_source_mapping(**request))
    uuid = mapping["UUID"]
    created = Created(
        uuid, {"Id": uuid, "EventSourceMappingArn": context.arn("lambda", f"event-source-mapping:{uuid}")}
    )
    _wait_mapping(context, uuid, lambda state: state in ("Enabled", "Disabled"))
    return created


def _delete_mapping(context: Context, created: Created, props: dict[str, Any]) -> None:
    lam = context.clients("lambda")
    try:
        lam.delete_event_source_mapping(UUID=created.physical_id)
    except ClientError as exc:
        if gone(exc, "ResourceNotFoundException"):
            return
        raise
    _wait_mapping(context, created.physical_id, lambda state: state == "")


def _wait_mapping(context: Context, uuid: str, settled: Any) -> None:
    """Wait until the mapping's state satisfies *settled* ("" once it is gone)."""
    lam = context.clients("lambda")
    deadline = time.monotonic() + _SETTLE_S
    while not context.stopping.is_set():
        try:
            state = lam.get_event_source_mapping(UUID=uuid)["State"]
        except ClientError as exc:
            if not gone(exc, "ResourceNotFoundException"):
                raise ProvisionError(str(exc)) from exc
            state = ""
        if settled(state):
            return
        if time.monotonic() > deadline:
            raise ProvisionError(f"Resource of type '{MAPPING}' with identifier '{uuid}' did not stabilize.")
        time.sleep(0.05)


PROVISIONERS = (
    Provisioner(
        ROLE,
        frozenset(("RoleName", "AssumeRolePolicyDocument", "ManagedPolicyArns", "Policies", "Tags", *_ROLE_OPTIONAL)),
        _create_role,
        _delete_role,
    ),
    Provisioner(
        FUNCTION,
        frozenset(("FunctionName", "Code", "Tags", "ReservedConcurrentExecutions", *_FUNCTION_DIRECT)),
        _create_function,
        _delete_function,
    ),
    Provisioner(MAPPING, frozenset(("Tags", *_MAPPING_DIRECT)), _create_mapping, _delete_mapping),
)
