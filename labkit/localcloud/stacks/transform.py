"""A template made ready to deploy, as CloudFormation does before creating anything.

The SAM transform (`Transform: AWS::Serverless-2016-10-31`) is applied by AWS's own translator,
`aws-sam-translator`, which the SAM CLI and CloudFormation's transform run; its error reaches the
change set as "Transform AWS::Serverless-2016-10-31 failed with: ..."
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/transform-aws-serverless.html).
Resource types are known from CloudFormation's registry schemas as cfn-lint ships them, and IAM
resources need the capabilities AWS asks for
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html, Capabilities).
"""

from __future__ import annotations

import copy
import logging
from functools import cache
from typing import Any

import boto3

from labkit.localcloud.stacks.template import TemplateError

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
CAPABILITY_IAM = "CAPABILITY_IAM"
CAPABILITY_NAMED_IAM = "CAPABILITY_NAMED_IAM"
CAPABILITY_AUTO_EXPAND = "CAPABILITY_AUTO_EXPAND"
# IAM types and the property that names each: a name needs CAPABILITY_NAMED_IAM.
IAM_TYPES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::UserToGroupAddition": None,
}

log = logging.getLogger(__name__)


class CapabilitiesError(Exception):
    """The template needs capabilities the request did not acknowledge (InsufficientCapabilitiesException)."""


class TransformError(Exception):
    """The transform refused the template; the message is the change set's StatusReason."""


def transforms(template: dict[str, Any]) -> list[str]:
    """The template's Transform section as a list."""
    declared = template.get("Transform") or []
    return [declared] if isinstance(declared, str) else list(declared)


def apply_transforms(
    template: dict[str, Any], parameters: dict[str, str], region: str, account: str, iam_client: Any
) -> dict[str, Any]:
    """The template with its transforms applied: the SAM transform, and no other (macros are not run)."""
    declared = transforms(template)
    other = [name for name in declared if name != SAM_TRANSFORM]
    if other:
        raise TransformError(
            f"labkit's local cloud runs the {SAM_TRANSFORM} transform only, not {', '.join(other)}: "
            "deploy this template to an AWS account."
        )
    if not declared:
        return template
    from samtranslator.metrics.metrics import Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.translator import Translator

    session = boto3.Session(region_name=region, aws_access_key_id="local", aws_secret_access_key="local")
    values = {**parameters, "AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws"}
    metrics = Metrics()
    loader = ManagedPolicyLoader(iam_client)
    try:
        translated = Translator(None, Parser(), boto_session=session, metrics=metrics).translate(
            copy.deepcopy(template), parameter_values=values, get_managed_policy_map=cache(loader.load)
        )
    except InvalidDocumentException as exc:
        causes = " ".join(cause.message for cause in exc.causes)
        raise TransformError(f"Transform {SAM_TRANSFORM} failed with: {exc.message} {causes}".strip()) from exc
    finally:
        metrics.publish()
    return dict(translated)


def required_capabilities(template: dict[str, Any]) -> list[str]:
    """The IAM capabilities the template's resources need, as AWS names them."""
    needed: list[str] = []
    for resource in (template.get("Resources") or {}).values():
        kind = resource.get("Type") if isinstance(resource, dict) else None
        if kind not in IAM_TYPES:
            continue
        naming = IAM_TYPES[kind]
        if naming and (resource.get("Properties") or {}).get(naming):
            return [CAPABILITY_NAMED_IAM]
        needed = [CAPABILITY_IAM]
    return needed


def check_capabilities(template: dict[str, Any], granted: list[str]) -> None:
    """Raise CapabilitiesError unless *granted* covers what the template's IAM resources need."""
    needed = required_capabilities(template)
    if needed == [CAPABILITY_IAM] and CAPABILITY_NAMED_IAM in granted:
        return
    missing = [c for c in needed if c not in granted]
    if missing:
        raise CapabilitiesError(f"Requires capabilities : [{', '.join(missing)}]")


def check_types(template: dict[str, Any], region: str) -> None:
    """Raise TemplateError for resource types CloudFormation's registry does not know, as AWS does."""
    known = _known_types(region)
    unknown = sorted(
        {
            str(resource.get("Type"))
            for resource in (template.get("Resources") or {}).values()
            if isinstance(resource, dict)
            and resource.get("Type") not in known
            and not str(resource.get("Type", "")).startswith("Custom::")
        }
    )
    if unknown:
        raise TemplateError(f"Template format error: Unrecognized resource types: [{', '.join(unknown)}]")


@cache
def _known_types(region: str) -> frozenset[str]:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    return frozenset(PROVIDER_SCHEMA_MANAGER.get_resource_types(region))


def property_problems(logical_id: str, kind: str, properties: dict[str, Any], region: str) -> str | None:
    """AWS's reason for properties the type's schema refuses (a required one missing, an unknown one), or None."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, kind).schema
    allowed = set(schema.get("properties", {}))
    read_only = {path.rsplit("/", 1)[-1] for path in schema.get("readOnlyProperties", [])}
    problems = [f"#: required key [{key}] not found" for key in schema.get("required", []) if key not in properties]
    problems += [f"#: extraneous key [{key}] is not permitted" for key in properties if key not in allowed - read_only]
    if not problems:
        return None
    return f"Properties validation failed for resource {logical_id} with message: [{', '.join(problems)}]"


def check_template(template: dict[str, Any]) -> None:
    """Raise TemplateError for a template without resources, as CloudFormation does."""
    if not isinstance(template.get("Resources"), dict) or not template["Resources"]:
        raise TemplateError("Template format error: At least one Resources member must be defined.")


def coerce_properties(kind: str, properties: dict[str, Any], region: str) -> dict[str, Any]:
    """*properties* with strings turned into the integers, numbers and booleans the type's schema asks for.

    A parameter is a string; CloudFormation converts it where the resource takes a number
    (`Timeout: !Ref FunctionTimeout`), as the type's registry schema says.
    """
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, kind).schema
    return dict(_coerce(properties, {"type": "object", "properties": schema.get("properties", {})}, schema))


def _coerce(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        schema = root.get("definitions", {}).get(ref.rsplit("/", 1)[-1], {})
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if isinstance(value, dict):
        members = schema.get("properties", {})
        return {k: _coerce(v, members.get(k, {}), root) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce(v, schema.get("items", {}), root) for v in value]
    if isinstance(value, str) and "string" not in kinds:
        try:
            if "integer" in kinds:
                return int(value)
            if "number" in kinds:
                return float(value) if "." in value else int(value)
        except ValueError:
            return value
        if "boolean" in kinds and value.lower() in ("true", "false"):
            return value.lower() == "true"
    return value
