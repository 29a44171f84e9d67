"""JupyterLab and the local cloud in their own processes, and headless Chromium driven by Playwright.

Everything listens on 127.0.0.1 only. JupyterLab serves a temporary copy of the notebooks, so a run
never changes the saved notebooks, and its kernels reach the local cloud through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from student import VIEWPORT, Student

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts" / "browser"

# Read at import: the autouse credentials fixture in tests/conftest.py removes LABKIT_* variables.
REQUIRE_BROWSER = os.environ.get("LABKIT_REQUIRE_BROWSER", "") == "1"
# LABKIT_CHROMIUM names another Chromium or Chrome (a developer's machine); Debian's is the default.
CHROMIUM_CANDIDATES = (
    (os.environ["LABKIT_CHROMIUM"],)
    if os.environ.get("LABKIT_CHROMIUM")
    else ("/usr/bin/chromium", "chromium", "chromium-browser")
)

START_TIMEOUT_S = 60.0
ENDPOINT_RE = re.compile(r"http://127\.0\.0\.1:\d+")
# Chromium without background networking, sync, updates or QUIC: this machine has loopback only.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
)
# The lab as a first-time student sees it, minus the news prompt (it would reach the internet).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"checkForUpdates": False, "fetchNews": "false"},
}


def _unavailable(reason: str) -> NoReturn:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (LABKIT_REQUIRE_BROWSER=1 makes this a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (no browser download is possible here); skip or fail when it or Playwright is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable('Playwright for Python is not installed: pip install -e ".[dev]"')
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    _unavailable(f"Chromium is not installed (looked for {', '.join(CHROMIUM_CANDIDATES)}): apt-get install chromium")


def child_env(**extra: str) -> dict[str, str]:
    """The servers' environment: fake credentials, no AWS profile, no LABKIT_* setting from the shell.

    The lab's own settings stay at their defaults, as a student has them (notebook 06 shortens its timeouts itself).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LABKIT_", "JUPYTER", "JPY_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def stop_group(process: subprocess.Popen[Any], grace: float = 15.0) -> None:
    """SIGTERM the process's group, then SIGKILL it if it is still there after *grace* seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    # Whatever the leader left behind in its group (a kernel it could not stop) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def wait_for(what: str, probe: Any, process: subprocess.Popen[Any], log: Path, timeout: float = START_TIMEOUT_S) -> Any:
    """Call *probe* until it returns a value; fail naming *what* and the log if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with code {process.returncode} while starting; see {log}", pytrace=False)
        try:
            value = probe()
        except (OSError, ValueError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} did not answer within {timeout:.0f} s; see {log}", pytrace=False)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """test-artifacts/browser at the repository root: screenshots and server logs of the last run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # A failure screenshot left by an earlier run would be mistaken for this run's.
    for stale in ARTIFACTS.glob("*-failed.png"):
        stale.unlink()
    return ARTIFACTS


@pytest.fixture(scope="module")
def cloud_endpoint(artifacts: Path) -> Iterator[str]:
    """`labkit serve` on a port the system picks, in its own process group; yields its URL."""
    log = artifacts / "localcloud.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "labkit.cli", "serve", "--port", "0"],
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # The first line it prints names the URL it listens on.
        found = wait_for("the local cloud (labkit serve)", lambda: ENDPOINT_RE.search(log.read_text()), process, log)
        endpoint = found.group(0)
        wait_for("the local cloud's API", lambda: _get(f"{endpoint}/moto-api/data.json"), process, log)
        yield endpoint
    finally:
        stop_group(process)


@dataclass(frozen=True)
class JupyterServer:
    """A running JupyterLab: its base URL, token, the folder it serves and its log."""

    url: str
    token: str
    root: Path
    log: Path

    def lab_url(self, notebook: str, workspace: str) -> str:
        """The URL that opens *notebook* in a workspace of its own (no tabs left over from another test)."""
        return f"{self.url}lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        """Call JupyterLab's REST API; returns the decoded JSON (or None for an empty reply)."""
        request = urllib.request.Request(
            f"{self.url}api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


@pytest.fixture(scope="module")
def jupyter(
    request: pytest.FixtureRequest, cloud_endpoint: str, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    """JupyterLab on 127.0.0.1 (a free port, a token, no browser) serving a temporary copy of the notebooks."""
    # A test module may name the edition it opens (EDITION = the student edition's folder); the instructor's by default.
    edition = getattr(request.module, "EDITION", NOTEBOOKS)
    if not edition.is_dir():
        pytest.fail(f"No notebooks folder at {edition}", pytrace=False)
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    shutil.copytree(edition, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    dirs = {name: base / name for name in ("runtime", "config", "data", "ipython", "workspaces", "settings")}
    for path in dirs.values():
        path.mkdir()
    for name, settings in LAB_SETTINGS.items():
        (dirs["settings"] / name).parent.mkdir(parents=True, exist_ok=True)
        (dirs["settings"] / name).write_text(json.dumps(settings))
    token = os.urandom(16).hex()
    env = child_env(
        AWS_ENDPOINT_URL=cloud_endpoint,
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        IPYTHONDIR=str(dirs["ipython"]),
    )
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        # Port 0: the server binds a free port and records it in its runtime file, read below.
        "--ServerApp.port=0",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.workspaces_dir={dirs['workspaces']}",
        f"--LabApp.user_settings_dir={dirs['settings']}",
    ]
    log = artifacts / "jupyterlab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    runtime_file = dirs["runtime"] / f"jpserver-{process.pid}.json"
    server: JupyterServer | None = None
    try:
        info = wait_for("JupyterLab", lambda: json.loads(runtime_file.read_text()), process, log)
        server = JupyterServer(url=info["url"], token=token, root=root, log=log)
        wait_for("JupyterLab's /api/status", lambda: server.api("status"), process, log)
        yield server
    finally:
        if server is not None and process.poll() is None:
            # A clean shutdown stops the kernels too; the group kill below is the fallback.
            with contextlib.suppress(OSError):
                server.api("shutdown", method="POST")
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        stop_group(process)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Headless Chromium, launched by Playwright from Debian's package."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def student(request: pytest.FixtureRequest, browser: Any, jupyter: Any, artifacts: Path) -> Iterator[Student]:
    """A fresh browser context (no cookies, no stored layout) on the running JupyterLab."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        yield Student(context.new_page(), jupyter, artifacts, name=request.node.name.removeprefix("test_"))
    finally:
        context.close()
