"""Resource states as AWS reports them while a resource is being created or changed, and answer shapes.

AWS answers CreateTable with `CREATING`, CreateFunction with `Pending`, UpdateFunctionCode and
UpdateFunctionConfiguration with `LastUpdateStatus: InProgress`, CreateEventSourceMapping with
`Creating` (`Enabling`, `Disabling`, `Updating` on an update, `Deleting` on a delete, after which
the mapping is still listed for a while), and only later the settled state, so
the waiters a student is taught (`table_exists`, `function_active_v2`, `function_updated_v2`) really
wait. As on AWS, a function that is Pending cannot be invoked or updated, and one being updated
cannot be updated again, until the waiter would have returned (`ResourceConflictException`). moto answers the settled state at once. Here each transition lasts `state_delay()` seconds
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
from moto.awslambda.models import EventSourceMapping, LambdaBackend, LambdaFunction
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.sqs.models import Queue

from labkit.config import ENV_STATE_DELAY, LOCAL_STATE_DELAY_S

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
_original_mapping_configuration = EventSourceMapping.get_configuration
_original_create_mapping = LambdaBackend.create_event_source_mapping
_original_update_mapping = LambdaBackend.update_event_source_mapping
_original_delete_mapping = LambdaBackend.delete_event_source_mapping
_original_get_mapping = LambdaBackend.get_event_source_mapping
_original_list_mappings = LambdaBackend.list_event_source_mappings
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


def install() -> None:
    """Report transitional states and AWS's SQS timestamp type."""
    Table.describe = _table_describe  # type: ignore[method-assign]
    DynamoDBBackend.create_table = _create_table  # type: ignore[method-assign]
    DynamoDBBackend.delete_table = _delete_table  # type: ignore[method-assign]
    LambdaFunction.get_configuration = _function_configuration  # type: ignore[method-assign]
    LambdaBackend.create_function = _create_function  # type: ignore[method-assign]
    LambdaFunction.update_function_code = _update_code  # type: ignore[method-assign]
    LambdaFunction.update_configuration = _update_configuration  # type: ignore[method-assign]
    LambdaBackend.update_function_code = _backend_update_code  # type: ignore[method-assign]
    LambdaBackend.update_function_configuration = _backend_update_configuration  # type: ignore[method-assign]
    LambdaBackend.invoke = _backend_invoke  # type: ignore[method-assign]
    EventSourceMapping.get_configuration = _mapping_configuration  # type: ignore[method-assign]
    LambdaBackend.create_event_source_mapping = _create_mapping  # type: ignore[method-assign]
    LambdaBackend.update_event_source_mapping = _update_mapping  # type: ignore[method-assign]
    LambdaBackend.delete_event_source_mapping = _delete_mapping  # type: ignore[method-assign]
    LambdaBackend.get_event_source_mapping = _get_mapping  # type: ignore[method-assign]
    LambdaBackend.list_event_source_mappings = _list_mappings  # type: ignore[method-assign]
    Queue.attributes = property(_queue_attributes)  # type: ignore[assignment,method-assign]


def problems() -> list[str]:
    """What moto no longer has that this module wraps."""
    found = [
        f"moto {owner.__name__}.{name} is gone"
        for owner, name in (
            (Table, "describe"),
            (DynamoDBBackend, "create_table"),
            (DynamoDBBackend, "delete_table"),
            (LambdaFunction, "get_configuration"),
            (LambdaFunction, "update_function_code"),
            (LambdaFunction, "update_configuration"),
            (LambdaBackend, "create_function"),
            (LambdaBackend, "update_function_code"),
            (LambdaBackend, "update_function_configuration"),
            (LambdaBackend, "invoke"),
            (EventSourceMapping, "get_configuration"),
            (LambdaBackend, "create_event_source_mapping"),
            (LambdaBackend, "update_event_source_mapping"),
            (LambdaBackend, "delete_event_source_mapping"),
            (LambdaBackend, "get_event_source_mapping"),
            (LambdaBackend, "list_event_source_mappings"),
        )
        if not callable(getattr(owner, name, None))
    ]
    if not isinstance(_original_queue_attributes, property):
        found.append("moto's Queue.attributes is no longer a property")
    return found


def moto_queue_attributes() -> Any:
    """The getter of moto's own `Queue.attributes`, whatever wraps it now."""
    return _original_queue_attributes.fget  # type: ignore[attr-defined]


def _until() -> float:
    return time.monotonic() + state_delay()


def _pending(resource: Any, name: str) -> bool:
    until: float | None = getattr(resource, name, None)
    return until is not None and time.monotonic() < until


# DynamoDB: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html


