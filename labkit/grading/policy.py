"""A small reader of IAM and SQS policy documents: enough to tell whether a role or queue allows what the lab needs.

It follows the documented evaluation for identity policies (an explicit Deny wins over any Allow;
Action, NotAction, Resource and NotResource with `*` and `?` wildcards; actions match case-insensitively)
and ignores conditions, permission boundaries and organisation policies, which the lab does not use.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

SOURCE_ARN_KEY = "aws:sourcearn"
# Condition operators that can pin aws:SourceArn to one ARN.
SOURCE_ARN_OPERATORS = ("arnequals", "arnlike", "stringequals", "stringlike")


def parse_document(document: Any) -> dict[str, Any]:
    """A policy document as a dict, whether boto3 gave a dict, JSON text or URL-encoded JSON (as IAM's raw API)."""
    if isinstance(document, dict):
        return document
    if not isinstance(document, str) or not document.strip():
        return {}
    text = document if document.lstrip().startswith("{") else urllib.parse.unquote(document)
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def statements(document: Any) -> list[dict[str, Any]]:
    """The statements of a policy document (a single statement object counts as a list of one)."""
    body = parse_document(document).get("Statement", [])
    return [s for s in as_list(body) if isinstance(s, dict)]


def as_list(value: Any) -> list[Any]:
    """A policy field that may be one value or a list, always as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@lru_cache(maxsize=512)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(patterns: Iterable[Any], value: str, ignore_case: bool = False) -> bool:
    """True if *value* matches any of the wildcard *patterns*."""
    return any(isinstance(p, str) and _pattern(p, ignore_case).match(value) for p in patterns)


def statement_covers(statement: dict[str, Any], action: str, resource: str | None) -> bool:
    """True if the statement's Action/NotAction and Resource/NotResource take in *action* on *resource*."""
    if "Action" in statement:
        action_ok = matches(as_list(statement["Action"]), action, ignore_case=True)
    elif "NotAction" in statement:
        action_ok = not matches(as_list(statement["NotAction"]), action, ignore_case=True)
    else:
        return False
    if not action_ok or resource is None:
        return action_ok
    if "Resource" in statement:
        return matches(as_list(statement["Resource"]), resource)
    if "NotResource" in statement:
        return not matches(as_list(statement["NotResource"]), resource)
    # Resource policies (a queue's) may leave Resource out: it then means the resource itself.
    return True


def allows(documents: Iterable[Any], action: str, resource: str) -> bool:
    """True if the identity policies allow *action* on *resource* and none denies it."""
    allowed = False
    for document in documents:
        for statement in statements(document):
            if not statement_covers(statement, action, resource):
                continue
            effect = str(statement.get("Effect", "")).lower()
            if effect == "deny":
                return False
            if effect == "allow":
                allowed = True
    return allowed


def principal_services(statement: dict[str, Any]) -> list[str]:
    """The service principals a statement names (`{"Service": ...}`)."""
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        return [s for s in as_list(principal.get("Service")) if isinstance(s, str)]
    return []


def is_public(statement: dict[str, Any]) -> bool:
    """True if the statement's principal is everyone (`"*"` or `{"AWS": "*"}`)."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))


def source_arns(statement: dict[str, Any]) -> list[str] | None:
    """The ARNs an aws:SourceArn condition pins the statement to, or None if it has no such condition."""
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return None
    found: list[str] | None = None
    for operator, clauses in condition.items():
        if str(operator).lower() not in SOURCE_ARN_OPERATORS or not isinstance(clauses, dict):
            continue
        for key, values in clauses.items():
            if str(key).lower() == SOURCE_ARN_KEY:
                found = (found or []) + [str(v) for v in as_list(values)]
    return found


def describe_statement(statement: dict[str, Any], index: int) -> str:
    """How a message names a statement: its Sid, or its position."""
    sid = statement.get("Sid")
    return f"statement {sid!r}" if sid else f"statement {index + 1}"
