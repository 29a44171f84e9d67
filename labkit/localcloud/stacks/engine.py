"""The CloudFormation API of the local cloud: requests in AWS's names, answers in AWS's shapes.

Creating a stack (CreateStack, or CreateChangeSet then ExecuteChangeSet as `aws cloudformation
deploy` and `sam deploy` do) checks the template at once, answers, and creates the resources in a
thread of its own; DescribeStacks and DescribeStackEvents show the progress as they would on AWS.
Updating a stack is not implemented: a change that changes something is refused with a message that says
how to redeploy; one that changes nothing fails as AWS fails it ("didn't contain changes").
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Operations.html
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from labkit.cfnyaml import load_template
from labkit.errors import InputError
from labkit.localcloud.stacks import runner
from labkit.localcloud.stacks.model import ChangeSet, Stack, StackStore
from labkit.localcloud.stacks.provision import Context
from labkit.localcloud.stacks.queries import StackFault, StackQueries, validation
from labkit.localcloud.stacks.template import TemplateError, resolve_parameters
from labkit.localcloud.stacks.transform import (
    CAPABILITY_AUTO_EXPAND,
    CapabilitiesError,
    TransformError,
    apply_transforms,
    check_capabilities,
    check_template,
    check_types,
    transforms,
)
from labkit.session import Clients

log = logging.getLogger(__name__)
# Stack states from which nothing more happens without a new request.
SETTLED = frozenset(
    {"CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_COMPLETE", "DELETE_FAILED"}
)


class StackEngine(StackQueries):
    """Stacks of one local cloud: checked at once, built and deleted in threads that stop with the cloud."""

    def __init__(self, clients_for: Callable[[str], Clients]) -> None:
        """*clients_for(region)* gives clients of the local cloud (an administrator's) in that region."""
        self._clients_for = clients_for
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def stop(self, timeout: float = 10) -> None:
        """Stop every stack operation between two resources and wait for the threads."""
        self._stopping.set()
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)

    # Creating.
    def create_stack(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """CreateStack: check the template, answer the stack id, create its resources in the background."""
        name = request["StackName"]
        if store.live(name) is not None:
            raise StackFault("AlreadyExistsException", f"Stack [{name}] already exists")
        template = self._load(request)
        capabilities = list(request.get("Capabilities") or [])
        if transforms(template) and CAPABILITY_AUTO_EXPAND not in capabilities:
            raise StackFault("InsufficientCapabilitiesException", f"Requires capabilities : [{CAPABILITY_AUTO_EXPAND}]")
        stack = Stack(store.new_stack_id(name), name, request["_body"], "CREATE_IN_PROGRESS")
        self._describe_request(stack, request, capabilities)
        on_failure = request.get("OnFailure") or ("DO_NOTHING" if request.get("DisableRollback") else "ROLLBACK")
        stack.on_failure = on_failure
        context = self._context(store, stack)
        self._prepare(stack, template, request, context, synchronous_transform=True)
        order = self._plan(stack, context)
        with store.lock:
            store.stacks[stack.stack_id] = stack
        stack.add_event("CREATE_IN_PROGRESS", "User Initiated")
        self._start(f"create {name}", lambda: runner.create(stack, context, order))
        return {"StackId": stack.stack_id}

    def create_change_set(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """CreateChangeSet of type CREATE: a new stack in REVIEW_IN_PROGRESS and the change set, checked now."""
        name, change_set_name = request["StackName"], request["ChangeSetName"]
        existing = store.live(name)
        kind = request.get("ChangeSetType") or "UPDATE"
        if kind != "CREATE":
            if existing is None:
                raise validation(f"Stack [{name}] does not exist")
            if existing.status == "ROLLBACK_COMPLETE":
                raise validation(f"Stack:{existing.stack_id} is in ROLLBACK_COMPLETE state and can not be updated.")
            if self._unchanged(existing, request):
                return self._empty_change_set(store, existing, request)
            raise validation(
                f"labkit's local cloud does not update stacks: delete stack {name} "
                f"(aws cloudformation delete-stack --stack-name {name}) and deploy it again."
            )
        if existing is not None and existing.status != "REVIEW_IN_PROGRESS":
            raise validation(
                f"Stack [{name}] already exists and cannot be created again with the changeSet [{change_set_name}]."
            )
        template = self._load(request)
        capabilities = list(request.get("Capabilities") or [])
        stack_id = existing.stack_id if existing else store.new_stack_id(name)
        probe = Stack(stack_id, name, request["_body"], "REVIEW_IN_PROGRESS", capabilities=capabilities)
        context = self._context(store, probe)
        failure = None
        try:
            # Errors of the parameters (and of a template without transforms) are the request's, at once;
            # what the transform finds fails the change set, as AWS runs it after answering.
            self._prepare(probe, template, request, context, synchronous_transform=False)
            if transforms(template):
                runner.plan(probe, context)
            else:
                self._plan(probe, context)
        except (TransformError, CapabilitiesError, TemplateError) as exc:
            failure = str(exc)
        stack = existing or Stack(stack_id, name, "", "REVIEW_IN_PROGRESS")
        if existing is None:
            self._describe_request(stack, request, capabilities)
            with store.lock:
                store.stacks[stack.stack_id] = stack
            stack.add_event("REVIEW_IN_PROGRESS", "User Initiated")
        change_set = ChangeSet(
            store.new_change_set_id(change_set_name),
            change_set_name,
            stack,
            kind,
            request["_body"],
            probe.parameters,
            capabilities,
            dict(stack.tags),
            request.get("Description"),
            processed=probe.processed,
        )
        if failure is None:
            change_set.status, change_set.execution_status = "CREATE_COMPLETE", "AVAILABLE"
        else:
            change_set.status, change_set.reason = "FAILED", failure
        with store.lock:
            store.change_sets[change_set.change_set_id] = change_set
        return {"Id": change_set.change_set_id, "StackId": stack.stack_id}

    def _unchanged(self, stack: Stack, request: dict[str, Any]) -> bool:
        """True if *request* asks for the template and parameters *stack* already has (a redeploy as it is)."""
        if stack.status != "CREATE_COMPLETE":
            return False
        given = {
            p["ParameterKey"]: stack.parameters.get(p["ParameterKey"], "")
            if p.get("UsePreviousValue")
            else p.get("ParameterValue", "")
            for p in request.get("Parameters") or []
        }
        try:
            template = self._load(request)
            return (
                template == load_template(stack.template_body)
                and resolve_parameters(template, given) == stack.parameters
            )
        except (StackFault, TemplateError, InputError):
            return False

    def _empty_change_set(self, store: StackStore, stack: Stack, request: dict[str, Any]) -> dict[str, Any]:
        """The FAILED change set AWS makes of a request that changes nothing; `deploy` reports the stack up to date."""
        change_set = ChangeSet(
            store.new_change_set_id(request["ChangeSetName"]),
            request["ChangeSetName"],
            stack,
            "UPDATE",
            request["_body"],
            dict(stack.parameters),
            list(request.get("Capabilities") or []),
            dict(stack.tags),
            request.get("Description"),
            status="FAILED",
            reason="The submitted information didn't contain changes. Submit different information to create a change set.",
        )
        with store.lock:
            store.change_sets[change_set.change_set_id] = change_set
        return {"Id": change_set.change_set_id, "StackId": stack.stack_id}

    def execute_change_set(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """ExecuteChangeSet: create the stack's resources from the change set, in the background."""
        change_set = self._change_set(store, request["ChangeSetName"], request.get("StackName"))
        if change_set.execution_status != "AVAILABLE":
            raise StackFault(
                "InvalidChangeSetStatus",
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status of "
                f"[{change_set.execution_status}]",
            )
        stack = change_set.stack
        stack.template_body, stack.processed = change_set.template_body, change_set.processed
        stack.parameters, stack.capabilities = change_set.parameters, change_set.capabilities
        stack.description = change_set.processed.get("Description")
        stack.no_echo = _no_echo(change_set.processed)
        stack.change_set_id = change_set.change_set_id
        stack.on_failure = "DO_NOTHING" if request.get("DisableRollback") else "ROLLBACK"
        change_set.execution_status = "EXECUTE_COMPLETE"
        context = self._context(store, stack)
        order = self._plan(stack, context)
        stack.add_event("CREATE_IN_PROGRESS", "User Initiated")
        self._start(f"create {stack.name}", lambda: runner.create(stack, context, order))
        return {}

    # Removing.
    def delete_change_set(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """DeleteChangeSet."""
        change_set = self._change_set(store, request["ChangeSetName"], request.get("StackName"))
        with store.lock:
            store.change_sets.pop(change_set.change_set_id, None)
        return {}

    def delete_stack(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """DeleteStack: delete its resources in the background; a stack that does not exist is no error."""
        stack = store.find(request["StackName"])
        if stack is None or stack.status in ("DELETE_COMPLETE", "DELETE_IN_PROGRESS"):
            return {}
        if stack.status not in SETTLED and stack.status != "REVIEW_IN_PROGRESS":
            raise validation(f"Stack [{stack.name}] cannot be deleted while in status {stack.status}")
        context = self._context(store, stack)
        self._start(f"delete {stack.name}", lambda: runner.delete(stack, context))
        return {}

    def update_stack(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """UpdateStack: refused, with how to redeploy."""
        stack = self._stack(store, request["StackName"])
        if stack.status == "ROLLBACK_COMPLETE":
            raise validation(f"Stack:{stack.stack_id} is in ROLLBACK_COMPLETE state and can not be updated.")
        raise validation(
            f"labkit's local cloud does not update stacks: delete stack {stack.name} "
            f"(aws cloudformation delete-stack --stack-name {stack.name}) and create it again."
        )

    # Helpers.
    def _load(self, request: dict[str, Any]) -> dict[str, Any]:
        body = request.get("_body")
        if not body:
            raise validation("Either Template URL or Template Body must be specified.")
        try:
            template = load_template(body)
        except InputError as exc:
            raise validation(str(exc)) from exc
        try:
            check_template(template)
        except TemplateError as exc:
            raise validation(str(exc)) from exc
        return template

    def _describe_request(self, stack: Stack, request: dict[str, Any], capabilities: list[str]) -> None:
        stack.capabilities = capabilities
        stack.tags = {t["Key"]: t["Value"] for t in request.get("Tags") or []}
        stack.notification_arns = list(request.get("NotificationARNs") or [])
        stack.client_request_token = request.get("ClientRequestToken")

    def _prepare(
        self,
        stack: Stack,
        template: dict[str, Any],
        request: dict[str, Any],
        context: Context,
        synchronous_transform: bool,
    ) -> None:
        """Resolve parameters, apply transforms, check types and capabilities; fill the stack in."""
        given = {p["ParameterKey"]: p.get("ParameterValue", "") for p in request.get("Parameters") or []}
        try:
            stack.parameters = resolve_parameters(template, given)
        except TemplateError as exc:
            raise validation(str(exc)) from exc
        stack.no_echo = _no_echo(template)
        iam = self._clients_for(context.region)("iam")
        try:
            processed = apply_transforms(template, stack.parameters, context.region, context.account, iam)
            check_types(processed, context.region)
            check_capabilities(processed, stack.capabilities)
        except (TransformError, TemplateError, CapabilitiesError) as exc:
            if transforms(template) and not synchronous_transform:
                raise  # the transform runs while the change set is created: its errors fail the change set
            code = "InsufficientCapabilitiesException" if isinstance(exc, CapabilitiesError) else "ValidationError"
            raise StackFault(code, str(exc)) from exc
        stack.processed = processed
        stack.description = stack.processed.get("Description")

    def _plan(self, stack: Stack, context: Context) -> list[str]:
        try:
            return runner.plan(stack, context)
        except TemplateError as exc:
            raise validation(str(exc)) from exc

    def _context(self, store: StackStore, stack: Stack) -> Context:
        return Context(
            self._clients_for(store.region), stack.name, stack.stack_id, store.account, store.region, self._stopping
        )

    def _start(self, what: str, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except Exception:  # the thread's end must be logged, never lost
                log.exception("stack operation %s failed", what)

        thread = threading.Thread(target=run, name=f"labkit-stack {what}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()


def _no_echo(template: dict[str, Any]) -> frozenset[str]:
    return frozenset(
        name
        for name, spec in (template.get("Parameters") or {}).items()
        if str((spec or {}).get("NoEcho", "false")).lower() == "true"
    )
