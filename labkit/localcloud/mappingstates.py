"""Event source mappings' states as Lambda reports them, and the changes it refuses meanwhile.

CreateEventSourceMapping answers `Creating`, UpdateEventSourceMapping `Enabling`, `Disabling` or
`Updating`, DeleteEventSourceMapping `Deleting`, and only later is the mapping Enabled, Disabled or
gone (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html); while it
changes state, AWS refuses to update or delete it (`ResourceInUseException`). moto settles each at
once and forgets a deleted mapping at once. Here each transition lasts `lifecycle.state_delay()`
seconds, judged when the mapping is read, and the local Lambda service polls only Enabled ones.
"""

from __future__ import annotations

import time
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import EventSourceMapping, LambdaBackend

from labkit.localcloud.lifecycle import until
from labkit.localcloud.patching import Patch, PatchTable

_original_mapping_configuration = EventSourceMapping.get_configuration
_original_create_mapping = LambdaBackend.create_event_source_mapping
_original_update_mapping = LambdaBackend.update_event_source_mapping
_original_delete_mapping = LambdaBackend.delete_event_source_mapping
_original_get_mapping = LambdaBackend.get_event_source_mapping
_original_list_mappings = LambdaBackend.list_event_source_mappings


def _create_mapping(self: LambdaBackend, spec: dict[str, Any]) -> EventSourceMapping:
    mapping = _original_create_mapping(self, spec)
    mapping.labkit_transition = ("Creating", until())  # type: ignore[attr-defined]
    return mapping


class MappingInUse(LambdaClientError):
    """What Update- and DeleteEventSourceMapping answer while the mapping is changing state.

    AWS: "The operation conflicts with the resource's availability. For example, you tried to update
    an event source mapping in the CREATING state, or you tried to delete an event source mapping
    currently UPDATING."
    (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#API_UpdateEventSourceMapping_Errors).
    AWS does not publish the message's wording, so this one says what to do.
    """

    def __init__(self, uuid: str, state: str) -> None:
        super().__init__(
            "ResourceInUseException",
            f"The event source mapping {uuid} is {state}; wait until it is Enabled or Disabled to change it.",
        )


def _changing(mapping: EventSourceMapping | None) -> str | None:
    """The state *mapping* is passing through now (Creating, Updating, Deleting...), or None once settled."""
    transition: tuple[str, float] | None = getattr(mapping, "labkit_transition", None)
    return transition[0] if transition is not None and time.monotonic() < transition[1] else None


def _refuse_while_changing_state(backend: LambdaBackend, uuid: str) -> None:
    state = _changing(_original_get_mapping(backend, uuid) or deleting_mappings(backend).get(uuid))
    if state is not None:
        raise MappingInUse(uuid, state)


def _update_mapping(self: LambdaBackend, uuid: str, spec: dict[str, Any]) -> EventSourceMapping | None:
    _refuse_while_changing_state(self, uuid)
    before = self.get_event_source_mapping(uuid)
    was_enabled = bool(before.enabled) if before is not None else None
    mapping = _original_update_mapping(self, uuid, spec)
    if mapping is not None:
        if "Enabled" in spec and bool(mapping.enabled) != was_enabled:
            state = "Enabling" if mapping.enabled else "Disabling"
        else:
            state = "Updating"
        mapping.labkit_transition = (state, until())  # type: ignore[attr-defined]
    return mapping


# "When you delete an event source mapping, it enters a Deleting state and might not be completely
# deleted for several seconds": https://docs.aws.amazon.com/lambda/latest/api/API_DeleteEventSourceMapping.html
# moto forgets it at once; here it stays readable (and blocks a new mapping of the same queue and
# function, see mappings.py) for `state_delay()` seconds, while no poller reads for it.


def deleting_mappings(backend: LambdaBackend) -> dict[str, EventSourceMapping]:
    """The backend's mappings still in Deleting, by UUID; those whose delay ran out are dropped."""
    found: dict[str, EventSourceMapping] = backend.__dict__.setdefault("labkit_deleting", {})
    for uuid, mapping in list(found.items()):
        if _changing(mapping) is None:
            del found[uuid]
    return found


def _delete_mapping(self: LambdaBackend, uuid: str) -> EventSourceMapping | None:
    _refuse_while_changing_state(self, uuid)
    mapping = _original_delete_mapping(self, uuid)
    if mapping is not None:
        mapping.labkit_transition = ("Deleting", until())  # type: ignore[attr-defined]
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
    state = _changing(self)
    if state is not None:
        configuration["State"] = state
    return configuration


_PATCHES = PatchTable(
    Patch(EventSourceMapping, "get_configuration", _mapping_configuration),
    Patch(LambdaBackend, "create_event_source_mapping", _create_mapping),
    Patch(LambdaBackend, "update_event_source_mapping", _update_mapping),
    Patch(LambdaBackend, "delete_event_source_mapping", _delete_mapping),
    Patch(LambdaBackend, "get_event_source_mapping", _get_mapping),
    Patch(LambdaBackend, "list_event_source_mappings", _list_mappings),
)


def install() -> None:
    """Report mappings' transitional states and refuse changes during them."""
    _PATCHES.install()


def problems() -> list[str]:
    """What moto no longer has that this module wraps."""
    return _PATCHES.missing()
