"""Creating, rolling back and deleting a stack's resources, with the events CloudFormation writes.

Each resource is created after what it refers to: CREATE_IN_PROGRESS (with the resolved
properties), CREATE_IN_PROGRESS "Resource creation Initiated" once it has a physical id, then
CREATE_COMPLETE. When one fails (CREATE_FAILED, with its reason) the stack goes to
ROLLBACK_IN_PROGRESS "The following resource(s) failed to create: [X]. Rollback requested by user.",
what was made is deleted in reverse order, and the stack ends ROLLBACK_COMPLETE; with OnFailure
DO_NOTHING it stops at CREATE_FAILED, with DELETE it is then deleted. Deleting writes
DELETE_IN_PROGRESS / DELETE_COMPLETE per resource (DELETE_SKIPPED for DeletionPolicy Retain).
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html
"""

from __future__ import annotations

import json
import logging
from typing import Any

from labkit.localcloud.stacks import compute, data
from labkit.localcloud.stacks.model import Stack, StackResource, now
from labkit.localcloud.stacks.provision import Context, Created, Provisioner, ProvisionError
from labkit.localcloud.stacks.template import ResolveError, Resolver, TemplateError, creation_order
from labkit.localcloud.stacks.transform import coerce_properties, property_problems

log = logging.getLogger(__name__)

PROVISIONERS: dict[str, Provisioner] = {p.type: p for p in (*data.PROVISIONERS, *compute.PROVISIONERS)}
# Resource types that need no properties at all.
_NO_PROPERTIES_NEEDED = frozenset({data.TOPIC, data.QUEUE})


def pseudo_parameters(stack: Stack, account: str, region: str) -> dict[str, str]:
    """The pseudo parameters CloudFormation resolves for this stack."""
    return {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::StackName": stack.name,
        "AWS::StackId": stack.stack_id,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": ",".join(stack.notification_arns),
    }


def resolver_for(stack: Stack, context: Context) -> Resolver:
    """A resolver over the stack's processed template and the resources made so far."""

    def ref(name: str) -> Any:
        resource = stack.resources.get(name)
        if resource is None or not resource.physical_id:
            raise ResolveError(f"Ref {name}: the resource has not been created")
        return resource.physical_id

    def get_att(name: str, attribute: str) -> Any:
        resource = stack.resources.get(name)
        if resource is None or not resource.physical_id:
            raise ResolveError(f"Fn::GetAtt {name}.{attribute}: the resource has not been created")
        if attribute not in resource.attributes:
            raise ResolveError(
                f"Template error: resource {name} does not support attribute type {attribute} in Fn::GetAtt"
            )
        return resource.attributes[attribute]

    pseudo = pseudo_parameters(stack, context.account, context.region)
    return Resolver(stack.processed, stack.parameters, pseudo, ref=ref, get_att=get_att)


def plan(stack: Stack, context: Context) -> list[str]:
    """The logical ids to create, in order, those whose Condition is false left out (TemplateError if invalid)."""
    resources = stack.processed.get("Resources") or {}
    resolver = resolver_for(stack, context)
    order = creation_order(resources, set(stack.parameters) | set(resolver.pseudo))
    chosen = [
        logical
        for logical in order
        if "Condition" not in resources[logical] or resolver.condition(resources[logical]["Condition"])
    ]
    for logical in chosen:
        definition = resources[logical]
        stack.resources[logical] = StackResource(logical, definition["Type"], definition)
    return chosen


def create(stack: Stack, context: Context, order: list[str]) -> None:
    """Create the stack's resources in *order*; on a failure roll back as the stack's OnFailure says."""
    resolver = resolver_for(stack, context)
    failed: StackResource | None = None
    for logical in order:
        if context.stopping.is_set():
            return
        resource = stack.resources[logical]
        try:
            _create_one(stack, context, resolver, resource)
        except ProvisionError as exc:
            stack.add_event("CREATE_FAILED", str(exc), resource)
            failed = resource
            break
    if failed is None:
        _complete(stack, resolver)
        return
    listed = f"The following resource(s) failed to create: [{failed.logical_id}]. "
    if stack.on_failure == "DO_NOTHING":
        stack.add_event("CREATE_FAILED", listed)
        return
    stack.add_event("ROLLBACK_IN_PROGRESS", listed + "Rollback requested by user.")
    if _delete_all(stack, context, rollback=True):
        stack.add_event("ROLLBACK_COMPLETE", stack.reason)
    else:
        stack.add_event("ROLLBACK_FAILED", stack.reason)
        return
    if stack.on_failure == "DELETE":
        delete(stack, context)


