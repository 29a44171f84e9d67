"""The Lambda function's SQS trigger: an event source mapping from the order queue to the function.

The console's "Add trigger": `ensure_mapping` connects the queue with the configured batch size,
refusing first, as AWS would, a queue whose visibility timeout is shorter than the function timeout
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html); `set_mapping_enabled`
pauses or resumes it and `delete_mapping` removes it. A mapping takes a while to leave a state such
as Creating or Deleting and no boto3 waiter covers it, so the builders poll until it settles.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code
from labkit.config import Config
from labkit.errors import ResourceError
from labkit.session import Clients

log = logging.getLogger(__name__)

_MAPPING_STATES_SETTLED = ("Enabled", "Disabled")
# A state change takes a fraction of a second in the local cloud and seconds on AWS: look soon, then
# every second.
_FIRST_POLL_S = 0.1
_LAST_POLL_S = 1.0


@dataclass(frozen=True)
class MappingInfo:
    """The SQS trigger: an event source mapping."""

    uuid: str
    state: str
    batch_size: int
    source_arn: str
    function_arn: str


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
    else:
        mapping = _wait_mapping(lam, mapping)
        if mapping["BatchSize"] != config.batch_size or (mapping["State"] == "Enabled") != enabled:
            mapping = lam.update_event_source_mapping(
                UUID=mapping["UUID"], BatchSize=config.batch_size, Enabled=enabled
            )
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


def _pauses(timeout: float) -> Iterator[float]:
    """Pauses between polls, short at first, until *timeout* seconds have passed."""
    deadline = time.monotonic() + timeout
    pause = _FIRST_POLL_S
    while time.monotonic() < deadline:
        yield pause
        pause = min(pause * 2, _LAST_POLL_S)


def _wait_mapping(lam: Any, mapping: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    # There is no boto3 waiter for event source mappings; AWS takes seconds to leave "Creating".
    for pause in _pauses(timeout):
        if mapping["State"] in _MAPPING_STATES_SETTLED:
            break
        time.sleep(pause)
        mapping = lam.get_event_source_mapping(UUID=mapping["UUID"])
    return mapping


def _wait_deleted(clients: Clients, function_name: str, queue_arn: str, timeout: float = 120) -> None:
    # "It enters a Deleting state and might not be completely deleted for several seconds":
    # https://docs.aws.amazon.com/lambda/latest/api/API_DeleteEventSourceMapping.html
    pauses = _pauses(timeout)
    while deleting := [m for m in _mappings(clients, function_name, queue_arn) if m["State"] == "Deleting"]:
        pause = next(pauses, None)
        if pause is None:
            raise ResourceError(
                f"The trigger {deleting[0]['UUID']} from {queue_arn.rsplit(':', 1)[-1]} to {function_name} is "
                f"still being deleted after {timeout:.0f}s; run this again in a minute."
            )
        time.sleep(pause)


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
    # AWS refuses to change a mapping while it changes state (ResourceInUseException).
    mapping = _wait_mapping(lam, mapping)
    mapping = lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
    return _mapping_info(_wait_mapping(lam, mapping))


def delete_mapping(config: Config, clients: Clients, queue_arn: str) -> bool:
    """Delete the trigger; True if it existed."""
    mapping = find_mapping(clients, config.function_name, queue_arn)
    if mapping is None:
        return False
    lam = clients("lambda")
    try:
        lam.delete_event_source_mapping(UUID=_wait_mapping(lam, mapping)["UUID"])
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    return True
