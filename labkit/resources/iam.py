"""The Lambda execution role: trust policy, permissions (the seed's managed policies or least privilege)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code, found_or_none, tag_list
from labkit.config import (
    BASIC_EXECUTION_POLICY_ARN,
    INLINE_POLICY_NAME,
    MANAGED_POLICY_ARNS,
    ROLE_POLICY_LEAST,
    Config,
)
from labkit.session import Clients

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoleInfo:
    """The execution role's name, ARN and the policy mode it carries."""

    name: str
    arn: str
    policy: str


def lambda_trust_policy() -> dict[str, Any]:
    """The trust policy that lets the Lambda service assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def least_privilege_policy(table_arn: str, queue_arn: str, log_group_arn: str) -> dict[str, Any]:
    """The least the handler needs: write this table, consume this queue, write its own logs."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOrders",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
                "Resource": table_arn,
            },
            {
                "Sid": "ConsumeOrderQueue",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": queue_arn,
            },
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group_arn, f"{log_group_arn}:*"],
            },
        ],
    }


def log_group_arn(config: Config, account_id: str) -> str:
    """The ARN of the function's CloudWatch log group."""
    return f"arn:aws:logs:{config.region}:{account_id}:log-group:/aws/lambda/{config.function_name}"


def ensure_role(config: Config, clients: Clients, table_arn: str, queue_arn: str) -> RoleInfo:
    """Create the execution role unless it exists, and give it the permissions the config asks for.

    Args:
        config: the role's name and `role_policy` (`managed` as in the seed, or `least-privilege`).
        clients: boto3 clients for the backend.
        table_arn: the orders table, for the least-privilege policy.
        queue_arn: the order queue, for the least-privilege policy.
    Returns:
        The role's name, ARN and policy mode.
    """
    iam = clients("iam")
    name = config.role_name
    role = found_or_none(lambda: iam.get_role(RoleName=name)["Role"], ("NoSuchEntity",), f"role {name}")
    if role is None:
        log.info("creating role %s", name)
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(lambda_trust_policy()),
            Description="Execution role of the Orders Lab order processor",
            Tags=tag_list(config.tags),
        )["Role"]
        iam.get_waiter("role_exists").wait(RoleName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    if config.role_policy == ROLE_POLICY_LEAST:
        wanted_managed = {BASIC_EXECUTION_POLICY_ARN}
        inline = least_privilege_policy(table_arn, queue_arn, log_group_arn(config, clients.account_id))
    else:
        wanted_managed = set(MANAGED_POLICY_ARNS)
        inline = None
    _converge_managed(iam, name, wanted_managed)
    _converge_inline(iam, name, inline)
    return RoleInfo(name=name, arn=role["Arn"], policy=config.role_policy)


def _converge_managed(iam: Any, role: str, wanted: set[str]) -> None:
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}
    for policy_arn in sorted(wanted - attached):
        iam.attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    for policy_arn in sorted((attached - wanted) & set(MANAGED_POLICY_ARNS)):
        iam.detach_role_policy(RoleName=role, PolicyArn=policy_arn)


def _converge_inline(iam: Any, role: str, document: dict[str, Any] | None) -> None:
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    if document is None:
        if INLINE_POLICY_NAME in names:
            iam.delete_role_policy(RoleName=role, PolicyName=INLINE_POLICY_NAME)
        return
    if INLINE_POLICY_NAME in names:
        current = iam.get_role_policy(RoleName=role, PolicyName=INLINE_POLICY_NAME)["PolicyDocument"]
        if isinstance(current, str):
            current = json.loads(current)
        if current == document:
            return
    iam.put_role_policy(RoleName=role, PolicyName=INLINE_POLICY_NAME, PolicyDocument=json.dumps(document))


def delete_role(config: Config, clients: Clients) -> bool:
    """Detach and delete the role's policies, then the role; True if it existed."""
    iam = clients("iam")
    name = config.role_name
    try:
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return False
        raise
    for policy in attached:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    iam.delete_role(RoleName=name)
    return True
