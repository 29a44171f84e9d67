"""The CloudFormation API's reads of the local cloud's stacks, in AWS's shapes, and the errors it answers with.

DescribeStacks finds a live stack by name and any stack, deleted ones too, by its id; ListStacks lists
deleted ones; DescribeStackEvents answers newest first
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html).
"""

from __future__ import annotations

import json
from typing import Any

from labkit.localcloud.stacks.model import ChangeSet, Stack, StackStore


class StackFault(Exception):
    """An error the CloudFormation API answers with: AWS's code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validation(message: str) -> StackFault:
    """The ValidationError CloudFormation answers most refusals with."""
    return StackFault("ValidationError", message)


class StackQueries:
    """The read operations of the CloudFormation API over a `StackStore`."""

    def describe_stacks(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeStacks: one stack by name or id, or every live one."""
        name = request.get("StackName")
        if name:
            return {"Stacks": [self._stack(store, name).shape()]}
        with store.lock:
            stacks = [s for s in store.stacks.values() if s.status != "DELETE_COMPLETE"]
        return {"Stacks": [s.shape() for s in stacks]}

    def list_stacks(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """ListStacks: every stack, deleted ones too, filtered by status."""
        wanted = set(request.get("StackStatusFilter") or [])
        with store.lock:
            stacks = list(store.stacks.values())
        return {"StackSummaries": [s.summary() for s in stacks if not wanted or s.status in wanted]}

    def describe_stack_events(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeStackEvents: newest first."""
        stack = self._stack(store, request["StackName"])
        with stack.lock:
            return {"StackEvents": [event.shape() for event in reversed(stack.events)]}

    def list_stack_resources(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """ListStackResources."""
        stack = self._stack(store, request["StackName"])
        return {"StackResourceSummaries": [r.summary() for r in stack.resources.values() if r.status]}

    def describe_stack_resources(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeStackResources by stack, or by a resource's physical id (which finds its stack)."""
        physical = request.get("PhysicalResourceId")
        if request.get("StackName"):
            stack = self._stack(store, request["StackName"])
        elif physical:
            stack = self._owner(store, physical)
        else:
            raise validation("Either StackName or PhysicalResourceId must be specified.")
        logical = request.get("LogicalResourceId")
        rows = [
            r.describe(stack)
            for r in stack.resources.values()
            if r.status
            and (not logical or r.logical_id == logical)
            and (not physical or r.physical_id == physical or request.get("StackName"))
        ]
        return {"StackResources": rows}

    def describe_stack_resource(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeStackResource."""
        stack = self._stack(store, request["StackName"])
        resource = stack.resources.get(request["LogicalResourceId"])
        if resource is None or not resource.status:
            raise validation(f"Resource {request['LogicalResourceId']} does not exist for stack {stack.name}")
        return {"StackResourceDetail": resource.describe(stack, detail=True)}

    def get_template(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """GetTemplate: the template as given (Original) or with its transforms applied (Processed)."""
        stack = self._stack(store, request["StackName"])
        if request.get("TemplateStage") == "Processed":
            body = json.dumps(stack.processed)
        else:
            body = stack.template_body
        return {"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]}

    def describe_change_set(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeChangeSet."""
        return self._change_set(store, request["ChangeSetName"], request.get("StackName")).shape()

    def list_change_sets(self, store: StackStore, request: dict[str, Any]) -> dict[str, Any]:
        """ListChangeSets of one stack."""
        stack = self._stack(store, request["StackName"])
        with store.lock:
            sets = [c for c in store.change_sets.values() if c.stack is stack]
        return {"Summaries": [c.summary() for c in sets]}

    def _stack(self, store: StackStore, name_or_id: str) -> Stack:
        stack = store.find(name_or_id)
        if stack is None:
            raise validation(f"Stack with id {name_or_id} does not exist")
        return stack

    def _owner(self, store: StackStore, physical_id: str) -> Stack:
        with store.lock:
            for stack in store.stacks.values():
                if stack.status != "DELETE_COMPLETE" and any(
                    r.physical_id == physical_id for r in stack.resources.values()
                ):
                    return stack
        raise validation(f"Stack for {physical_id} does not exist")

    def _change_set(self, store: StackStore, name_or_id: str, stack_name: str | None) -> ChangeSet:
        with store.lock:
            found = store.change_sets.get(name_or_id) or next(
                (
                    c
                    for c in store.change_sets.values()
                    if c.name == name_or_id and (not stack_name or stack_name in (c.stack.name, c.stack.stack_id))
                ),
                None,
            )
        if found is None:
            raise StackFault("ChangeSetNotFound", f"ChangeSet [{name_or_id}] does not exist")
        return found
