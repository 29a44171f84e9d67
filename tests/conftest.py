"""Shared fixtures: fake AWS credentials, moto, the Lambda handler and its inputs."""

import functools
import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = Path(__file__).resolve().parent / "events"
HANDLER_PATH = ROOT / "lambda" / "code.py"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use fake credentials so no test can reach (or bill) a real AWS account."""
    for name in list(os.environ):
        # AWS_ENDPOINT_URL_<SERVICE> would also redirect clients away from moto.
        if name.startswith(("LABKIT_", "AWS_ENDPOINT_URL")):
            monkeypatch.delenv(name)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    # Empty config files: a developer's ~/.aws must not change what tests see.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # The builders' waiters poll once a second, so the local cloud's short CREATING / Pending moment
    # would cost every pipeline a few seconds; tests of those states set their own delay.
    monkeypatch.setenv("LABKIT_LOCAL_STATE_DELAY", "0")


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test against moto's in-memory AWS."""
    # A local cloud started earlier in this process turns on AWS's managed IAM policies process-wide (its roles
    # attach them); plain moto tests attach none, and moto would load all ~1,300 into every IAM backend it
    # resets, at the start and end of each test: seconds per test.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")
    with mock_aws():
        yield


@functools.cache
def _session() -> boto3.Session:
    """One boto3 session for the process, made under the fake credentials above.

    moto starts every mock without boto3's default session, and a new session parses DynamoDB's
    service and resource models again: about 0.2 s a test.
    """
    return boto3.Session(region_name=REGION)


@pytest.fixture
def orders_table(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Create the Orders table as the assignment does and return it (boto3 Table)."""
    # The handler's own client comes from boto3's default session, as in Lambda.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", _session())
    dynamodb = _session().resource("dynamodb", region_name=REGION)
    table = dynamodb.create_table(
        TableName="Orders",
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table.wait_until_exists()
    return table


@pytest.fixture
def handler() -> ModuleType:
    """Load lambda/code.py as a fresh module (``import code`` is the stdlib one)."""
    spec = importlib.util.spec_from_file_location("orders_lambda_code", HANDLER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    """The attributes and method AWS Lambda passes to a Python handler."""

    function_name: str = "OrderProcessor"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:OrderProcessor"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name: str = "/aws/lambda/OrderProcessor"
    log_stream_name: str = "2025/05/03/[$LATEST]9d2d3a1c4f8a4b5e8e2f1a0b9c8d7e6f"
    remaining_millis: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        """Return the time left before Lambda stops the invocation."""
        return self.remaining_millis


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A fake Lambda context object."""
    return FakeLambdaContext()


@pytest.fixture
def load_event() -> Callable[[str], dict[str, Any]]:
    """Return a loader for tests/events/<name>.json (a fresh copy each call)."""

    def load(name: str) -> dict[str, Any]:
        return json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))

    return load


# The local cloud with short timeouts, so retries and the DLQ take seconds; defined once, in labkit.
from labkit.experiments.scenarios import FAST  # noqa: E402 - imported after the fake credentials above are set


@pytest.fixture
def local_cloud() -> Iterator[Any]:
    """A fresh in-process local cloud (moto + labkit's Lambda service), stopped after the test."""
    from labkit.config import Config
    from labkit.localcloud import LocalCloud

    cloud = LocalCloud.in_process(Config.from_env({}, **FAST))
    yield cloud
    cloud.stop()


@pytest.fixture
def local_server() -> Iterator[Any]:
    """A fresh local cloud served over HTTP on 127.0.0.1 (a free port), stopped after the test."""
    from labkit.config import Config
    from labkit.localcloud import LocalCloud

    cloud = LocalCloud.server(Config.from_env({}, **FAST))
    yield cloud
    cloud.stop()


@pytest.fixture
def make_lab(local_cloud: Any) -> Callable[..., Any]:
    """Build a Lab on the in-process cloud, with config fields overridden."""
    from labkit.lab import Lab

    def make(**overrides: Any) -> Any:
        return Lab(local_cloud.config.with_(**overrides), local_cloud.clients, cloud=local_cloud)

    return make


@pytest.fixture
def built_lab(make_lab: Callable[..., Any]) -> Any:
    """A Lab whose whole pipeline (steps 1-4) is built."""
    lab = make_lab()
    lab.up()
    return lab


# --- `make test-fast` -----------------------------------------------------------------------------------------

# Whole pipelines over HTTP, under load, in a subprocess or a notebook: seconds each. `make test` runs them,
# `make test-fast` leaves them out; so does a test marked `slow` (one that waits out retries, for one).
SLOW_FIXTURES = {"local_server", "new_lab", "shared_cloud"}
SLOW_MODULES = {
    "tests/test_bench.py",
    "tests/reliability/test_report.py",
    "tests/reliability/test_handler_properties.py",
    "tests/test_awscli_walkthrough.py",
    "tests/test_lifetimes.py",
    "tests/test_notebook_07.py",
    "tests/test_standalone.py",
}


# The files that take longest (wall time per file in one `make test`, longest first), handed to the workers
# first: pytest-xdist gives out whole files in collection order (the Makefile turns off its reordering by
# test count), and a long file started last makes the whole run wait for it alone.
LONG_FIRST = (
    "tests/test_grading.py",
    "tests/test_cli.py",
    "tests/test_builders.py",
    "tests/reliability/test_faults.py",
    "tests/test_localcloud.py",
    "tests/browser/test_jupyterlab.py",
    "tests/test_function_errors.py",
    "tests/test_aws_rules.py",
    "notebooks/04_deploy_function.ipynb",
    "tests/test_exercises.py",
    "tests/test_awscli_stacks.py",
    "notebooks/08_grade_cleanup.ipynb",
    "tests/test_server.py",
    "tests/test_notebooks_support.py",
    "tests/test_bench.py",
    "tests/test_failure_surfaces.py",
    "tests/test_notebook_06.py",
    "notebooks/09_pipeline_as_code.ipynb",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow tests (those of SLOW_MODULES, those using a SLOW_FIXTURES fixture, HTTP twins of in-process
    tests), and put the longest files first, each file's tests in their own order."""
    rank = {path: n for n, path in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        callspec = getattr(item, "callspec", None)
        if (
            item.nodeid.split("::", 1)[0] in SLOW_MODULES
            or (info is not None and SLOW_FIXTURES & set(info.names_closure))
            or (callspec is not None and "server" in callspec.params.values())
        ):
            item.add_marker(pytest.mark.slow)
