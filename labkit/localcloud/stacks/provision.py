"""What every provisioner shares: the context it works in, names it generates, and how it fails.

A provisioner creates one resource type through the local cloud's public API and deletes it again.
A refusal from that API fails the resource with the reason CloudFormation's resource handlers give
("Resource handler returned message: ... (HandlerErrorCode: InvalidRequest)"); a property the
provisioner does not implement fails it too, by name, so a stack never completes without it.
https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-test-contract-errors.html
"""

from __future__ import annotations

import json
import random
import string
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from labkit.session import Clients

# https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-test-contract-errors.html
_HANDLER_CODES = {
    "AlreadyExists": (
        "ResourceConflictException",
        "EntityAlreadyExists",
        "QueueAlreadyExists",
        "ResourceInUseException",
    ),
    "NotFound": ("ResourceNotFoundException", "NoSuchEntity", "NotFound", "QueueDoesNotExist", "NonExistentQueue"),
    "AccessDenied": ("AccessDenied", "AccessDeniedException", "AuthorizationError"),
    "Throttling": ("Throttling", "ThrottlingException", "TooManyRequestsException"),
    "ServiceLimitExceeded": ("LimitExceeded", "LimitExceededException"),
}
_SERVICE_NAMES = {"dynamodb": "DynamoDb", "sns": "Sns", "sqs": "Sqs", "iam": "Iam", "lambda": "Lambda"}


class ProvisionError(Exception):
    """A resource could not be created or deleted; the message is its ResourceStatusReason."""


@dataclass
class Created:
    """What a provisioner made: the physical id (what Ref returns) and the Fn::GetAtt attributes."""

    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Where a stack's resources are made: the local cloud's clients and the stack's identity."""

    clients: Clients
    stack_name: str
    stack_id: str
    account: str
    region: str
    stopping: threading.Event

    def name_for(self, logical_id: str, limit: int, suffix: str = "") -> str:
        """A physical name as CloudFormation generates one: stack name, logical id and a random tail."""
        tail = "".join(random.choices(string.ascii_uppercase + string.digits, k=12))
        head = f"{self.stack_name}-{logical_id}"[: max(1, limit - len(tail) - len(suffix) - 1)]
        return f"{head}-{tail}{suffix}"

    def arn(self, service: str, resource: str) -> str:
        """An ARN in this stack's account and region."""
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


@dataclass(frozen=True)
class Provisioner:
    """Creates and deletes one resource type, implementing the properties listed."""

    type: str
    properties: frozenset[str]
    create: Callable[[Context, str, dict[str, Any]], Created]
    delete: Callable[[Context, Created, dict[str, Any]], None]


def handler_message(exc: ClientError, service: str) -> str:
    """A refusal of the API, worded as a CloudFormation resource handler reports it."""
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = str(error.get("Code", ""))
    handler = next((h for h, codes in _HANDLER_CODES.items() if any(c in code for c in codes)), None)
    if handler is None:
        handler = "InvalidRequest" if meta.get("HTTPStatusCode", 400) < 500 else "GeneralServiceException"
    detail = (
        f"{error.get('Message') or code} (Service: {_SERVICE_NAMES.get(service, service)}, "
        f"Status Code: {meta.get('HTTPStatusCode', 400)}, Request ID: {meta.get('RequestId') or uuid.uuid4()})"
    )
    return f'Resource handler returned message: "{detail}" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: {handler})'


def calling(service: str, call: Callable[[], Any]) -> Any:
    """Run one API call of *service*; a refusal becomes a ProvisionError in the handler's words."""
    try:
        return call()
    except ClientError as exc:
        raise ProvisionError(handler_message(exc, service)) from exc


def already_exists(type_name: str, identifier: str) -> ProvisionError:
    """The reason CloudFormation gives when a named resource exists already."""
    return ProvisionError(f"Resource of type '{type_name}' with identifier '{identifier}' already exists.")


def as_text(value: Any) -> str:
    """A property value as an attribute string: JSON for objects and lists (policies), else str()."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def tag_list(tags: Mapping[str, str] | list[dict[str, str]] | None) -> list[dict[str, str]]:
    """Tags as a Key/Value list, from either form a template may give."""
    if not tags:
        return []
    if isinstance(tags, Mapping):
        return [{"Key": k, "Value": str(v)} for k, v in tags.items()]
    return [{"Key": t["Key"], "Value": str(t["Value"])} for t in tags]


def tag_map(tags: Mapping[str, str] | list[dict[str, str]] | None) -> dict[str, str]:
    """Tags as a mapping, from either form a template may give."""
    return {t["Key"]: t["Value"] for t in tag_list(tags)}


def exists(read: Callable[[], object], *missing: str) -> bool:
    """True if *read* (a describe or get call) finds the resource; False if AWS answers one of *missing*."""
    try:
        read()
    except ClientError as exc:
        if gone(exc, *missing):
            return False
        raise
    return True


def gone(exc: ClientError, *codes: str) -> bool:
    """True if *exc* says the resource no longer exists (deleting it is then done)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return any(c in code for c in codes)
