"""Resource states as AWS reports them while a resource is being created or changed, and answer shapes.

AWS answers CreateTable with `CREATING`, CreateFunction with `Pending`, UpdateFunctionCode and
UpdateFunctionConfiguration with `LastUpdateStatus: InProgress`, and only later the settled state,
so the waiters a student is taught (`table_exists`, `function_active_v2`, `function_updated_v2`)
really wait. As on AWS, a function that is Pending cannot be invoked or updated, and one being
updated cannot be updated again, until the waiter would have returned (`ResourceConflictException`).
moto answers the settled state at once. Here each transition (and an event source mapping's, in
`mappingstates.py`) lasts `state_delay()` seconds
(`LABKIT_LOCAL_STATE_DELAY`, default `LOCAL_STATE_DELAY_S`), judged when the state is read, so no
thread or timer runs for it.

It also gives SQS `CreatedTimestamp` / `LastModifiedTimestamp` in whole epoch seconds, as AWS does
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html);
moto gives a fraction, which the AWS CLI's and SDKs' users then parse differently.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.sqs.models import Queue

from labkit.config import ENV_STATE_DELAY, LOCAL_STATE_DELAY_S
from labkit.localcloud.patching import Patch, PatchTable

# The wording AWS's GetFunctionConfiguration gives while a function is created or updated
# (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html).
FUNCTION_CREATING_REASON = "The function is being created."
FUNCTION_CREATING_CODE = "Creating"
TIMESTAMP_ATTRIBUTES = ("CreatedTimestamp", "LastModifiedTimestamp")

_original_table_describe = Table.describe
_original_create_table = DynamoDBBackend.create_table
_original_delete_table = DynamoDBBackend.delete_table
_original_function_configuration = LambdaFunction.get_configuration
_original_create_function = LambdaBackend.create_function
_original_update_code = LambdaFunction.update_function_code
_original_backend_update_code = LambdaBackend.update_function_code
_original_backend_update_configuration = LambdaBackend.update_function_configuration
_original_backend_invoke = LambdaBackend.invoke
_original_update_configuration = LambdaFunction.update_configuration
_original_queue_attributes = Queue.attributes


def state_delay() -> float:
    """Seconds a resource stays in its transitional state: `LABKIT_LOCAL_STATE_DELAY`, else the default."""
    raw = os.environ.get(ENV_STATE_DELAY, "").strip()
    if not raw:
        return LOCAL_STATE_DELAY_S
    try:
        value = float(raw)
    except ValueError:
        return LOCAL_STATE_DELAY_S
    return value if math.isfinite(value) and value >= 0 else LOCAL_STATE_DELAY_S


def moto_queue_attributes() -> Any:
    """The getter of moto's own `Queue.attributes`, whatever wraps it now."""
    return _original_queue_attributes.fget  # type: ignore[attr-defined]


def until() -> float:
    """When a transition that starts now ends."""
    return time.monotonic() + state_delay()


def _pending(resource: Any, name: str) -> bool:
    ends: float | None = getattr(resource, name, None)
    return ends is not None and time.monotonic() < ends


# DynamoDB: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html


def _create_table(self: DynamoDBBackend, name: str, *args: Any, **kwargs: Any) -> Table:
    table = _original_create_table(self, name, *args, **kwargs)
    table.labkit_creating_until = until()  # type: ignore[attr-defined]
    return table


def _delete_table(self: DynamoDBBackend, name: str) -> Table:
    table = _original_delete_table(self, name)
    table.labkit_deleting = True  # type: ignore[attr-defined]
    return table


def _table_describe(self: Table, base_key: str = "TableDescription") -> dict[str, Any]:
    result = _original_table_describe(self, base_key)
    if getattr(self, "labkit_deleting", False):
        result[base_key]["TableStatus"] = "DELETING"
    elif _pending(self, "labkit_creating_until"):
        result[base_key]["TableStatus"] = "CREATING"
    return result


# Lambda functions: https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html


def _create_function(self: LambdaBackend, spec: dict[str, Any]) -> LambdaFunction:
    function = _original_create_function(self, spec)
    ends = until()
    function.labkit_pending_until = ends  # type: ignore[attr-defined]
    # With Publish, moto answers with a copy; the stored $LATEST is the one later reads find.
    self.get_function(function.function_name).labkit_pending_until = ends  # type: ignore[attr-defined]
    return function


