"""CloudFormation: moto's stack operations answered by labkit's stack engine (`labkit.localcloud.stacks`).

moto creates the resources its models know at CreateStack, lists the others with no logical id and
no physical resource, never applies the SAM transform, and answers CREATE_COMPLETE at once. Each stack
operation below is routed to the engine instead, with the request as moto parsed it and the answer
in AWS's shape; the engine's stacks live on moto's CloudFormation backend, so `/moto-api/reset` and a
new in-process cloud start with none. Without an engine (moto patched, no local cloud) moto answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import wrapt
from moto.core.responses import ActionResult, EmptyResult

from labkit.localcloud.patching import Patch, PatchTable, gone_lines
from labkit.localcloud.stacks import StackEngine, StackFault, StackStore

if TYPE_CHECKING:
    from moto.cloudformation.responses import CloudFormationResponse

# moto's CloudFormation takes two seconds of CPU to import (its models import EC2's, API Gateway's and
# jsonschema's format checkers), paid by every kernel and `labkit serve` that never deploys a stack. So
# nothing here imports it: the patches go in when moto itself first imports it, for the first stack request.
RESPONSES = "moto.cloudformation.responses"

# CloudFormation API operation -> the engine method that answers it.
OPERATIONS = {
    "create_stack": "create_stack",
    "create_change_set": "create_change_set",
    "execute_change_set": "execute_change_set",
    "describe_change_set": "describe_change_set",
    "list_change_sets": "list_change_sets",
    "delete_change_set": "delete_change_set",
    "describe_stacks": "describe_stacks",
    "list_stacks": "list_stacks",
    "describe_stack_events": "describe_stack_events",
    "list_stack_resources": "list_stack_resources",
    "describe_stack_resources": "describe_stack_resources",
    "describe_stack_resource": "describe_stack_resource",
    "get_template": "get_template",
    "delete_stack": "delete_stack",
    "update_stack": "update_stack",
}
# Operations whose template may come as TemplateURL, an object in the local cloud's S3.
_WITH_TEMPLATE = frozenset({"create_stack", "create_change_set", "update_stack"})

_engine: StackEngine | None = None
_originals: dict[str, Any] = {}
_table: PatchTable | None = None
_hooked = False
_lock = threading.Lock()


def _fault(fault: StackFault) -> Exception:
    """An engine's StackFault as moto serializes errors."""
    from moto.cloudformation.exceptions import CloudFormationError

    error = CloudFormationError(fault.message)
    error.code = fault.code
    return error


def store_of(response: CloudFormationResponse) -> StackStore:
    """The engine's stacks of the request's account and region, kept on moto's backend for that pair."""
    backend = response.cloudformation_backend
    store: StackStore | None = getattr(backend, "labkit_stacks", None)
    if store is None:
        store = StackStore(response.current_account, response.region)
        backend.labkit_stacks = store  # type: ignore[attr-defined]
    return store


def _route(operation: str) -> Callable[[CloudFormationResponse], Any]:
    def answer(self: CloudFormationResponse) -> Any:
        if _engine is None:
            return _originals[operation](self)  # type: ignore[misc]
        request = dict(self._get_params() or {})
        if operation in _WITH_TEMPLATE:
            body = request.get("TemplateBody")
            if not body and request.get("TemplateURL"):
                body = self._get_stack_from_s3_url(request["TemplateURL"])
            request["_body"] = body
        try:
            result = getattr(_engine, OPERATIONS[operation])(store_of(self), request)
        except StackFault as fault:
            raise _fault(fault) from fault
        # moto reshapes some of its own answers on the way out; the engine's are AWS's shapes already.
        self.RESPONSE_KEY_PATH_TO_TRANSFORMER = {}
        return ActionResult(result) if result else EmptyResult()

    answer.__name__ = operation
    return answer


def _patches(module: ModuleType) -> PatchTable:
    """The table over *module* (moto's CloudFormation responses), built once, when moto has imported it."""
    global _table
    if _table is None:
        owner = module.CloudFormationResponse
        _originals.update({name: getattr(owner, name, None) for name in OPERATIONS})
        _table = PatchTable(*(Patch(owner, name, _route(name)) for name in OPERATIONS))
    return _table


def _on_import(module: ModuleType) -> None:
    found = _problems(module)
    if found:
        raise RuntimeError("labkit's local cloud does not support this moto: " + "; ".join(found))
    _patches(module).install()


def install(engine: StackEngine | None = None) -> None:
    """Answer CloudFormation's stack operations with *engine* (the latest one given), from moto's first import
    of its CloudFormation on (at once if it has been imported already)."""
    global _engine, _hooked
    if engine is not None:
        _engine = engine
    with _lock:
        if not _hooked:
            _hooked = True
            wrapt.register_post_import_hook(_on_import, RESPONSES)


def uninstall(engine: StackEngine) -> None:
    """Let moto answer again, if *engine* is still the one answering (a cloud that stops)."""
    global _engine
    if _engine is engine:
        _engine = None


def problems() -> list[str]:
    """What this moto lacks of the CloudFormation internals used here (imports moto's CloudFormation)."""
    import importlib

    return _problems(importlib.import_module(RESPONSES))


def _problems(module: ModuleType) -> list[str]:
    owner = module.CloudFormationResponse
    return _patches(module).missing() + gone_lines([(owner, "_get_params"), (owner, "_get_stack_from_s3_url")])
