"""Start execution environments quickly on Linux: fork them from a process that has the runtime loaded.

Every function process would start Python and import the AWS SDK (a second or more on a busy
two-core machine), which made cold starts slower than AWS's and, in tests with short visibility
timeouts, made SQS deliver messages twice. A fork server (its program is `guest/forkserver.py`)
imports that once; each environment is a fork of it, given its own environment variables, folder
and output file, and then runs AWS's runtime interface client exactly as a fresh process would.

With unprivileged namespaces the server lives in Lambda's file system and each environment in a
PID and mount namespace of its own (`guest/mounts.py`); where the kernel refuses them, each
environment falls back to Python's audit hooks (`guest/fsguard.py`), and `isolation` says which.
The server and every environment die with the lab (PR_SET_PDEATHSIG), and the server reports each
environment's exit status, which Lambda shows as `Runtime exited with error: ...`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labkit.localcloud.environment import Start

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_BOOT = "import sys; sys.path.insert(0, sys.argv[3]); from labkit_guest.forkserver import main; main()"
# How long the server may take to load the runtime and report in (a second or two on a busy machine).
READY_TIMEOUT_S = 60.0


def _die_with_parent() -> None:
    # Between fork and exec: the kernel kills the server when the thread that started it ends.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# One long-lived thread starts every fork server: PR_SET_PDEATHSIG follows the starting thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labkit-spawner")


class Child:
    """An environment process started by the fork server: what the lab needs of a Popen."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self._server = server
        self.pid = pid

    def poll(self) -> int | None:
        """The exit code (negative: the signal) if the process has ended, else None."""
        return self._server.exit_code(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end; raises subprocess.TimeoutExpired."""
        return self._server.wait(self.pid, timeout)

    def kill(self) -> None:
        """Send SIGKILL to the process, by its id."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """One server process per local Lambda runtime, forking an environment on request."""

    # The kernel keeps each process's high-water mark of memory (VmHWM), read while it lives.
    kernel_peak = True

    def __init__(self, runtime_dir: Path, code_dir: Path, root_dir: Path, hidden: list[str], namespaces: bool) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._socket = ours
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._replies: list[int] = []
        self._ready: dict[str, str] | None = None
        self._changed = threading.Condition()
        config = {
            "isolation": "namespaces" if namespaces else "audit",
            "root": str(root_dir),
            "code": str(code_dir),
            "runtime": str(runtime_dir),
            "hidden": hidden,
        }
        self.process = _SPAWNER.submit(
            subprocess.Popen,
            [
                sys.executable,
                "-I",
                "-S",
                "-B",
                "-u",
                "-c",
                _BOOT,
                str(theirs.fileno()),
                json.dumps(config),
                str(runtime_dir),
            ],
            env={"LANG": "en_US.UTF-8"},
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        ).result()
        theirs.close()
        self._reader = threading.Thread(target=self._read, name="labkit-forkserver", daemon=True)
        self._reader.start()

    @property
    def isolation(self) -> str:
        """`namespaces` or `audit`: how the environments get Lambda's file system (waits for the server)."""
        with self._changed:
            self._changed.wait_for(lambda: self._ready is not None or not self._alive(), READY_TIMEOUT_S)
            if self._ready is None:
                raise RuntimeError("The local Lambda runtime's fork server did not start.")
            return self._ready["isolation"]

    def start(self, request: Start) -> Child:
        """Fork an environment process with exactly the request's environment, in its code folder."""
        self.isolation  # noqa: B018 - waits until the server has loaded the runtime
        with self._lock:
            spec: dict[str, Any] = {"env": request.environment, "task": str(request.task_dir)}
            spec.update(tmp=str(request.tmp_dir), tmp_mb=request.tmp_mb)
            socket.send_fds(self._socket, [json.dumps(spec).encode()], [request.output])
            with self._changed:
                if not self._changed.wait_for(lambda: self._replies or not self._alive(), READY_TIMEOUT_S):
                    raise RuntimeError("The local Lambda runtime's fork server did not answer.")
                if not self._replies:
                    raise RuntimeError("The local Lambda runtime's fork server has stopped.")
                pid = self._replies.pop(0)
        return Child(self, pid)

    def _alive(self) -> bool:
        return self.process.poll() is None and self._reader.is_alive()

    @property
    def alive(self) -> bool:
        """True while the server can fork."""
        return self._alive()

    def exit_code(self, pid: int) -> int | None:
        """*pid*'s exit code, once the server has reaped it."""
        with self._changed:
            return self._exits.get(pid)

    def wait(self, pid: int, timeout: float | None) -> int:
        """Wait until *pid* has ended; raises subprocess.TimeoutExpired."""
        with self._changed:
            if not self._changed.wait_for(lambda: pid in self._exits or not self._alive(), timeout):
                raise subprocess.TimeoutExpired(str(pid), timeout or 0)
            return self._exits.get(pid, -signal.SIGKILL)

    def _read(self) -> None:
        while True:
            try:
                data = self._socket.recv(1 << 16)
            except OSError:
                data = b""
            with self._changed:
                if not data:
                    self._changed.notify_all()
                    return
                message: dict[str, Any] = json.loads(data)
                if "pid" in message:
                    self._replies.append(int(message["pid"]))
                elif "isolation" in message:
                    self._ready = message
                    if message["reason"]:
                        log.info("Lambda's file system comes from Python's audit hooks: %s", message["reason"])
                else:
                    self._exits[int(message["exit"])] = int(message["code"])
                self._changed.notify_all()

    def pids(self) -> list[int]:
        """The server's own process id while it runs."""
        return [self.process.pid] if self.alive else []

    def close(self) -> None:
        """Stop the server by its id; its environments die with it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._reader.join(2)
