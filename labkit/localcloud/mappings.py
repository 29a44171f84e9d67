"""SQS event source mappings checked as Lambda checks them at CreateEventSourceMapping / Update.

moto accepts mappings AWS refuses, and the local Lambda service then polls them and does nothing
useful (a BatchSize of 100 without a batching window). Refused here with AWS's codes and messages:

- BatchSize out of 1-10,000: `ValidationException` (the API's range,
  https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html);
- BatchSize above 10 on a standard queue without `MaximumBatchingWindowInSeconds`:
  `InvalidParameterValueException` "Maximum batch window in seconds must be greater than 0 if
  maximum batch size is greater than 10"
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html);
- a queue visibility timeout shorter than the function's timeout: `InvalidParameterValueException`
  "Queue visibility timeout: X seconds is less than Function timeout: Y seconds"
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html);
- a second mapping of the same queue to the same function (also while the first is Deleting):
  `ResourceConflictException` (409) "An event source mapping with SQS arn (" <arn> ") and function
  (" <name> ") already exists. Please update or delete the existing mapping with UUID <uuid>"
  (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html#API_CreateEventSourceMapping_Errors);
- an execution role that may not call ReceiveMessage, DeleteMessage or GetQueueAttributes on the
  queue: `InvalidParameterValueException` "The function execution role does not have permissions
  to call ReceiveMessage on SQS" (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions).
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.iam.models import iam_backends
from moto.sqs.models import Queue, sqs_backends

from labkit.localcloud import mappingstates, policy
from labkit.localcloud.patching import Patch, PatchTable, gone_lines

MAX_BATCH_SIZE = 10_000
MAX_BATCH_SIZE_WITHOUT_WINDOW = 10
# What Lambda's pollers call on the queue, in the order AWS names the first one missing.
REQUIRED_SQS_ACTIONS = ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
BATCH_WINDOW_MESSAGE = "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"

_originals: dict[str, Any] = {}


class MappingExists(LambdaClientError):
    """CreateEventSourceMapping's answer when the queue already triggers the function."""

    code = 409

    def __init__(self, queue_arn: str, function_name: str, uuid: str) -> None:
        super().__init__(
            "ResourceConflictException",
            f'An event source mapping with SQS arn (" {queue_arn} ") and function (" {function_name} ") '
            f"already exists. Please update or delete the existing mapping with UUID {uuid}",
        )


def check_batching(batch_size: int | None, window: int | None, fifo: bool) -> None:
    """Raise AWS's error for a batch size the queue type and batching window do not allow."""
    if batch_size is None:
        return
    if batch_size > MAX_BATCH_SIZE:
        raise LambdaClientError(
            "ValidationException",
            f"1 validation error detected: Value '{batch_size}' at 'batchSize' failed to satisfy constraint: "
            f"Member must have value less than or equal to {MAX_BATCH_SIZE}",
        )
    if batch_size < 1:
        raise LambdaClientError(
            "ValidationException",
            f"1 validation error detected: Value '{batch_size}' at 'batchSize' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
        )
    if not fifo and batch_size > MAX_BATCH_SIZE_WITHOUT_WINDOW and not window:
        raise InvalidParameterValueException(BATCH_WINDOW_MESSAGE)


def check_visibility(queue: Queue, function: LambdaFunction) -> None:
    """Raise AWS's error if the queue hides a message for less time than the function may run."""
    visibility = int(queue.visibility_timeout)  # type: ignore[attr-defined]  # moto sets it from BASE_ATTRIBUTES
    timeout = int(function.timeout)
    if visibility < timeout:
        raise InvalidParameterValueException(
            f"Queue visibility timeout: {visibility} seconds is less than Function timeout: {timeout} seconds"
        )


