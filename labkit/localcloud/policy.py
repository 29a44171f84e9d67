"""Resource policies and identity policies evaluated as AWS evaluates them, for the local cloud's rules.

Pure functions over policy documents (dicts or JSON text): an explicit Deny wins, then any Allow,
else the request is implicitly denied. Actions match case-insensitively with `*` and `?`; resources
and ARN conditions match per ARN component, as the IAM reference describes
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
A condition operator this module does not know makes its statement not apply, so an unknown
condition can neither grant nor deny.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

ALLOW = "Allow"
DENY = "Deny"
IMPLICIT_DENY = "ImplicitDeny"


def statements(document: str | Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The statements of a policy document, always as a list (empty for no policy or bad JSON)."""
    if not document:
        return []
    if isinstance(document, str):
        # A queue's policy is read on every delivery; parsing it once per text keeps that cheap.
        return list(_parsed(document))
    return _statements_of(document)


@lru_cache(maxsize=256)
def _parsed(text: str) -> tuple[Mapping[str, Any], ...]:
    try:
        document = json.loads(text)
    except ValueError:
        return ()
    return tuple(_statements_of(document))


def _statements_of(document: Any) -> list[Mapping[str, Any]]:
    if not isinstance(document, Mapping):
        return []
    body = document.get("Statement", [])
    body = [body] if isinstance(body, Mapping) else body
    return [s for s in body if isinstance(s, Mapping)] if isinstance(body, list) else []


def evaluate(
    documents: Iterable[str | Mapping[str, Any] | None],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
    principals: Mapping[str, list[str]] | None = None,
) -> str:
    """ALLOW, DENY (an explicit Deny matched) or IMPLICIT_DENY for *action* on *resource*.

    With *principals* (e.g. `{"Service": ["sns.amazonaws.com"]}` or `{"AWS": [role_arn, account]}`)
    the documents are resource policies and a statement must name one of them (or everyone);
    without it they are identity policies.
    """
    context = context or {}
    allowed = False
    for document in documents:
        for statement in statements(document):
            if not _applies(statement, action, resource, context, principals):
                continue
            if statement.get("Effect") == DENY:
                return DENY
            if statement.get("Effect") == ALLOW:
                allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def _applies(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    context: Mapping[str, str],
    principals: Mapping[str, list[str]] | None,
) -> bool:
    if principals is not None and not _principal_matches(statement, principals):
        return False
    if "Action" in statement:
        if not any(_action_matches(p, action) for p in _strings(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_action_matches(p, action) for p in _strings(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(arn_matches(p, resource) for p in _strings(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(arn_matches(p, resource) for p in _strings(statement["NotResource"])):
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def _principal_matches(statement: Mapping[str, Any], principals: Mapping[str, list[str]]) -> bool:
    if "Principal" in statement:
        return _names_principal(statement["Principal"], principals)
    if "NotPrincipal" in statement:
        return not _names_principal(statement["NotPrincipal"], principals)
    return False


def _names_principal(principal: Any, principals: Mapping[str, list[str]]) -> bool:
    # "*" and {"AWS": "*"} mean everyone, service principals included: the SQS console's
    # "Subscribe to Amazon SNS topic" writes {"AWS": "*"} with an aws:SourceArn condition.
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if "*" in _strings(principal.get("AWS", [])):
        return True
    return any(name in principals.get(kind, []) for kind, names in principal.items() for name in _strings(names))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


@lru_cache(maxsize=1024)
def _wildcard(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _action_matches(pattern: str, action: str) -> bool:
    return bool(_wildcard(pattern, True).match(action))


def string_like(pattern: str, value: str) -> bool:
    """StringLike: `*` and `?` anywhere, case-sensitive."""
    return bool(_wildcard(pattern).match(value))


@lru_cache(maxsize=4096)
def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike / ArnEquals / Resource: each of the six colon-separated parts matched on its own."""
    if pattern == "*":
        return True
    wanted = pattern.split(":", 5)
    actual = arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return False
    return all(string_like(w, a) for w, a in zip(wanted, actual, strict=True))


_POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": string_like,
    "ArnEquals": arn_matches,
    "ArnLike": arn_matches,
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _conditions_hold(conditions: Any, context: Mapping[str, str]) -> bool:
    if not isinstance(conditions, Mapping):
        return False
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, tests in conditions.items():
        if not isinstance(tests, Mapping):
            return False
        if_exists = operator.endswith("IfExists")
        base = operator[: -len("IfExists")] if if_exists else operator
        for key, patterns in tests.items():
            value = lowered.get(key.lower())  # condition keys are case-insensitive
            values = _strings(patterns)
            if base in _POSITIVE:
                if value is None:
                    if not if_exists:
                        return False
                    continue
                if not any(_POSITIVE[base](p, value) for p in values):
                    return False
            elif base in _NEGATED:
                # A negated operator holds when the key is absent.
                if value is not None and any(_POSITIVE[_NEGATED[base]](p, value) for p in values):
                    return False
            else:
                return False
    return True
