"""The real AWS CLI against `labkit serve`, shared by the AWS CLI tests: the server and a runner."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.config import ENV_STATE_DELAY

AWS = Path(sys.executable).with_name("aws")


class Cli:
    """Runs `aws ...` against one endpoint, in *workdir*, and returns the parsed JSON answer."""

    def __init__(self, endpoint: str, workdir: Path, **env: str) -> None:
        self.endpoint = endpoint
        self.workdir = workdir
        self.env = {
            **os.environ,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_PAGER": "",
            **env,
        }
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "LABKIT_PREFIX"):
            self.env.pop(name, None)

    def command(self, *args: str) -> list[str]:
        # --endpoint-url, not AWS_ENDPOINT_URL alone: AWS CLI v1 sends SQS to queue.amazonaws.com whatever
        # that variable says.
        return [str(AWS), *args, "--endpoint-url", self.endpoint]

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`aws ...` started, not waited for (its output piped)."""
        return subprocess.Popen(
            self.command(*args),
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(self, *args: str) -> Any:
        done = subprocess.run(
            [*self.command(*args), "--output", "json"],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"aws {' '.join(args)} failed: {done.stderr}"
        if args[:2] == ("cloudformation", "package"):
            return done.stdout  # words for a person, not JSON
        return json.loads(done.stdout) if done.stdout.strip() else None

    def file(self, name: str, content: Any) -> str:
        """Write *content* (text, or JSON for anything else) to *name* in the work folder; its file:// URL."""
        path = self.workdir / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return f"file://{path}"


@contextlib.contextmanager
def served(workdir: Path, **env: str) -> Iterator[Cli]:
    """`labkit serve` on a free port in its own process, with AWS's short transitional states; a Cli for it."""
    if not AWS.exists():
        pytest.skip("the AWS CLI is not installed: pip install -e '.[dev]'")
    process = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, ENV_STATE_DELAY: "0.2"},
    )
    try:
        first = process.stdout.readline() if process.stdout else ""
        match = re.search(r"(http://127\.0\.0\.1:\d+)", first)
        assert match, f"labkit serve did not start: {first!r}"
        endpoint = match.group(1)
        yield Cli(endpoint, workdir, **{name: value.format(endpoint=endpoint) for name, value in env.items()})
    finally:
        process.terminate()
        process.communicate(timeout=20)
