"""Small helpers shared by the resource modules and the grader: error codes, ARNs, tags."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from labkit.errors import AccessError

ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "InvalidClientTokenId"}
)
T = TypeVar("T")
# SQS answers a missing queue with the JSON protocol's code, or the query protocol's older one.
SQS_NOT_FOUND_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def raise_if_denied(exc: ClientError, resource: str, action: str) -> None:
    """Turn an access-denied error into an AccessError that names the resource and the fix."""
    if error_code(exc) in ACCESS_DENIED_CODES:
        raise AccessError(
            f"Access denied while trying to {action} {resource}: the credentials in use lack that permission. "
            "Use an account or role that may manage DynamoDB, SNS, SQS, Lambda and IAM."
        ) from exc


def found_or_none(read: Callable[[], T], missing: tuple[str, ...] | frozenset[str], resource: str) -> T | None:
    """*read*'s answer, or None when AWS answers that *resource* does not exist (an error code in *missing*).

    A refusal becomes an AccessError naming *resource* (`raise_if_denied`); any other error is raised as is.
    """
    try:
        return read()
    except ClientError as exc:
        if error_code(exc) in missing:
            return None
        raise_if_denied(exc, resource, "read")
        raise


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """Tags in the Key/Value list form that DynamoDB, SNS and IAM take."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def arn(service: str, region: str, account: str, resource: str) -> str:
    """Build an ARN of the form AWS documents for SNS, SQS, Lambda and DynamoDB."""
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    """Yield every item under *key* across all pages of a paginated call."""
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])
