"""Two templates compared resource by resource, as CloudFormation would see them.

A SAM template is first translated with AWS's own translator (aws-sam-translator), as CloudFormation
does before deploying it, so `AWS::Serverless::Function` meets the `AWS::Lambda::Function`, role and
event source mapping an exported template spells out. Local code paths are read as packaged code
(`s3://local/code`), and code locations are not compared: the same handler lives at different places.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from labkit.config import DEFAULT_REGION
from labkit.errors import InputError
from labkit.iac.names import SAM_TRANSFORM
from labkit.iac.package import local_code
from labkit.iac.stacks import read_template

# Where the code is differs by nature between two deployments of the same function.
_IGNORED = {("AWS::Lambda::Function", "Code")}


@dataclass(frozen=True)
class Difference:
    """One difference: a resource only on one side, or one property (a path into it) that differs."""

    resource: str
    type: str
    path: str
    left: Any
    right: Any

    @property
    def kind(self) -> str:
        """`added` (right only), `removed` (left only) or `changed`."""
        if self.left is None:
            return "added"
        if self.right is None:
            return "removed"
        return "changed"


def processed(template: Path | str | Mapping[str, Any], region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The template as CloudFormation deploys it: the SAM transform applied, if it declares it."""
    body, _ = read_template(template)
    declared = body.get("Transform") or []
    if SAM_TRANSFORM not in ([declared] if isinstance(declared, str) else declared):
        return body
    body = copy.deepcopy(body)
    for logical, prop, _path in local_code(body):
        body["Resources"][logical]["Properties"][prop] = "s3://local/code"
    from samtranslator.metrics.metrics import Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.translator import Translator

    session = boto3.Session(region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline")
    metrics = Metrics()
    try:
        return dict(
            Translator(None, Parser(), boto_session=session, metrics=metrics).translate(
                body, parameter_values={"AWS::Region": region}, get_managed_policy_map=dict
            )
        )
    except InvalidDocumentException as exc:
        causes = " ".join(cause.message for cause in exc.causes)
        raise InputError(f"The SAM transform refused the template: {exc.message} {causes}".strip()) from exc
    finally:
        metrics.publish()


def diff_templates(
    left: Path | str | Mapping[str, Any], right: Path | str | Mapping[str, Any], region: str = DEFAULT_REGION
) -> list[Difference]:
    """How *right* differs from *left*, per resource (by logical id) and property, SAM translated first."""
    before = processed(left, region).get("Resources") or {}
    after = processed(right, region).get("Resources") or {}
    found: list[Difference] = []
    for logical in [*before, *(name for name in after if name not in before)]:
        one, other = before.get(logical), after.get(logical)
        kind = (one or other or {}).get("Type", "")
        if one is None or other is None:
            found.append(Difference(logical, kind, "", one and kind, other and kind))
            continue
        if one.get("Type") != other.get("Type"):
            found.append(Difference(logical, kind, "Type", one.get("Type"), other.get("Type")))
            continue
        props = {k: v for k, v in (one.get("Properties") or {}).items() if (kind, k) not in _IGNORED}
        other_props = {k: v for k, v in (other.get("Properties") or {}).items() if (kind, k) not in _IGNORED}
        found.extend(Difference(logical, kind, path, a, b) for path, a, b in _walk(props, other_props, ""))
    return found


def _walk(left: Any, right: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(left, dict) and isinstance(right, dict):
        for key in [*left, *(k for k in right if k not in left)]:
            yield from _walk(left.get(key), right.get(key), f"{path}.{key}" if path else key)
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            yield from _walk(a, b, f"{path}[{index}]")
    elif _normal(left) != _normal(right):
        yield path, left, right


def _normal(value: Any) -> Any:
    # A template may write 3 or "3": CloudFormation reads both as the same property value.
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value
