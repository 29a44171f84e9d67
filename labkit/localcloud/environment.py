"""Execution environments: each one an OS process running a Lambda runtime client.

A function's code runs in a process of its own, started by a launcher: on Linux a fork server running
AWS's runtime interface client (`forkserver.py`), elsewhere a fresh interpreter running labkit's
runtime loop (`spawner.py`). The process sees what a Lambda sandbox has (`sandbox.py`), its output
is the function's log, and it is stopped (by its own id) at the function's timeout, past its
memory, or when the lab stops; nothing here knows moto. The runtime talks to a Lambda Runtime API
of its own on loopback (`runtimeapi.py`), as each Lambda sandbox has its own `AWS_LAMBDA_RUNTIME_API`:
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labkit.localcloud.memory import MemoryGauge
from labkit.localcloud.runtimeapi import Pending, RuntimeAPI
from labkit.localcloud.sandbox import RUNTIME_ROOT, TASK_ROOT

log = logging.getLogger(__name__)

# Lambda gives a function's initialisation 10 seconds, apart from its timeout:
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
INIT_TIMEOUT_S = 10.0
# CloudWatch Logs takes events of up to 256 KB; Lambda cuts a longer line there.
MAX_LINE_BYTES = 256 * 1024
# How often a busy environment's memory is read; an idle one is never looked at.
MEMORY_CHECK_S = 0.05


@dataclass
class Outcome:
    """What one invocation in an environment came to."""

    request_id: str
    payload: bytes | None = None
    error: dict[str, Any] | None = None
    error_kind: str | None = None  # "function", "init", "timeout", "exit", "memory"
    lines: list[str] = field(default_factory=list)
    init_lines: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    init_ms: float | None = None
    max_memory_mb: int = 0


@dataclass(frozen=True)
class Start:
    """What a launcher needs to start one environment."""

    environment: dict[str, str]
    task_dir: Path
    tmp_dir: Path
    tmp_mb: int
    output: int


class Process(Protocol):
    """An environment's process, as the lab controls it."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class Launcher(Protocol):
    """Starts environment processes: a fork server or a spawner."""

    kernel_peak: bool

    def start(self, request: Start) -> Process: ...