def _create_one(stack: Stack, context: Context, resolver: Resolver, resource: StackResource) -> None:
    provisioner = PROVISIONERS.get(resource.type)
    try:
        properties = resolver.resolve(resource.definition.get("Properties") or {})
    except (ResolveError, TemplateError) as exc:
        stack.add_event("CREATE_IN_PROGRESS", None, resource, "{}")
        raise ProvisionError(str(exc)) from exc
    resource.properties = properties
    stack.add_event("CREATE_IN_PROGRESS", None, resource, json.dumps(properties))
    if provisioner is None:
        raise ProvisionError(
            f"labkit's local cloud cannot create resources of type {resource.type} ({resource.logical_id}): it "
            f"creates {', '.join(sorted(PROVISIONERS))}. Deploy this template to an AWS account, or leave the "
            "resource out."
        )
    problem = property_problems(resource.logical_id, resource.type, properties, context.region)
    if problem:
        raise ProvisionError(problem)
    properties = coerce_properties(resource.type, properties, context.region)
    unsupported = sorted(set(properties) - provisioner.properties)
    if unsupported:
        raise ProvisionError(
            f"labkit's local cloud does not implement {', '.join(unsupported)} of {resource.type} "
            f"({resource.logical_id}); it implements {', '.join(sorted(provisioner.properties))}. Leave "
            f"{'them' if len(unsupported) > 1 else 'it'} out locally, or deploy this template to an AWS account."
        )
    if not properties and resource.type not in _NO_PROPERTIES_NEEDED:
        raise ProvisionError(f"Properties validation failed for resource {resource.logical_id}: no Properties given")
    try:
        made = provisioner.create(context, resource.logical_id, properties)
    except ProvisionError:
        raise
    except Exception as exc:  # a provisioner's bug must fail the resource, never leave the stack in progress
        log.exception("creating %s (%s) failed", resource.logical_id, resource.type)
        raise ProvisionError(f"Internal failure: {type(exc).__name__}: {exc}") from exc
    resource.physical_id, resource.attributes = made.physical_id, made.attributes
    stack.add_event("CREATE_IN_PROGRESS", "Resource creation Initiated", resource, json.dumps(properties))
    stack.add_event("CREATE_COMPLETE", None, resource)


def _complete(stack: Stack, resolver: Resolver) -> None:
    outputs = []
    for key, output in (stack.processed.get("Outputs") or {}).items():
        if "Condition" in output and not resolver.condition(output["Condition"]):
            continue
        try:
            value = resolver.resolve(output.get("Value"))
        except (ResolveError, TemplateError) as exc:
            log.warning("output %s of stack %s: %s", key, stack.name, exc)
            continue
        row = {"OutputKey": key, "OutputValue": value if isinstance(value, str) else json.dumps(value)}
        if output.get("Description"):
            row["Description"] = output["Description"]
        if output.get("Export"):
            row["ExportName"] = str(resolver.resolve(output["Export"].get("Name")))
        outputs.append(row)
    stack.outputs = outputs
    stack.add_event("CREATE_COMPLETE")


def delete(stack: Stack, context: Context) -> None:
    """Delete the stack's resources in reverse order of creation, then the stack (DELETE_COMPLETE or DELETE_FAILED)."""
    stack.add_event("DELETE_IN_PROGRESS", "User Initiated")
    if _delete_all(stack, context, rollback=False):
        stack.deletion_time = now()
        stack.add_event("DELETE_COMPLETE")
    else:
        failed = [r.logical_id for r in stack.resources.values() if r.status == "DELETE_FAILED"]
        stack.add_event("DELETE_FAILED", f"The following resource(s) failed to delete: [{', '.join(failed)}]. ")


def _delete_all(stack: Stack, context: Context, rollback: bool) -> bool:
    ok = True
    for resource in reversed(list(stack.resources.values())):
        if context.stopping.is_set():
            return False
        if resource.status in ("", "DELETE_COMPLETE", "DELETE_SKIPPED"):
            continue
        if not resource.physical_id:
            # Never made (its creation failed first): nothing to delete, but the event says it was seen to.
            stack.add_event("DELETE_COMPLETE", None, resource)
            continue
        if not rollback and resource.definition.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate"):
            stack.add_event("DELETE_SKIPPED", None, resource)
            continue
        stack.add_event("DELETE_IN_PROGRESS", None, resource)
        try:
            PROVISIONERS[resource.type].delete(
                context, Created(resource.physical_id, resource.attributes), resource.properties
            )
        except Exception as exc:  # any failure to delete is the resource's DELETE_FAILED, as on AWS
            log.warning("deleting %s (%s) failed: %s", resource.logical_id, resource.type, exc)
            stack.add_event("DELETE_FAILED", str(exc), resource)
            ok = False
            continue
        stack.add_event("DELETE_COMPLETE", None, resource)
    return ok
