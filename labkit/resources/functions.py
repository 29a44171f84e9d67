"""The Lambda function `OrderProcessor`, its SQS trigger, and invoking it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code, found_or_none
from labkit.config import HANDLER_FILENAME, LAMBDA_HANDLER, LAMBDA_RUNTIME, Config
from labkit.errors import ResourceError
from labkit.session import Clients

log = logging.getLogger(__name__)

# A role is usable by IAM at once but by Lambda only after it has propagated, which on AWS takes
# up to about ten seconds; CreateFunction says so with this message.
ROLE_NOT_READY = "cannot be assumed by Lambda"
ROLE_PROPAGATION_S = 30
# Fixed zip timestamps keep CodeSha256 stable, so an unchanged handler is never redeployed.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
_MAPPING_STATES_SETTLED = ("Enabled", "Disabled")
# A state change takes a fraction of a second in the local cloud and seconds on AWS: look soon, then
# every second.
_FIRST_POLL_S = 0.1
_LAST_POLL_S = 1.0


@dataclass(frozen=True)
class FunctionInfo:
    """The function's name, ARN and the hash of the deployed code."""

    name: str
    arn: str
    code_sha256: str


@dataclass(frozen=True)
class MappingInfo:
    """The SQS trigger: an event source mapping."""

    uuid: str
    state: str
    batch_size: int
    source_arn: str
    function_arn: str


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
    package = build_zip(source)
    desired = _desired_configuration(config, role_arn)
    current = found_or_none(
        lambda: lam.get_function_configuration(FunctionName=name), ("ResourceNotFoundException",), f"function {name}"
    )
    if current is None:
        log.info("creating function %s", name)
        current = _create_function(lam, name, package, desired, config)
    else:
        if current.get("CodeSha256") != code_sha256(package):
            log.info("updating code of %s", name)
            lam.update_function_code(FunctionName=name, ZipFile=package)
            _wait_updated(lam, name)
        changed = {k: v for k, v in desired.items() if not _same_setting(k, current, v)}
        if changed:
            log.info("updating settings of %s: %s", name, sorted(changed))
            lam.update_function_configuration(FunctionName=name, **changed)
            _wait_updated(lam, name)
        current = lam.get_function_configuration(FunctionName=name)
    return FunctionInfo(name=name, arn=current["FunctionArn"], code_sha256=current["CodeSha256"])


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


def find_mapping(clients: Clients, function_name: str, queue_arn: str) -> dict[str, Any] | None:
    """The event source mapping from *queue_arn* to the function, if any (one being deleted is none)."""
    mappings = [m for m in _mappings(clients, function_name, queue_arn) if m["State"] != "Deleting"]
    return mappings[0] if mappings else None


def _mappings(clients: Clients, function_name: str, queue_arn: str) -> list[dict[str, Any]]:
    reply = clients("lambda").list_event_source_mappings(FunctionName=function_name, EventSourceArn=queue_arn)
    return list(reply.get("EventSourceMappings", []))


def ensure_mapping(
    config: Config, clients: Clients, queue_arn: str, queue_url: str, enabled: bool = True
) -> MappingInfo:
    """Connect the queue to the function (the console's "Add trigger"), with the configured batch size.

    Args:
        config: the function name and batch size.
        clients: boto3 clients for the backend.
        queue_arn: the order queue's ARN.
        queue_url: its URL, to check the visibility timeout first.
        enabled: whether the trigger polls.
    Returns:
        The mapping's UUID, state and batch size.
    Raises:
        ResourceError: the queue's visibility timeout is shorter than the function timeout.
    """
    lam = clients("lambda")
    _check_visibility(config, clients, queue_url, queue_arn)
    mapping = find_mapping(clients, config.function_name, queue_arn)
    if mapping is None:
        # A trigger being deleted still counts: AWS refuses a new one until it is gone.
        _wait_deleted(clients, config.function_name, queue_arn)
        log.info("creating trigger %s -> %s", queue_arn, config.function_name)
        # ReportBatchItemFailures lets the handler retry only the records that failed, so one bad
        # order in a batch of ten does not send the other nine round again.
        mapping = lam.create_event_source_mapping(
            EventSourceArn=queue_arn,
            FunctionName=config.function_name,
            BatchSize=config.batch_size,
            Enabled=enabled,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )
    elif mapping["BatchSize"] != config.batch_size or (mapping["State"] in ("Enabled", "Enabling")) != enabled:
        mapping = lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=config.batch_size, Enabled=enabled)
    mapping = _wait_mapping(lam, mapping)
    return _mapping_info(mapping)


def _mapping_info(mapping: dict[str, Any]) -> MappingInfo:
    return MappingInfo(
        uuid=mapping["UUID"],
        state=mapping["State"],
        batch_size=mapping["BatchSize"],
        source_arn=mapping["EventSourceArn"],
        function_arn=mapping["FunctionArn"],
    )


def _wait_mapping(lam: Any, mapping: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    # There is no boto3 waiter for event source mappings; AWS takes seconds to leave "Creating".
    deadline = time.monotonic() + timeout
    pause = _FIRST_POLL_S
    while mapping["State"] not in _MAPPING_STATES_SETTLED and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, _LAST_POLL_S)
        mapping = lam.get_event_source_mapping(UUID=mapping["UUID"])
    return mapping


def _wait_deleted(clients: Clients, function_name: str, queue_arn: str, timeout: float = 120) -> None:
    # "It enters a Deleting state and might not be completely deleted for several seconds":
    # https://docs.aws.amazon.com/lambda/latest/api/API_DeleteEventSourceMapping.html
    deadline = time.monotonic() + timeout
    pause = _FIRST_POLL_S
    while deleting := [m for m in _mappings(clients, function_name, queue_arn) if m["State"] == "Deleting"]:
        if time.monotonic() > deadline:
            raise ResourceError(
                f"The trigger {deleting[0]['UUID']} from {queue_arn.rsplit(':', 1)[-1]} to {function_name} is still "
                f"being deleted after {timeout:.0f}s; run this again in a minute."
            )
        time.sleep(pause)
        pause = min(pause * 2, _LAST_POLL_S)


def _check_visibility(config: Config, clients: Clients, queue_url: str, queue_arn: str) -> None:
    attributes = clients("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])
    visibility = int(attributes["Attributes"]["VisibilityTimeout"])
    timeout = clients("lambda").get_function_configuration(FunctionName=config.function_name)["Timeout"]
    if visibility < timeout:
        raise ResourceError(
            f"Queue {queue_arn.rsplit(':', 1)[-1]} has a visibility timeout of {visibility}s, shorter than the "
            f"function timeout of {timeout}s, so AWS refuses the trigger. Raise the queue's visibility timeout "
            f"to at least {timeout}s (AWS recommends {6 * timeout}s)."
        )


def set_mapping_enabled(config: Config, clients: Clients, queue_arn: str, enabled: bool) -> MappingInfo:
    """Pause or resume the trigger."""
    mapping = find_mapping(clients, config.function_name, queue_arn)
    if mapping is None:
        raise ResourceError(f"Function {config.function_name} has no trigger on {queue_arn}: run `labkit up` first.")
    lam = clients("lambda")
    mapping = lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
    return _mapping_info(_wait_mapping(lam, mapping))


def delete_mapping(config: Config, clients: Clients, queue_arn: str) -> bool:
    """Delete the trigger; True if it existed."""
    mapping = find_mapping(clients, config.function_name, queue_arn)
    if mapping is None:
        return False
    try:
        clients("lambda").delete_event_source_mapping(UUID=mapping["UUID"])
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