class ExecutionEnvironment:
    """One sandbox: a process running the runtime, its output file, and the Runtime API it talks to."""

    def __init__(
        self,
        launcher: Launcher,
        folder: Path,
        task_dir: Path,
        runtime_dir: Path,
        environment: dict[str, str],
        memory_mb: int,
        tmp_mb: int,
    ) -> None:
        self.memory_mb = memory_mb
        self._paths = ((str(task_dir), TASK_ROOT), (str(runtime_dir), RUNTIME_ROOT))
        self._folder = folder
        tmp_dir = folder / "tmp"
        tmp_dir.mkdir(parents=True)
        output = folder / "output.log"
        # A file, not a pipe: the function never blocks on it, and what it wrote before answering is
        # there when the answer comes, on every OS.
        writer = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o600)
        self._output = open(output, "rb")
        self._memory: MemoryGauge | None = None
        self._started = threading.Event()
        self._api = RuntimeAPI(on_contact=self._contact)
        self.started = time.monotonic()
        self.init_ms: float | None = None
        self.invocations = 0
        environment = dict(environment)
        environment["AWS_LAMBDA_RUNTIME_API"] = self._api.address
        environment["LAMBDA_TASK_ROOT"] = TASK_ROOT
        environment["LAMBDA_RUNTIME_DIR"] = RUNTIME_ROOT
        try:
            self.process = launcher.start(Start(environment, task_dir, tmp_dir, tmp_mb, writer))
        except BaseException:
            self._started.set()
            self._api.close()
            self._api.stop_listening()
            self._output.close()
            raise
        finally:
            os.close(writer)
        self._memory = MemoryGauge(self.process.pid, launcher.kernel_peak)
        self._started.set()

    @property
    def pid(self) -> int:
        """The environment process's id."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """True while the process runs and the environment was not closed."""
        return not self._api.closed and self.process.poll() is None

    def _contact(self, reported_kb: int) -> None:
        # The runtime is alive and waiting for this answer: the moment to read its memory, even if it exits next.
        # A forked runtime can call before its launcher has even returned its pid.
        self._started.wait(5)
        if self._memory is not None:
            self._memory.report(reported_kb)
            self._memory.sample()

    # The invoking side.

    def invoke(self, request_id: str, body: bytes, function_arn: str, timeout_s: float) -> Outcome:
        """Hand *body* to the function, wait for its answer, and stop the environment if it overruns."""
        outcome = Outcome(request_id)
        cold = self.invocations == 0
        self.invocations += 1
        if cold:
            self._wait_for_init(outcome)
            outcome.init_lines = self._take_lines()
            if outcome.error is not None:
                return self._finish(outcome, time.monotonic())
        started = time.monotonic()
        pending = Pending(request_id, body, int((time.time() + timeout_s) * 1000), function_arn)
        self._api.offer(pending)
        deadline = started + timeout_s
        while not pending.done.is_set():
            now = time.monotonic()
            if now >= deadline:
                self._stop_process()
                outcome.error_kind = "timeout"
                outcome.error = {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"{_utc_stamp()} {request_id} Task timed out after {timeout_s:.2f} seconds",
                }
                break
            if self.process.poll() is not None:
                self._exit_error(outcome, "exit")
                break
            if self._sample() > self.memory_mb * 1024:
                self._stop_process()
                self._exit_error(outcome, "memory")
                break
            pending.done.wait(min(MEMORY_CHECK_S, deadline - now))
        else:
            outcome.payload = pending.payload
            if pending.error is not None:
                outcome.error_kind = "function"
                outcome.error = self._rewrite(pending.error)
        self._api.withdraw()
        return self._finish(outcome, started)

    def _sample(self) -> int:
        return self._memory.sample() if self._memory is not None else 0

    def _finish(self, outcome: Outcome, started: float) -> Outcome:
        outcome.duration_ms = (time.monotonic() - started) * 1000
        if self.process.poll() is None:
            self._sample()
        peak = self._memory.peak_kb if self._memory is not None else 0
        outcome.max_memory_mb = max(1, -(-peak // 1024))
        if outcome.error_kind is None and peak > self.memory_mb * 1024:
            # Freed before a check saw it: the sandbox's limit would still have been hit.
            self._stop_process()
            self._exit_error(outcome, "memory")
        outcome.init_ms = self.init_ms if self.invocations == 1 else None
        outcome.lines = self._take_lines()
        if outcome.error_kind in ("exit", "memory"):
            assert outcome.error is not None
            outcome.lines.append(outcome.error["errorMessage"])
            outcome.lines.append(outcome.error["errorType"])
        return outcome

    def _wait_for_init(self, outcome: Outcome) -> None:
        deadline = time.monotonic() + INIT_TIMEOUT_S
        while not self._api.initialised.wait(MEMORY_CHECK_S):
            if self._api.init_error is not None or self.process.poll() is not None or time.monotonic() > deadline:
                break
            self._sample()
        self.init_ms = (time.monotonic() - self.started) * 1000
        if self._api.initialised.is_set() and self._api.init_error is None:
            return
        self._stop_process()
        if self._api.init_error is not None:
            outcome.error = self._rewrite(self._api.init_error)
        elif time.monotonic() > deadline:
            outcome.error = {"errorType": "Runtime.Unknown", "errorMessage": "Init timed out"}
        else:
            self._exit_error(outcome, "exit")
            return
        outcome.error_kind = "init"

    def _exit_error(self, outcome: Outcome, kind: str) -> None:
        code = self.process.wait(5)
        if kind == "memory":
            # The lab stopped it, as the kernel's OOM killer stops an environment on AWS.
            reason = "signal: killed"
        elif code < 0:
            name = signal.Signals(-code).name
            how = {"SIGKILL": "killed", "SIGSEGV": "segmentation fault", "SIGABRT": "aborted"}.get(name, name.lower())
            reason = f"signal: {how}"
        else:
            reason = f"exit status {code}"
        outcome.error_kind = kind
        outcome.error = {
            "errorType": "Runtime.OutOfMemory" if kind == "memory" else "Runtime.ExitError",
            "errorMessage": f"RequestId: {outcome.request_id} Error: Runtime exited with error: {reason}",
        }

    def _rewrite(self, value: Any) -> Any:
        """*value* with the sandbox's real folders named as Lambda names them."""
        if isinstance(value, str):
            for real, shown in self._paths:
                value = value.replace(real, shown)
            return value
        if isinstance(value, list):
            return [self._rewrite(item) for item in value]
        if isinstance(value, dict):
            return {key: self._rewrite(item) for key, item in value.items()}
        return value

    def _take_lines(self) -> list[str]:
        """The lines written since the last call: everything up to the end of the output file."""
        data = self._output.read() or b""
        lines = []
        for raw in data.split(b"\n"):
            if not raw:
                continue
            if len(raw) > MAX_LINE_BYTES:
                raw = raw[:MAX_LINE_BYTES]
            lines.append(self._rewrite(raw.decode("utf-8", "replace")))
        return lines

    # Shutdown.

    def _stop_process(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)

    def close(self) -> None:
        """Stop the process and the Runtime API, and remove the environment's files (its /tmp); idempotent."""
        if not self._api.close():
            return
        self._stop_process()
        self.process.kill()
        self._api.stop_listening()
        self._output.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def _utc_stamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
