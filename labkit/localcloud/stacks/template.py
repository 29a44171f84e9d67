"""A template as CloudFormation reads it: parameters, conditions, intrinsic functions, order of creation.

What CloudFormation refuses before it creates anything is a `TemplateError` (the API's
`ValidationError`, in AWS's words); what can only fail while a resource is made is a `ResolveError`,
which fails that resource. References:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Any

NO_VALUE = "AWS::NoValue"
_SUB_RE = re.compile(r"\$\{([^}!][^}]*)\}")
_REMOVE = object()


class TemplateError(Exception):
    """The template or its parameters are invalid: CloudFormation answers ValidationError."""


class ResolveError(Exception):
    """A value cannot be resolved while its resource is created: that resource fails."""


def resolve_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Each declared parameter's value: the one given, else its default, checked as CloudFormation checks it."""
    declared = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    missing = sorted(name for name, spec in declared.items() if name not in given and "Default" not in (spec or {}))
    if missing:
        raise TemplateError(f"Parameters: [{', '.join(missing)}] must have values")
    values = {}
    for name, spec in declared.items():
        spec = spec or {}
        value = str(given[name]) if name in given else _scalar(spec["Default"])
        _check_parameter(name, spec, value)
        values[name] = value
    return values


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    kind = spec.get("Type", "String")
    if kind not in ("String", "Number", "CommaDelimitedList", "List<Number>"):
        raise TemplateError(
            f"Parameter '{name}' has type {kind}, which labkit's local cloud does not resolve: use String, "
            "Number or CommaDelimitedList, or deploy to an AWS account."
        )
    constraint = spec.get("ConstraintDescription")
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"Parameter '{name}' must be a number.") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(constraint or f"Parameter '{name}' must be a number not less than {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(
                constraint or f"Parameter '{name}' must be a number not greater than {spec['MaxValue']}"
            )
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_scalar(v) for v in allowed]:
        raise TemplateError(constraint or f"Parameter '{name}' must be one of AllowedValues")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise TemplateError(
            f"Parameter {name} failed to satisfy constraint: {constraint}"
            if constraint
            else f"Parameter '{name}' must match pattern {pattern}"
        )
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise TemplateError(constraint or f"Parameter '{name}' must contain at least {spec['MinLength']} characters")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise TemplateError(constraint or f"Parameter '{name}' must contain at most {spec['MaxLength']} characters")


class Resolver:
    """Resolves intrinsic functions against parameters, conditions and the resources made so far."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        ref: Callable[[str], Any] | None = None,
        get_att: Callable[[str, str], Any] | None = None,
    ) -> None:
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self._ref = ref
        self._get_att = get_att
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        """The value of the template's condition *name*."""
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"Template format error: Unresolved condition dependency {name} in Fn::If")
            self._conditions[name] = bool(self._condition_value(conditions[name]))
        return self._conditions[name]

    def _condition_value(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Fn::Equals":
                left, right = (self._condition_value(a) for a in arg)
                return _scalar(left) == _scalar(right)
            if key == "Fn::Not":
                return not self._condition_value(arg[0])
            if key == "Fn::And":
                return all(self._condition_value(a) for a in arg)
            if key == "Fn::Or":
                return any(self._condition_value(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        return self.resolve(node)

    def resolve(self, node: Any) -> Any:
        """*node* with every intrinsic function replaced by its value and AWS::NoValue removed."""
        value = self._resolve(node)
        return None if value is _REMOVE else value

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self._resolve(item) for item in node) if v is not _REMOVE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._reference(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        return {k: v for k, v in ((k, self._resolve(v)) for k, v in node.items()) if v is not _REMOVE}

    def _reference(self, name: str) -> Any:
        if name == NO_VALUE:
            return _REMOVE
        if name in self.parameters:
            return self._parameter(name)
        if name in self.pseudo:
            return self.pseudo[name]
        if self._ref is None:
            raise ResolveError(f"Ref {name} cannot be resolved here")
        return self._ref(name)

    def _parameter(self, name: str) -> Any:
        kind = ((self.template.get("Parameters") or {}).get(name) or {}).get("Type", "String")
        value = self.parameters[name]
        return [v.strip() for v in value.split(",")] if kind in ("CommaDelimitedList", "List<Number>") else value

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self._resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::GetAtt":
            logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            if self._get_att is None:
                raise ResolveError(f"Fn::GetAtt {logical}.{attribute} cannot be resolved here")
            return self._get_att(logical, self._resolve(attribute))
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(_scalar(v) for v in self._resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self._resolve(items)[int(self._resolve(index))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self._resolve(text)).split(separator)
        if key == "Fn::FindInMap":
            name, top, second = (self._resolve(a) for a in arg[:3])
            try:
                return (self.template.get("Mappings") or {})[name][top][second]
            except KeyError:
                raise ResolveError(f"Fn::FindInMap: mapping {name} has no [{top}][{second}]") from None
        if key == "Fn::Base64":
            return base64.b64encode(str(self._resolve(arg)).encode()).decode()
        raise ResolveError(
            f"labkit's local cloud does not resolve {key}: it resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, "
            "Fn::Select, Fn::Split, Fn::If, Fn::FindInMap and Fn::Base64. Deploy this template to an AWS account."
        )

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {name: self._resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return _scalar(values[name])
            if "." in name and name.split(".", 1)[0] not in self.parameters:
                logical, attribute = name.split(".", 1)
                return _scalar(self._function("Fn::GetAtt", [logical, attribute]))
            return _scalar(self._reference(name))

        return _SUB_RE.sub(replace, text).replace("${!", "${")


def references(node: Any) -> set[str]:
    """Every name *node* refers to: Ref, Fn::GetAtt and the variables of Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, arg in node.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg.split(".", 1)[0] if isinstance(arg, str) else arg[0])
            elif key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                local = set(variables)
                found |= {m.split(".", 1)[0] for m in _SUB_RE.findall(str(text)) if m not in local}
                found |= references(variables)
            else:
                found |= references(arg)
    return found


def creation_order(resources: Mapping[str, Any], names: set[str]) -> list[str]:
    """Logical ids in an order where each comes after what it refers to or DependsOn.

    *names* are the parameters and pseudo parameters: a reference to anything else is unresolved.
    """
    graph: dict[str, set[str]] = {}
    unresolved: set[str] = set()
    for logical, resource in resources.items():
        if not isinstance(resource, dict) or "Type" not in resource:
            raise TemplateError(
                f"Template format error: [/Resources/{logical}] Every Resources object must contain a Type member."
            )
        depends = resource.get("DependsOn") or []
        needed = references(resource.get("Properties") or {}) | set([depends] if isinstance(depends, str) else depends)
        unresolved |= {name for name in needed if name not in resources and name not in names}
        graph[logical] = {name for name in needed if name in resources}
    if unresolved:
        raise TemplateError(
            f"Template format error: Unresolved resource dependencies [{', '.join(sorted(unresolved))}] in the "
            "Resources block of the template"
        )
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle = sorted(set(exc.args[1]))
        raise TemplateError(f"Circular dependency between resources: [{', '.join(cycle)}]") from None
