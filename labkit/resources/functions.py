"""The Lambda function `OrderProcessor`: its deployment package, deploying it, and invoking it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code, found_or_none
from labkit.config import HANDLER_FILENAME, LAMBDA_HANDLER, LAMBDA_RUNTIME, Config
from labkit.errors import ResourceError

# The trigger's names, imported from here before it had triggers.py (`labkit.functions.ensure_mapping`
# in code written then), still answer here.
from labkit.resources.triggers import MappingInfo as MappingInfo
from labkit.resources.triggers import delete_mapping as delete_mapping
from labkit.resources.triggers import ensure_mapping as ensure_mapping
from labkit.resources.triggers import find_mapping as find_mapping
from labkit.resources.triggers import set_mapping_enabled as set_mapping_enabled
from labkit.session import Clients

log = logging.getLogger(__name__)

# A role is usable by IAM at once but by Lambda only after it has propagated, which on AWS takes
# up to about ten seconds; CreateFunction says so with this message.
ROLE_NOT_READY = "cannot be assumed by Lambda"
ROLE_PROPAGATION_S = 30
# Fixed zip timestamps keep CodeSha256 stable, so an unchanged handler is never redeployed.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class FunctionInfo:
    """The function's name, ARN and the hash of the deployed code; what this deploy changed, and any warning."""

    name: str
    arn: str
    code_sha256: str
    # "created", "code updated", "configuration updated", "code and configuration updated" or "unchanged".
    deployed: str = field(default="unchanged", compare=False)
    warning: str | None = field(default=None, compare=False)


def compile_problem(source: str, filename: str = HANDLER_FILENAME) -> str | None:
    """Why *source* does not compile, naming the file and line; None if it compiles.

    Lambda deploys such code all the same, and every invocation then fails with
    Runtime.UserCodeSyntaxError; saying so at deploy time saves a round trip through the queue.
    """
    try:
        compile(source, filename, "exec")
    except SyntaxError as exc:
        return (
            f"{filename} does not compile: {exc.msg} ({filename}, line {exc.lineno}). It was deployed as it is, as "
            "Lambda does, and every invocation will fail with Runtime.UserCodeSyntaxError until you fix that line."
        )
    return None


def handler_path() -> Path:
    """Where `lambda/code.py` is: the repository's copy, or the one packaged inside labkit."""
    package = Path(__file__).resolve().parents[1]
    repo_copy = package.parent / "lambda" / HANDLER_FILENAME
    if repo_copy.is_file():
        return repo_copy
    packaged = package / "lambda_code" / HANDLER_FILENAME
    if packaged.is_file():
        return packaged
    raise ResourceError(f"The handler file {HANDLER_FILENAME} is missing from labkit's install; reinstall labkit.")


def handler_source() -> str:
    """The handler's source code, as a student would paste it into the console."""
    return handler_path().read_text(encoding="utf-8")


def build_zip(source: str | None = None) -> bytes:
    """The deployment package: a zip holding `code.py`, built in memory."""
    text = handler_source() if source is None else source
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(HANDLER_FILENAME, date_time=_ZIP_DATE)
        info.external_attr = 0o644 << 16
        archive.writestr(info, text)
    return buffer.getvalue()


def code_sha256(package: bytes) -> str:
    """The CodeSha256 that Lambda reports for a package: base64 of its SHA-256."""
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


def _desired_configuration(config: Config, role_arn: str) -> dict[str, Any]:
    return {
        "Runtime": LAMBDA_RUNTIME,
        "Role": role_arn,
        "Handler": LAMBDA_HANDLER,
        "Timeout": config.function_timeout,
        "MemorySize": config.memory_mb,
        "Environment": {"Variables": {"TABLE_NAME": config.table_name}},
    }


