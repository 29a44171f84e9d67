"""Deploying test functions with plain boto3, as a console user would: a trust policy and a zip."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


# What AWS requires of a role before it lets an SQS trigger poll for it.
SQS_TRIGGER_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": "*",
            }
        ],
    }
)


def create_role(iam, name: str) -> str:
    """A role Lambda may assume, allowed to poll SQS; returns its ARN."""
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="poll-sqs", PolicyDocument=SQS_TRIGGER_POLICY)
    return arn


def package(files: dict[str, str]) -> bytes:
    """A deployment package holding *files* (name to source)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def create_function(lam: Any, name: str, role: str, source: str, timeout: int = 3, **extra: Any) -> str:
    """A python3.12 function whose package holds *source* as code.py (and `files=` beside it); returns its name.

    *extra* goes to CreateFunction as it is (MemorySize, Environment, ...).
    """
    files = {"code.py": source, **extra.pop("files", {})}
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="code.lambda_handler",
        Code={"ZipFile": package(files)},
        Timeout=timeout,
        **extra,
    )
    return name
