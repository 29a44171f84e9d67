"""No process of the lab outlives it: execution environments and the fork server end with their owner.

On both paths: Linux's fork server dies with its owner's thread (PR_SET_PDEATHSIG) and its environments
with it; a portable environment watches its lifeline, a pipe whose other end only its owner holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from runtime_paths import PATHS

from labkit.config import ENV_LOCAL_RUNTIME, LOCAL_RUNTIME_PORTABLE

OWNER = textwrap.dedent(
    """
    import json, signal, sys, time
    # As in a terminal or a kernel: Ctrl-C raises KeyboardInterrupt, even when the test runs where SIGINT is ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from labkit.config import Config
    from labkit.localcloud import LocalCloud
    from labkit.lab import Lab

    cloud = LocalCloud.in_process(Config.from_env({}))
    lab = Lab(cloud.config, cloud.clients, cloud=cloud)
    lab.up()
    result = lab.invoke({"Records": []})
    print(json.dumps({"pids": cloud.runtime.process_ids(), "error": result.function_error}), flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if _alive(pid)]
        if not left:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_environments_end_when_their_owner_is_killed(how: signal.Signals, path: str) -> None:
    """A kernel restart kills the kernel's process (SIGKILL or SIGTERM); Ctrl-C sends SIGINT."""
    env = {**os.environ, ENV_LOCAL_RUNTIME: path}
    with subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, env=env) as owner:
        # The environment that ran the invocation, and on the fast path the fork server too.
        _check_children_end(owner, how, 1 if path == LOCAL_RUNTIME_PORTABLE else 2)


def _check_children_end(owner: subprocess.Popen[str], how: signal.Signals, processes: int) -> None:
    try:
        assert owner.stdout is not None
        report = json.loads(owner.stdout.readline())
        pids = report["pids"]
        assert report["error"] is None
        assert len(pids) >= processes
        assert all(_alive(pid) for pid in pids)
        os.kill(owner.pid, how)
        owner.wait(30)
        assert _wait_gone(pids) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