def missing_permission(role_arn: str, queue: Queue) -> str | None:
    """The first SQS action Lambda's poller needs that *role_arn* may not call on *queue*, or None.

    The role's inline and attached policies are read; in the queue's own account its access policy
    may grant the role as well. An explicit Deny in either wins. A role the local IAM does not
    know is not judged (None).
    """
    parts = role_arn.split(":")
    if len(parts) < 6:
        return None
    account, partition = parts[4], parts[1]
    try:
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception:  # moto's NotFoundException; AWS's CreateFunction already refused an unknown role
        return None
    identity = list(role.policies.values()) + [
        version.document
        for managed in role.managed_policies.values()
        for version in managed.versions
        if version.is_default
    ]
    principals = {"AWS": [role_arn, f"arn:{partition}:iam::{account}:root", account]}
    for action in REQUIRED_SQS_ACTIONS:
        by_role = policy.evaluate(identity, f"sqs:{action}", queue.queue_arn)
        by_queue = policy.evaluate([queue.policy], f"sqs:{action}", queue.queue_arn, principals=principals)
        if policy.DENY in (by_role, by_queue) or policy.ALLOW not in (by_role, by_queue):
            return action
    return None


def check_role(function: LambdaFunction, queue: Queue) -> None:
    """Raise AWS's error if the function's role may not poll *queue*."""
    action = missing_permission(function.role, queue)
    if action is not None:
        raise InvalidParameterValueException(
            f"The function execution role does not have permissions to call {action} on SQS"
        )


def _sqs_queue(backend: LambdaBackend, arn: str) -> Queue | None:
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    queue: Queue | None = sqs_backends[backend.account_id][backend.region_name].queues.get(parts[5])
    return queue if queue is not None and queue.queue_arn == arn else None


def _window(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _create(self: LambdaBackend, spec: dict[str, Any]) -> Any:
    queue = _sqs_queue(self, str(spec.get("EventSourceArn") or ""))
    if queue is not None and spec.get("FunctionName"):
        check_batching(spec.get("BatchSize"), _window(spec.get("MaximumBatchingWindowInSeconds")), queue.fifo_queue)
        function = self.get_function(spec["FunctionName"])
        check_unique(self, queue, function)
        check_visibility(queue, function)
        check_role(function, queue)
    return _originals["create"](self, spec)


def check_unique(backend: LambdaBackend, queue: Queue, function: LambdaFunction) -> None:
    """Refuse a second trigger from *queue* to *function*, as AWS does."""
    existing = [*backend._event_source_mappings.values(), *mappingstates.deleting_mappings(backend).values()]
    for mapping in existing:
        if mapping.event_source_arn == queue.queue_arn and mapping.function_arn == function.function_arn:
            raise MappingExists(queue.queue_arn, function.function_name, mapping.uuid)


def _update(self: LambdaBackend, uuid: str, spec: dict[str, Any]) -> Any:
    mapping = self.get_event_source_mapping(uuid)
    queue = _sqs_queue(self, mapping.event_source_arn) if mapping is not None else None
    if mapping is not None and queue is not None:
        batch_size = spec.get("BatchSize", mapping.batch_size)
        window = _window(spec.get("MaximumBatchingWindowInSeconds", mapping.max_batch_window))
        check_batching(batch_size, window, queue.fifo_queue)
        if spec.get("FunctionName"):
            function = self.get_function(spec["FunctionName"])
            check_visibility(queue, function)
            check_role(function, queue)
    return _originals["update"](self, uuid, spec)


_PATCHES = PatchTable(
    Patch(LambdaBackend, "create_event_source_mapping", _create),
    Patch(LambdaBackend, "update_event_source_mapping", _update),
)


def install() -> None:
    """Validate SQS mappings before moto creates or updates them (wraps what is installed now)."""
    _originals["create"] = LambdaBackend.create_event_source_mapping
    _originals["update"] = LambdaBackend.update_event_source_mapping
    _PATCHES.install()


def problems() -> list[str]:
    """What moto no longer has that this module wraps or reads."""
    return _PATCHES.missing() + gone_lines(
        ((LambdaBackend, "get_event_source_mapping"), (LambdaBackend, "get_function"))
    )
