"""Small helpers the lab's notebooks call: connect, catch up, show the backend and the environment.

The check cell of each step is in `labkit.notebook.checks` (what was built) and `labkit.notebook.behaviour`
(what the function did); their functions are also here by name.

May import every layer below it: the core, the resources, the facade, `labkit.observe`,
`labkit.experiments` and the grader's report. Only the CLI sits above it.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from labkit.aws import error_code
from labkit.config import BACKEND_AWS, BACKEND_ENDPOINT, ENV_ROLE_POLICY, ROLE_POLICY_LEAST
from labkit.errors import ConfigError
from labkit.lab import Lab
from labkit.lab import connect as _connect
from labkit.notebook.behaviour import check_invoke, check_order_stored, explain_error
from labkit.notebook.checks import (
    check_dead_lettered,
    check_function,
    check_queues,
    check_removed,
    check_role,
    check_runs,
    check_table,
    check_topic,
    check_trigger,
    require_passed,
)
from labkit.notebook.display import Note, ok, show_code, show_json
from labkit.notebook.fresh import start_clean
from labkit.notebook.logview import LogView, function_logs
from labkit.notebook.progressbar import ProgressBar, progress
from labkit.notebook.scale import batch_summary, lambda_bill, run_orders
from labkit.resources import sns, sqs, triggers

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LogView",
    "Note",
    "ProgressBar",
    "batch_summary",
    "catch_up",
    "check_dead_lettered",
    "check_function",
    "check_invoke",
    "check_order_stored",
    "check_queues",
    "check_removed",
    "check_role",
    "check_runs",
    "check_table",
    "check_topic",
    "check_trigger",
    "connect",
    "env_check",
    "explain_error",
    "function_logs",
    "lambda_bill",
    "progress",
    "require_passed",
    "run_orders",
    "show_backend",
    "show_code",
    "show_json",
    "start_clean",
    "versions",
]

PACKAGES = ("boto3", "moto", "pandas", "matplotlib", "ipywidgets", "tqdm")
STEPS = {1: "table", 2: "topic", 3: "queues and subscription", 4: "role, function and trigger"}


def connect(**overrides: Any) -> Lab:
    """`labkit.connect()` with the lab's recommended setting: a least-privilege execution role.

    An explicit LABKIT_ROLE_POLICY in the environment wins, so a class can choose the seed's policies.
    """
    if ENV_ROLE_POLICY not in os.environ:
        overrides.setdefault("role_policy", ROLE_POLICY_LEAST)
    return _connect(**overrides)


def catch_up(lab: Lab, step: int) -> Note:
    """Build every step before *step* (idempotent: what exists is kept); says per resource "built" or "found"."""
    through = min(step - 1, 4)
    if through < 1:
        return Note(f"Step {step} needs nothing built before it.")
    before = {label: exists() for label, exists in _resources(lab, through)}
    lab.up(through=through)
    steps = "Step 1" if through == 1 else f"Steps 1-{through}"
    lines = [f"  {'found' if before[label] else 'built'}  {label}" for label in before]
    return Note(f"{steps} in place (found: it was there already; built: just now):\n" + "\n".join(lines))


def _resources(lab: Lab, through: int) -> list[tuple[str, Callable[[], bool]]]:
    """(label, does it exist?) for each resource of steps 1 to *through*, in build order."""
    config, clients = lab.config, lab.clients

    def exists(read: Callable[[], object], missing: str) -> bool:
        try:
            read()
        except ClientError as exc:
            if error_code(exc) == missing:
                return False
            raise
        return True

    def table() -> bool:
        return exists(
            lambda: clients("dynamodb").describe_table(TableName=config.table_name), "ResourceNotFoundException"
        )

    def subscription() -> bool:
        topic, queue = sns.get_topic_arn(config, clients), sqs.get_queue(clients, config.queue_name)
        return bool(topic and queue and sns.find_subscription(clients, topic, queue.arn))

    def role() -> bool:
        return exists(lambda: clients("iam").get_role(RoleName=config.role_name), "NoSuchEntity")

    def function() -> bool:
        return exists(
            lambda: clients("lambda").get_function(FunctionName=config.function_name), "ResourceNotFoundException"
        )

    def trigger() -> bool:
        queue = sqs.get_queue(clients, config.queue_name)
        return bool(queue and function() and triggers.find_mapping(clients, config.function_name, queue.arn))

    found: list[tuple[int, str, Callable[[], bool]]] = [
        (1, f"table {config.table_name}", table),
        (2, f"topic {config.topic_name}", lambda: sns.get_topic_arn(config, clients) is not None),
        (3, f"queue {config.dlq_name}", lambda: sqs.get_queue(clients, config.dlq_name) is not None),
        (3, f"queue {config.queue_name}", lambda: sqs.get_queue(clients, config.queue_name) is not None),
        (3, f"subscription {config.topic_name} -> {config.queue_name}", subscription),
        (4, f"role {config.role_name}", role),
        (4, f"function {config.function_name}", function),
        (4, f"trigger {config.queue_name} -> {config.function_name}", trigger),
    ]
    return [(label, exists) for step, label, exists in found if step <= through]


def show_backend(lab: Lab) -> Note:
    """Where this lab's resources live, and what that costs."""
    config = lab.config
    if config.backend == BACKEND_AWS:
        return Note(
            f"Backend: a REAL AWS account (region {config.region}, profile {config.profile or 'default'}).\n"
            "⚠ This creates billable resources. They cost little at lab scale, but delete them when you are done: "
            "run notebook 08 (or `labkit down`)."
        )
    if config.backend == BACKEND_ENDPOINT:
        return Note(
            f"Backend: the local cloud at {config.endpoint_url} (`labkit serve`). Free and offline; resources "
            "persist across notebooks until the server stops."
        )
    return Note(
        "Backend: a local cloud inside this kernel (moto + labkit's Lambda service). Free and offline; "
        "everything disappears when the kernel stops. To keep resources between notebooks, run `labkit serve` "
        "and set AWS_ENDPOINT_URL before starting JupyterLab."
    )


def env_check(lab: Lab | None = None) -> Note:
    """Check that the lab's packages are installed and, given a *lab*, that its backend answers."""
    problems = []
    for name in PACKAGES:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"the package {name} is not installed")
    if problems:
        raise ConfigError("; ".join(problems) + ". Run `make lab` (or `pip install -e .[dev]`) and restart.")
    lines = [", ".join(PACKAGES) + " are installed"]
    if lab is not None:
        try:
            lab.clients("sts").get_caller_identity()
        except EndpointConnectionError as exc:
            raise ConfigError(
                f"Cannot reach {lab.config.endpoint_url}: start the local cloud with `labkit serve`, "
                "or unset AWS_ENDPOINT_URL to use one inside the kernel."
            ) from exc
        except NoCredentialsError as exc:
            raise ConfigError("No AWS credentials found: run `aws configure` or `aws sso login`.") from exc
        lines.append(f"the {lab.config.backend} backend answers")
    return ok(*lines)


def versions() -> pd.DataFrame:
    """Installed versions of Python and the lab's packages."""
    import pandas as pd

    rows = [{"package": "python", "version": sys.version.split()[0]}]
    rows += [{"package": name, "version": importlib.metadata.version(name)} for name in PACKAGES]
    return pd.DataFrame(rows).set_index("package")
