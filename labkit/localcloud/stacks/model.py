"""Stacks, their resources, events and change sets, kept per account and region, in AWS's answer shapes.

The shapes are those of DescribeStacks, DescribeStackEvents, ListStackResources,
DescribeStackResources and DescribeChangeSet
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

STACK_TYPE = "AWS::CloudFormation::Stack"
NOT_CHECKED = {"StackResourceDriftStatus": "NOT_CHECKED"}


def now() -> datetime:
    """The current time, as CloudFormation stamps events (UTC)."""
    return datetime.now(UTC)


@dataclass
class StackResource:
    """One resource of a stack: its template entry, what was made of it, and its status."""

    logical_id: str
    type: str
    definition: dict[str, Any]
    status: str = ""
    reason: str | None = None
    physical_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    updated: datetime = field(default_factory=now)

    def summary(self) -> dict[str, Any]:
        """A ListStackResources row."""
        row: dict[str, Any] = {
            "LogicalResourceId": self.logical_id,
            "ResourceType": self.type,
            "LastUpdatedTimestamp": self.updated,
            "ResourceStatus": self.status,
            "DriftInformation": NOT_CHECKED,
        }
        if self.physical_id:
            row["PhysicalResourceId"] = self.physical_id
        if self.reason:
            row["ResourceStatusReason"] = self.reason
        return row

    def describe(self, stack: Stack, detail: bool = False) -> dict[str, Any]:
        """A DescribeStackResources row, or with *detail* DescribeStackResource's StackResourceDetail."""
        row: dict[str, Any] = {"StackName": stack.name, "StackId": stack.stack_id, **self.summary()}
        updated = row.pop("LastUpdatedTimestamp")
        row["LastUpdatedTimestamp" if detail else "Timestamp"] = updated
        if detail:
            row["Metadata"] = "{}"
        return row


@dataclass
class Event:
    """One stack event."""

    stack: Stack
    logical_id: str
    physical_id: str | None
    type: str
    status: str
    reason: str | None
    properties: str | None
    timestamp: datetime
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def shape(self) -> dict[str, Any]:
        """A DescribeStackEvents row."""
        row: dict[str, Any] = {
            "StackId": self.stack.stack_id,
            "EventId": self.event_id,
            "StackName": self.stack.name,
            "LogicalResourceId": self.logical_id,
            "ResourceType": self.type,
            "Timestamp": self.timestamp,
            "ResourceStatus": self.status,
        }
        if self.physical_id:
            row["PhysicalResourceId"] = self.physical_id
        if self.reason:
            row["ResourceStatusReason"] = self.reason
        if self.properties is not None:
            row["ResourceProperties"] = self.properties
        if self.stack.client_request_token:
            row["ClientRequestToken"] = self.stack.client_request_token
        return row


@dataclass
class Stack:
    """A stack: what was asked, what the template became, and what happened to it."""

    stack_id: str
    name: str
    template_body: str
    status: str
    parameters: dict[str, str] = field(default_factory=dict)
    no_echo: frozenset[str] = frozenset()
    processed: dict[str, Any] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    notification_arns: list[str] = field(default_factory=list)
    on_failure: str = "ROLLBACK"
    reason: str | None = None
    description: str | None = None
    change_set_id: str | None = None
    client_request_token: str | None = None
    creation_time: datetime = field(default_factory=now)
    deletion_time: datetime | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, StackResource] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def add_event(
        self,
        status: str,
        reason: str | None = None,
        resource: StackResource | None = None,
        properties: str | None = None,
    ) -> None:
        """Record an event for the stack itself, or for *resource* (whose status it becomes)."""
        with self.lock:
            stamp = now()
            if self.events and stamp <= self.events[-1].timestamp:
                # Events are read newest first: two in the same instant would lose their order.
                stamp = self.events[-1].timestamp + timedelta(milliseconds=1)
            if resource is None:
                self.status, self.reason = status, reason
                event = Event(self, self.name, self.stack_id, STACK_TYPE, status, reason, None, stamp)
            else:
                resource.status, resource.reason, resource.updated = status, reason, stamp
                event = Event(
                    self, resource.logical_id, resource.physical_id, resource.type, status, reason, properties, stamp
                )
            self.events.append(event)

    def shape(self) -> dict[str, Any]:
        """A DescribeStacks entry."""
        with self.lock:
            row: dict[str, Any] = {
                "StackId": self.stack_id,
                "StackName": self.name,
                "Parameters": [
                    {"ParameterKey": k, "ParameterValue": "****" if k in self.no_echo else v}
                    for k, v in self.parameters.items()
                ],
                "CreationTime": self.creation_time,
                "RollbackConfiguration": {},
                "StackStatus": self.status,
                "DisableRollback": self.on_failure == "DO_NOTHING",
                "NotificationARNs": self.notification_arns,
                "Capabilities": self.capabilities,
                "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
                "EnableTerminationProtection": False,
                "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
            }
            optional = {
                "Description": self.description,
                "StackStatusReason": self.reason,
                "ChangeSetId": self.change_set_id,
                "DeletionTime": self.deletion_time,
                "Outputs": self.outputs or None,
            }
            row.update({k: v for k, v in optional.items() if v is not None})
            return row

    def summary(self) -> dict[str, Any]:
        """A ListStacks entry."""
        row = {k: v for k, v in self.shape().items() if k in _SUMMARY_KEYS}
        row["TemplateDescription"] = row.pop("Description", None)
        return {k: v for k, v in row.items() if v is not None}


