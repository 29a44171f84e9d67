"""Event filtering as Lambda applies it to an event source mapping's records.

A filter pattern names fields of the record (`body`, `attributes`, ...) and lists the values each
may take: literals, or the operators documented for Lambda event filtering (prefix, suffix,
anything-but, numeric, exists, equals-ignore-case). A record passes if every field of the pattern
matches: https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


def matches(pattern: Any, record: Any) -> bool:
    """True if *record* matches the filter *pattern*."""
    if not isinstance(pattern, dict):
        return False
    for key, wanted in pattern.items():
        value = record.get(key, _MISSING) if isinstance(record, dict) else _MISSING
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif isinstance(wanted, list):
            if not _any_rule(wanted, value):
                return False
        else:
            return False
    return True


def _any_rule(rules: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if bool(rule["exists"]) == (value is not _MISSING):
                return True
            continue
        if any(v is not _MISSING and _rule(rule, v) for v in values):
            return True
    return False


def _rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return bool(rule == value and type(rule) is type(value)) or (rule is None and value is None)
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(str(rule["prefix"]))
    if "suffix" in rule:
        return isinstance(value, str) and value.endswith(str(rule["suffix"]))
    if "equals-ignore-case" in rule:
        return isinstance(value, str) and value.lower() == str(rule["equals-ignore-case"]).lower()
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        if isinstance(excluded, dict):
            return not _rule(excluded, value)
        excluded = excluded if isinstance(excluded, list) else [excluded]
        return value not in excluded
    if "numeric" in rule:
        return _numeric(rule["numeric"], value)
    return False


def _numeric(conditions: list[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    checks = {
        "=": lambda a, b: a == b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    pairs = list(zip(conditions[::2], conditions[1::2], strict=False))
    return bool(pairs) and all(op in checks and checks[op](value, bound) for op, bound in pairs)
