"""CloudFormation templates as text: read JSON or YAML (short-form intrinsics too) and write YAML.

CloudFormation reads `!Ref X` as `{"Ref": "X"}`, `!GetAtt A.B` as `{"Fn::GetAtt": ["A", "B"]}` and any
other `!Name` as `{"Fn::Name": ...}`, and keeps a value such as `2012-10-17` a string, never a date
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html).
Both the local cloud and the exporter read templates this way; `dump_template` writes the short forms back.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from labkit.errors import InputError

# The intrinsics whose short form is `!Name` for `Fn::Name`; `Ref` and `Condition` have no `Fn::`.
_PLAIN_TAGS = ("Ref", "Condition")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without timestamps: CloudFormation keeps `2012-10-17` a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in _PLAIN_TAGS else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


def load_template(text: str, source: str = "the template") -> dict[str, Any]:
    """Read a template (JSON or YAML); InputError names the line CloudFormation would refuse."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"Template format error: {source} is not well-formed JSON (line {exc.lineno}, column {exc.colno})."
            ) from exc
    else:
        try:
            loaded = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise InputError(f"Template format error: {source} is not well-formed YAML{where}.") from exc
    if not isinstance(loaded, dict):
        raise InputError(f"Template format error: {source} is not a JSON or YAML object of sections.")
    return loaded


def load_fragment(text: str, source: str = "the YAML") -> dict[str, Any]:
    """Read part of a template (resources or properties, with the same short-form intrinsics); empty is {}.

    A student's answer that is still only a comment reads as nothing, not as an error.
    """
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        return {}
    return load_template(text, source)


class _Tagged:
    """An intrinsic function to be written in its short form."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order given, intrinsics in their short form."""

    def choose_scalar_style(self) -> str:
        # A tagged scalar is never "implicit", so PyYAML would quote `!Ref 'Queue'`; plain reads the same.
        event = self.event
        if isinstance(event, yaml.ScalarEvent) and str(event.tag).startswith("!") and not event.style:
            analysis = self.analysis or self.analyze_scalar(event.value)
            if analysis.allow_block_plain and analysis.allow_flow_plain and not analysis.multiline:
                return ""
        return str(super().choose_scalar_style())


def _represent_tagged(dumper: yaml.SafeDumper, data: _Tagged) -> yaml.Node:
    if isinstance(data.value, list):
        return dumper.represent_sequence(data.tag, data.value, flow_style=all(_is_flat(v) for v in data.value))
    if isinstance(data.value, dict):
        return dumper.represent_mapping(data.tag, data.value)
    return dumper.represent_scalar(data.tag, str(data.value))


def _is_flat(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


_Dumper.add_representer(_Tagged, _represent_tagged)


def _short_forms(value: Any) -> Any:
    if isinstance(value, list):
        return [_short_forms(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key in _PLAIN_TAGS or key.startswith("Fn::"):
            tag = key.removeprefix("Fn::")
            if tag == "GetAtt" and isinstance(inner, list) and all(isinstance(p, str) for p in inner):
                return _Tagged("!GetAtt", ".".join(inner))
            return _Tagged(f"!{tag}", _short_forms(inner))
    return {key: _short_forms(inner) for key, inner in value.items()}


def dump_template(template: dict[str, Any]) -> str:
    """The template as YAML, intrinsics in their short form (`!Ref`, `!GetAtt A.B`, `!Sub`)."""
    return yaml.dump(_short_forms(template), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
