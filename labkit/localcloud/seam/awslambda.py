"""Lambda: moto's own SQS trigger switched off, `lambda:Invoke` routed to labkit's runtime, and a
function's code and configuration read as AWS's service reads them, from its own state.

moto runs Lambda code only in Docker, and its SQS trigger consumes messages without running
anything; labkit's Lambda service (`labkit.localcloud.service`) does both instead.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import get_backend as _lambda_backend
from moto.sqs.models import Queue

from labkit.localcloud.patching import Patch, PatchTable, gone_lines

InvokeHook = Callable[[str, dict[str, Any]], tuple[str, bool, str]]

_invoke_hook: InvokeHook | None = None

_original_invoke = LambdaFunction._invoke_lambda
_original_invoke_api = LambdaFunction.invoke


class _NoTrigger:
    """Stands in for `Queue.lambda_event_source_mappings`: always empty, ignores writes.

    moto's `Queue.add_message` walks this dict and, with Docker absent, deletes each message as if
    a function had processed it. Keeping it empty leaves the queue to labkit's Lambda service, which
    reads the mappings through the Lambda API like AWS's pollers do.
    """

    def __get__(self, instance: object, owner: type | None = None) -> dict[str, Any]:
        return {}

    def __set__(self, instance: object, value: object) -> None:
        pass


def trigger_disabled() -> bool:
    """True once moto's own SQS trigger is switched off."""
    return isinstance(Queue.__dict__.get("lambda_event_source_mappings"), _NoTrigger)


def function_code(function_arn: str) -> bytes:
    """The zip deployed for the function with *function_arn* (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`)."""
    parts = function_arn.split(":")
    region, account, name = parts[3], parts[4], parts[6]
    return _lambda_backend(account, region).get_function(name).code_bytes


def _invoke_api(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
    result = _original_invoke_api(self, body, request_headers, response_headers)
    # The Python runtime reports an exception the handler raised as "Unhandled"; moto says "Handled".
    if response_headers.get("x-amz-function-error") == "Handled":
        response_headers["x-amz-function-error"] = "Unhandled"
    if request_headers.get("X-Amz-Invocation-Type", "RequestResponse") == "RequestResponse":
        # A synchronous invoke says which version ran (an unqualified one runs $LATEST):
        # https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_ResponseSyntax
        response_headers["x-amz-executed-version"] = str(self.version)
    return result


def _invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    if _invoke_hook is None:
        return _original_invoke(self, event)
    # moto's invoke() hands over the payload already decoded (any JSON value, a string too), or the
    # text "{}" when the request had no payload; decoding it again would break on a string event.
    payload = {} if event == "{}" else event
    return _invoke_hook(self.function_arn, payload)


def function_configuration(function: str, account: str, region: str) -> dict[str, Any]:
    """What GetFunctionConfiguration returns for *function* (name or ARN), read from moto's Lambda backend.

    The local Lambda service reads it before every invocation, as AWS's does from its own state;
    through the API that was one more request per invocation.
    """
    if function.startswith("arn:"):
        region, account = function.split(":")[3:5]
    configuration = copy.deepcopy(_lambda_backend(account, region).get_function(function).get_configuration())
    # The API leaves out fields that have no value.
    configuration = {key: value for key, value in configuration.items() if value is not None}
    return LambdaResponse._set_configuration_qualifier(configuration, function, None)  # type: ignore[arg-type]


_PATCHES = PatchTable(
    # moto gives each queue its own dict of mappings; the class-level stand-in takes its place.
    Patch(Queue, "lambda_event_source_mappings", _NoTrigger(), added=True),
    Patch(LambdaFunction, "_invoke_lambda", _invoke),
    Patch(LambdaFunction, "invoke", _invoke_api),
    gone="{module}.{owner}.{name} is gone",
)


def install(invoke_hook: InvokeHook | None = None) -> None:
    """Switch moto's SQS trigger off and route `lambda:Invoke` to *invoke_hook* (the latest one given)."""
    global _invoke_hook
    if invoke_hook is not None:
        _invoke_hook = invoke_hook
    _PATCHES.install()


def problems() -> list[str]:
    """What this moto lacks of the Lambda internals replaced here."""
    found = _PATCHES.missing()
    # signals.py wraps add_message to wake the pollers; the check reads the method it wraps.
    if "lambda_event_source_mappings" not in inspect.unwrap(Queue.add_message).__code__.co_names:
        found.append("moto.sqs.models.Queue.add_message no longer walks lambda_event_source_mappings")
    return found + gone_lines(((LambdaFunction, "get_configuration"), (LambdaResponse, "_set_configuration_qualifier")))