def ensure_function(config: Config, clients: Clients, role_arn: str, source: str | None = None) -> FunctionInfo:
    """Deploy the handler as the function, creating it or updating code and settings that differ.

    Args:
        config: the function's name, timeout, memory and the table it writes.
        clients: boto3 clients for the backend.
        role_arn: the execution role.
        source: handler code to deploy instead of `lambda/code.py` (to practise a fix).
    Returns:
        The function's name, ARN and CodeSha256.
    """
    lam = clients("lambda")
    name = config.function_name
    text = handler_source() if source is None else source
    warning = compile_problem(text)
    if warning:
        log.info("%s", warning)  # returned too: the caller shows it where the student looks
    package = build_zip(text)
    desired = _desired_configuration(config, role_arn)
    current = found_or_none(
        lambda: lam.get_function_configuration(FunctionName=name), ("ResourceNotFoundException",), f"function {name}"
    )
    if current is None:
        log.info("creating function %s", name)
        current = _create_function(lam, name, package, desired, config)
        deployed = "created"
    else:
        parts = []
        if current.get("CodeSha256") != code_sha256(package):
            log.info("updating code of %s", name)
            lam.update_function_code(FunctionName=name, ZipFile=package)
            _wait_updated(lam, name)
            parts.append("code")
        changed = {k: v for k, v in desired.items() if not _same_setting(k, current, v)}
        if changed:
            log.info("updating settings of %s: %s", name, sorted(changed))
            lam.update_function_configuration(FunctionName=name, **changed)
            _wait_updated(lam, name)
            parts.append("configuration")
        current = lam.get_function_configuration(FunctionName=name)
        deployed = f"{' and '.join(parts)} updated" if parts else "unchanged"
    return FunctionInfo(
        name=name, arn=current["FunctionArn"], code_sha256=current["CodeSha256"], deployed=deployed, warning=warning
    )


def _same_setting(key: str, current: dict[str, Any], wanted: Any) -> bool:
    if key == "Environment":
        return current.get("Environment", {}).get("Variables", {}) == wanted["Variables"]
    return current.get(key) == wanted


def _create_function(lam: Any, name: str, package: bytes, desired: dict[str, Any], config: Config) -> dict[str, Any]:
    deadline = time.monotonic() + ROLE_PROPAGATION_S
    while True:
        try:
            created = lam.create_function(
                FunctionName=name, Code={"ZipFile": package}, Tags=dict(config.tags), Publish=False, **desired
            )
            break
        except ClientError as exc:
            if ROLE_NOT_READY in str(exc) and time.monotonic() < deadline:
                time.sleep(2)
                continue
            raise
    if created.get("State") != "Active":
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return created


def _wait_updated(lam: Any, name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def delete_function(config: Config, clients: Clients) -> bool:
    """Delete the function; True if it existed."""
    try:
        clients("lambda").delete_function(FunctionName=config.function_name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    return True


@dataclass(frozen=True)
class InvokeResult:
    """What the console's Test button shows: status, error kind, the returned payload and the log tail."""

    status_code: int
    function_error: str | None
    payload: Any
    log_tail: str


def invoke(config: Config, clients: Clients, event: dict[str, Any]) -> InvokeResult:
    """Invoke the function synchronously with *event*, as the console's Test button does."""
    reply = clients("lambda").invoke(
        FunctionName=config.function_name,
        InvocationType="RequestResponse",
        LogType="Tail",
        Payload=json.dumps(event).encode(),
    )
    raw = reply["Payload"].read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    tail = base64.b64decode(reply.get("LogResult", "")).decode(errors="replace") if reply.get("LogResult") else ""
    return InvokeResult(
        status_code=reply["StatusCode"], function_error=reply.get("FunctionError"), payload=payload, log_tail=tail
    )


def find_function(config: Config, clients: Clients) -> str | None:
    """The name under which the function exists (the lab's, or a spelling the grader accepts), or None."""
    lam = clients("lambda")
    for name in config.function_names:
        found = found_or_none(
            lambda name=name: lam.get_function_configuration(FunctionName=name),  # type: ignore[misc]
            ("ResourceNotFoundException",),
            f"function {name}",
        )
        if found is not None:
            return name
    return None
