"""Small helpers the lab's notebooks call: connect, catch up, check an exercise, show the backend and the environment.

An exercise's check cell is `check(lab, "queues")` (`checkcell`: the grader's checks of its step, and
its score for nbgrader); `catch_up` builds the earlier steps (`catchup`); the checks that are not
exercises (an order's journey, the DLQ, clean-up) are in `verify`. Their functions are here by name.

May import every layer below it: the core, the resources, the facade, `labkit.observe`,
`labkit.experiments` and the grader's report. Only the CLI sits above it.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import EndpointConnectionError, NoCredentialsError

from labkit.config import BACKEND_AWS, BACKEND_ENDPOINT, ENV_ROLE_POLICY, ROLE_POLICY_LEAST
from labkit.errors import ConfigError
from labkit.lab import Lab
from labkit.lab import connect as _connect
from labkit.notebook.catchup import catch_up
from labkit.notebook.checkcell import CheckCell, check
from labkit.notebook.display import Note, ok, show_code, show_json
from labkit.notebook.fresh import start_clean
from labkit.notebook.logview import LogView, function_logs
from labkit.notebook.progressbar import ProgressBar, progress
from labkit.notebook.runchecks import STARTED_AT
from labkit.notebook.scale import batch_summary, lambda_bill, run_orders
from labkit.notebook.verify import check_dead_lettered, check_order_stored, check_removed, explain_error, require_passed
from labkit.notebook.views import queue_settings

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CheckCell",
    "LogView",
    "Note",
    "ProgressBar",
    "batch_summary",
    "catch_up",
    "check",
    "check_dead_lettered",
    "check_order_stored",
    "check_removed",
    "connect",
    "env_check",
    "explain_error",
    "function_logs",
    "lambda_bill",
    "progress",
    "queue_settings",
    "require_passed",
    "run_orders",
    "show_backend",
    "show_code",
    "show_json",
    "start_clean",
    "tags",
    "versions",
]

PACKAGES = ("boto3", "moto", "pandas", "matplotlib", "ipywidgets", "tqdm")


def connect(**overrides: Any) -> Lab:
    """`labkit.connect()` with the lab's recommended setting: a least-privilege execution role.

    An explicit LABKIT_ROLE_POLICY in the environment wins, so a class can choose the seed's policies.
    """
    if ENV_ROLE_POLICY not in os.environ:
        overrides.setdefault("role_policy", ROLE_POLICY_LEAST)
    lab = _connect(**overrides)
    # A check of this session's work looks no further back than this (an earlier run's evidence is not this run's).
    lab.session[STARTED_AT] = time.time()
    return lab


def tags(lab: Lab) -> dict[str, str]:
    """The tags to give what you create in an exercise, as labkit's builders do: `lab.down()` deletes only what carries them."""
    return dict(lab.config.tags)


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
