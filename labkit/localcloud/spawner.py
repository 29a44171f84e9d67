"""Start execution environments as fresh interpreters: the portable way, for every OS.

Where there is no fork server (macOS and Windows have no awslambdaric, Windows no fork; Linux when
`LABKIT_LOCAL_RUNTIME=portable`), each environment is a new `python -I -S` running
`guest/spawned.py` and labkit's runtime loop. Its standard input is its lifeline: the lab holds the
pipe's other end, and when the lab ends however it ends the OS closes that end and the environment
exits on its own. Its memory is read with psutil, the same on every OS, and its file system rules
come from Python's audit hooks.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from labkit.localcloud.environment import Start

_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from labkit_guest.spawned import main; main()"


class SpawnedProcess:
    """An environment's interpreter and the lifeline the lab holds to it."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        """The exit code (negative: the signal, on POSIX) if the process has ended, else None."""
        return self._process.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end; raises subprocess.TimeoutExpired."""
        return self._process.wait(timeout)

    def kill(self) -> None:
        """Kill the process by its id and let go of its lifeline."""
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()


class Spawner:
    """Starts each environment as its own interpreter."""

    # No high-water mark of another process's memory on every OS: psutil's samples and the runtime's own report.
    kernel_peak = False
    isolation = "audit"

    def __init__(self, runtime_dir: Path, hidden: list[str]) -> None:
        self._runtime_dir = runtime_dir
        self._hidden = hidden

    def start(self, request: Start) -> SpawnedProcess:
        """Start an interpreter with exactly the request's environment, in its code folder."""
        environment = dict(request.environment)
        host_root = os.name == "nt"
        if host_root:
            # Windows' sockets need it to start; the environment drops it again once they have.
            environment["SYSTEMROOT"] = os.environ.get("SYSTEMROOT", r"C:\Windows")
        options: dict[str, object] = {"start_new_session": True}
        if os.name == "nt":
            options = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
        process = subprocess.Popen(
            [_interpreter(), "-I", "-S", "-B", "-u", "-c", _BOOT, str(self._runtime_dir)],
            env=environment,
            cwd=request.task_dir,
            stdin=subprocess.PIPE,
            stdout=request.output,
            stderr=subprocess.STDOUT,
            **options,  # type: ignore[call-overload]
        )
        settings = {
            "task": str(request.task_dir),
            "tmp": str(request.tmp_dir),
            "tmp_mb": request.tmp_mb,
            "runtime": str(self._runtime_dir),
            "hidden": self._hidden,
            "host_root": host_root,
        }
        assert process.stdin is not None
        # An interpreter that died at once has closed its end: the environment sees it exit.
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(json.dumps(settings).encode() + b"\n")
            process.stdin.flush()
        return SpawnedProcess(process)

    def pids(self) -> list[int]:
        """No process of its own besides the environments."""
        return []

    def close(self) -> None:
        """Nothing to stop: each environment is stopped on its own."""


def _interpreter() -> str:
    # In a virtualenv on Windows, sys.executable is a launcher that starts the real interpreter as its child:
    # the base interpreter is the process whose memory and exit the lab must see.
    return getattr(sys, "_base_executable", None) or sys.executable
