"""Every use of moto's internals in labkit, in one place.

moto mocks the AWS APIs but runs Lambda code only in Docker, and its own SQS trigger consumes
messages without running anything. The local cloud therefore needs four things moto's public API
does not offer: switch that trigger off, read a function's deployed zip, route `lambda:Invoke` to
labkit's runtime, and load the AWS managed policies into IAM. `tests/test_seam.py` fails loudly
if a moto release moves any of them.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

import moto
from moto.awslambda.models import LambdaFunction
from moto.awslambda.utils import get_backend as _lambda_backend
from moto.sqs.models import Queue

# The moto releases these hooks were tested against; pyproject.toml pins the same range.
TESTED_MOTO = ("5.1", "5.2")

InvokeHook = Callable[[str, dict[str, Any]], tuple[str, bool, str]]

_lock = threading.Lock()
_installed = False
_invoke_hook: InvokeHook | None = None
_original_invoke = LambdaFunction._invoke_lambda


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


def install(invoke_hook: InvokeHook | None = None) -> None:
    """Patch moto for the local cloud; idempotent. *invoke_hook* runs `lambda:Invoke` requests."""
    global _installed, _invoke_hook
    with _lock:
        if invoke_hook is not None:
            _invoke_hook = invoke_hook
        if _installed:
            return
        check_compatible()
        Queue.lambda_event_source_mappings = _NoTrigger()  # type: ignore[assignment]
        LambdaFunction._invoke_lambda = _invoke  # type: ignore[method-assign]
        # Read whenever moto builds an IAM backend, in this process and in a moto server.
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        _installed = True


def check_compatible() -> None:
    """Fail with a clear message if moto no longer has the attributes the hooks replace."""
    version = moto.__version__
    problems = []
    if not any(version.startswith(v + ".") or version == v for v in TESTED_MOTO):
        problems.append(f"moto {version} is outside the tested range {', '.join(TESTED_MOTO)}")
    if not hasattr(LambdaFunction, "_invoke_lambda"):
        problems.append("moto.awslambda.models.LambdaFunction._invoke_lambda is gone")
    if "lambda_event_source_mappings" not in Queue.add_message.__code__.co_names:
        problems.append("moto.sqs.models.Queue.add_message no longer walks lambda_event_source_mappings")
    if problems:
        raise RuntimeError("labkit's local cloud does not support this moto: " + "; ".join(problems))


def trigger_disabled() -> bool:
    """True once moto's own SQS trigger is switched off."""
    return isinstance(Queue.__dict__.get("lambda_event_source_mappings"), _NoTrigger)


def function_code(function_arn: str) -> bytes:
    """The zip deployed for the function with *function_arn* (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`)."""
    parts = function_arn.split(":")
    region, account, name = parts[3], parts[4], parts[6]
    return _lambda_backend(account, region).get_function(name).code_bytes


def _invoke(self: LambdaFunction, event: str | dict[str, Any] | None = None) -> tuple[str, bool, str]:
    if _invoke_hook is None:
        return _original_invoke(self, event)
    payload = json.loads(event) if isinstance(event, str) else (event or {})
    return _invoke_hook(self.function_arn, payload)