_SUMMARY_KEYS = frozenset(
    {"StackId", "StackName", "Description", "CreationTime", "DeletionTime", "StackStatus", "StackStatusReason"}
) | {"DriftInformation"}


@dataclass
class ChangeSet:
    """A change set: a stack's template and parameters, checked and processed, waiting to be executed."""

    change_set_id: str
    name: str
    stack: Stack
    kind: str
    template_body: str
    parameters: dict[str, str]
    capabilities: list[str]
    tags: dict[str, str]
    description: str | None = None
    status: str = "CREATE_PENDING"
    execution_status: str = "UNAVAILABLE"
    reason: str | None = None
    processed: dict[str, Any] = field(default_factory=dict)
    creation_time: datetime = field(default_factory=now)

    def changes(self) -> list[dict[str, Any]]:
        """The resources the change set adds, as DescribeChangeSet lists them."""
        return [
            {
                "Type": "Resource",
                "ResourceChange": {
                    "Action": "Add",
                    "LogicalResourceId": logical,
                    "ResourceType": resource.get("Type", ""),
                    "Scope": [],
                    "Details": [],
                },
            }
            for logical, resource in (self.processed.get("Resources") or {}).items()
        ]

    def shape(self) -> dict[str, Any]:
        """DescribeChangeSet's answer."""
        row: dict[str, Any] = {
            "ChangeSetName": self.name,
            "ChangeSetId": self.change_set_id,
            "StackId": self.stack.stack_id,
            "StackName": self.stack.name,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
            "CreationTime": self.creation_time,
            "ExecutionStatus": self.execution_status,
            "Status": self.status,
            "NotificationARNs": [],
            "RollbackConfiguration": {},
            "Capabilities": self.capabilities,
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
            "Changes": self.changes() if self.status == "CREATE_COMPLETE" else [],
            "IncludeNestedStacks": False,
        }
        if self.description:
            row["Description"] = self.description
        if self.reason:
            row["StatusReason"] = self.reason
        return row

    def summary(self) -> dict[str, Any]:
        """A ListChangeSets entry."""
        keys = ("StackId", "StackName", "ChangeSetId", "ChangeSetName", "ExecutionStatus", "Status", "StatusReason")
        shape = self.shape()
        return {k: shape[k] for k in (*keys, "CreationTime", "Description") if k in shape}


class StackStore:
    """One account's and region's stacks (live and deleted) and change sets."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self.lock = threading.RLock()
        self.stacks: dict[str, Stack] = {}
        self.change_sets: dict[str, ChangeSet] = {}

    def live(self, name: str) -> Stack | None:
        """The stack called *name* that is not deleted, if any."""
        with self.lock:
            for stack in self.stacks.values():
                if stack.name == name and stack.status != "DELETE_COMPLETE":
                    return stack
        return None

    def find(self, name_or_id: str) -> Stack | None:
        """A live stack by name, or any stack (deleted ones too) by its id, as DescribeStacks looks them up."""
        with self.lock:
            return self.stacks.get(name_or_id) or self.live(name_or_id)

    def new_stack_id(self, name: str) -> str:
        """A stack id of AWS's form."""
        return f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{name}/{uuid.uuid4()}"

    def new_change_set_id(self, name: str) -> str:
        """A change set id of AWS's form."""
        return f"arn:aws:cloudformation:{self.region}:{self.account}:changeSet/{name}/{uuid.uuid4()}"