def _create_table(self: DynamoDBBackend, name: str, *args: Any, **kwargs: Any) -> Table:
    table = _original_create_table(self, name, *args, **kwargs)
    table.labkit_creating_until = _until()  # type: ignore[attr-defined]
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
    until = _until()
    function.labkit_pending_until = until  # type: ignore[attr-defined]
    # With Publish, moto answers with a copy; the stored $LATEST is the one later reads find.
    self.get_function(function.function_name).labkit_pending_until = until  # type: ignore[attr-defined]
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
    self.labkit_updating_until = _until()  # type: ignore[attr-defined]
    return _original_update_code(self, updated_spec)


def _update_configuration(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
    self.labkit_updating_until = _until()  # type: ignore[attr-defined]
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


# Event source mappings: https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
# (State: Creating | Enabling | Enabled | Disabling | Disabled | Updating | Deleting).


def _create_mapping(self: LambdaBackend, spec: dict[str, Any]) -> EventSourceMapping:
    mapping = _original_create_mapping(self, spec)
    mapping.labkit_transition = ("Creating", _until())  # type: ignore[attr-defined]
    return mapping


class MappingInUse(LambdaClientError):
    """What Update- and DeleteEventSourceMapping answer for a mapping being deleted.

    The code is AWS's for "the operation conflicts with the resource's availability"
    (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#API_UpdateEventSourceMapping_Errors);
    AWS does not publish the message's wording, so this one says what happened.
    """

    def __init__(self, uuid: str) -> None:
        super().__init__(
            "ResourceInUseException",
            f"The event source mapping {uuid} is in the Deleting state; it cannot be updated or deleted again.",
        )


def _update_mapping(self: LambdaBackend, uuid: str, spec: dict[str, Any]) -> EventSourceMapping | None:
    if uuid in deleting_mappings(self):
        raise MappingInUse(uuid)
    before = self.get_event_source_mapping(uuid)
    was_enabled = bool(before.enabled) if before is not None else None
    mapping = _original_update_mapping(self, uuid, spec)
    if mapping is not None:
        if "Enabled" in spec and bool(mapping.enabled) != was_enabled:
            state = "Enabling" if mapping.enabled else "Disabling"
        else:
            state = "Updating"
        mapping.labkit_transition = (state, _until())  # type: ignore[attr-defined]
    return mapping


# "When you delete an event source mapping, it enters a Deleting state and might not be completely
# deleted for several seconds": https://docs.aws.amazon.com/lambda/latest/api/API_DeleteEventSourceMapping.html
# moto forgets it at once; here it stays readable (and blocks a new mapping of the same queue and
# function, see mappings.py) for `state_delay()` seconds, while no poller reads for it.


def deleting_mappings(backend: LambdaBackend) -> dict[str, EventSourceMapping]:
    """The backend's mappings still in Deleting, by UUID; those whose delay ran out are dropped."""
    found: dict[str, EventSourceMapping] = backend.__dict__.setdefault("labkit_deleting", {})
    now = time.monotonic()
    for uuid, mapping in list(found.items()):
        if now >= mapping.labkit_transition[1]:  # type: ignore[attr-defined]
            del found[uuid]
    return found


def _delete_mapping(self: LambdaBackend, uuid: str) -> EventSourceMapping | None:
    if uuid in deleting_mappings(self):
        raise MappingInUse(uuid)
    mapping = _original_delete_mapping(self, uuid)
    if mapping is not None:
        mapping.labkit_transition = ("Deleting", _until())  # type: ignore[attr-defined]
        deleting_mappings(self)[uuid] = mapping
    return mapping


def _get_mapping(self: LambdaBackend, uuid: str) -> EventSourceMapping | None:
    found = _original_get_mapping(self, uuid)
    return found if found is not None else deleting_mappings(self).get(uuid)


def _list_mappings(self: LambdaBackend, event_source_arn: str, function_name: str) -> list[EventSourceMapping]:
    listed = list(_original_list_mappings(self, event_source_arn, function_name))
    for mapping in deleting_mappings(self).values():
        if event_source_arn and mapping.event_source_arn != event_source_arn:
            continue
        if function_name and function_name not in (mapping.function_name, mapping.function_arn):
            continue
        listed.append(mapping)
    return listed


def _mapping_configuration(self: EventSourceMapping) -> dict[str, Any]:
    configuration = _original_mapping_configuration(self)
    transition: tuple[str, float] | None = getattr(self, "labkit_transition", None)
    if transition is not None and time.monotonic() < transition[1]:
        configuration["State"] = transition[0]
    return configuration


def _queue_attributes(self: Queue) -> dict[str, Any]:
    attributes: dict[str, Any] = _original_queue_attributes.fget(self)  # type: ignore[attr-defined]
    for name in TIMESTAMP_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, float):
            attributes[name] = int(value)
    return attributes