def _refuse_while_changing(function: LambdaFunction, invoking: bool) -> None:
    # AWS's wording: https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html lists the
    # operations that fail while Pending or while an update is InProgress.
    prefix = "The operation cannot be performed at this time."
    if _pending(function, "labkit_pending_until"):
        if invoking:
            message = f"{prefix} The function is currently in the following state: Pending"
        else:
            message = (
                f"{prefix} The resource {function.function_arn} is currently in the following state: 'Pending'. "
                f"StateReasonCode: '{FUNCTION_CREATING_CODE}'"
            )
        raise LambdaClientError("ResourceConflictException", message)
    if not invoking and _pending(function, "labkit_updating_until"):
        raise LambdaClientError(
            "ResourceConflictException", f"{prefix} An update is in progress for resource: {function.function_arn}"
        )


def _backend_update_code(self: LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
    _refuse_while_changing(self.get_function(function_name, qualifier), invoking=False)
    return _original_backend_update_code(self, function_name, qualifier, body)


def _backend_update_configuration(self: LambdaBackend, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
    _refuse_while_changing(self.get_function(function_name, qualifier), invoking=False)
    return _original_backend_update_configuration(self, function_name, qualifier, body)


def _backend_invoke(self: LambdaBackend, function_name: str, qualifier: str | None, *args: Any, **kwargs: Any) -> Any:
    # An update in progress still invokes: AWS runs the previous code and configuration meanwhile.
    _refuse_while_changing(self.get_function(function_name, qualifier), invoking=True)
    return _original_backend_invoke(self, function_name, qualifier, *args, **kwargs)


def _update_code(self: LambdaFunction, updated_spec: dict[str, Any]) -> dict[str, Any]:
    self.labkit_updating_until = until()  # type: ignore[attr-defined]
    return _original_update_code(self, updated_spec)


def _update_configuration(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
    self.labkit_updating_until = until()  # type: ignore[attr-defined]
    return _original_update_configuration(self, config_updates)


def _function_configuration(self: LambdaFunction, on_create: bool = False) -> dict[str, Any]:
    configuration = _original_function_configuration(self, on_create)
    if _pending(self, "labkit_pending_until"):
        configuration["State"] = "Pending"
        configuration["StateReason"] = FUNCTION_CREATING_REASON
        configuration["StateReasonCode"] = FUNCTION_CREATING_CODE
        configuration.pop("LastUpdateStatus", None)
    elif _pending(self, "labkit_updating_until"):
        configuration["LastUpdateStatus"] = "InProgress"
        configuration["LastUpdateStatusReason"] = FUNCTION_CREATING_REASON
        configuration["LastUpdateStatusReasonCode"] = FUNCTION_CREATING_CODE
    return configuration


def _queue_attributes(self: Queue) -> dict[str, Any]:
    attributes: dict[str, Any] = _original_queue_attributes.fget(self)  # type: ignore[attr-defined]
    for name in TIMESTAMP_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, float):
            attributes[name] = int(value)
    return attributes


_PATCHES = PatchTable(
    Patch(Table, "describe", _table_describe),
    Patch(DynamoDBBackend, "create_table", _create_table),
    Patch(DynamoDBBackend, "delete_table", _delete_table),
    Patch(LambdaFunction, "get_configuration", _function_configuration),
    Patch(LambdaBackend, "create_function", _create_function),
    Patch(LambdaFunction, "update_function_code", _update_code),
    Patch(LambdaFunction, "update_configuration", _update_configuration),
    Patch(LambdaBackend, "update_function_code", _backend_update_code),
    Patch(LambdaBackend, "update_function_configuration", _backend_update_configuration),
    Patch(LambdaBackend, "invoke", _backend_invoke),
    Patch(Queue, "attributes", property(_queue_attributes)),
)


def install() -> None:
    """Report transitional states and AWS's SQS timestamp type."""
    _PATCHES.install()


def problems() -> list[str]:
    """What moto no longer has that this module wraps."""
    return _PATCHES.missing()
