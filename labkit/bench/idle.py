"""Idle CPU of `labkit serve` with the pipeline deployed: what a student's machine pays while nothing happens.

`labkit serve` runs as a subprocess on a free port; the pipeline is built against it and one order
goes through (so an execution environment is warm, as after a student's first test), then, once it
has settled, the CPU time of the server and of every process under it (the fork server and the
environments) is read before and after the idle window.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from labkit.bench.probes import alive, tree_cpu_seconds
from labkit.config import ENV_ENDPOINT, Config
from labkit.errors import InputError, NotReadyError
from labkit.lab import connect
from labkit.orders import generate_orders

SETTLE_S = 2.0
START_TIMEOUT_S = 60.0
_LISTENING = re.compile(r"listening on (http://\S+)")
# The thread reading each server's output, joined before the pipe is closed.
_readers: dict[int, threading.Thread] = {}


@dataclass(frozen=True)
class IdleResult:
    """CPU the idle server and its processes used over the window, as a percentage of one core."""

    seconds: float
    cpu_seconds: float
    percent_of_core: float
    processes: int


def measure_idle(idle_seconds: float = 30.0) -> IdleResult:
    """Start `labkit serve`, build the pipeline on it, let it idle *idle_seconds* and read its CPU time."""
    if idle_seconds <= 0:
        raise InputError(f"Give a positive idle window in seconds (got {idle_seconds}).")
    server = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={key: value for key, value in os.environ.items() if key != ENV_ENDPOINT},
    )
    try:
        endpoint = _endpoint(server)
        lab = connect(Config.from_env({ENV_ENDPOINT: endpoint}))
        lab.up()
        order = next(iter(generate_orders(1, prefix="IDLE")))
        lab.publish_order(order)
        deadline = time.monotonic() + START_TIMEOUT_S
        while lab.get_order(order["orderId"]) is None:
            if time.monotonic() > deadline:
                raise NotReadyError(f"The order sent to {endpoint} was not stored within {START_TIMEOUT_S:.0f}s.")
            time.sleep(0.1)
        lab.wait_until_drained(timeout=START_TIMEOUT_S)
        time.sleep(SETTLE_S)
        cpu_before, _ = tree_cpu_seconds(server.pid)
        begin = time.monotonic()
        time.sleep(idle_seconds)
        cpu_after, processes = tree_cpu_seconds(server.pid)
        seconds = time.monotonic() - begin
    finally:
        _stop(server)
    used = max(0.0, cpu_after - cpu_before)
    return IdleResult(round(seconds, 2), round(used, 3), round(100 * used / seconds, 3), len(processes))


def _endpoint(server: subprocess.Popen[str]) -> str:
    """The URL the server prints once it listens."""
    assert server.stdout is not None
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            match = _LISTENING.search(line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, name="labkit-bench-serve-output", daemon=True)
    reader.start()
    _readers[server.pid] = reader
    if not ready.wait(START_TIMEOUT_S) or not found:
        raise NotReadyError(f"`labkit serve` did not start within {START_TIMEOUT_S:.0f}s (exit code {server.poll()}).")
    return found[0]


def _stop(server: subprocess.Popen[str]) -> None:
    """End the server by its id (SIGTERM, as `kill` would, then SIGKILL); check it and its processes are gone."""
    processes: list[int] = []
    if server.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            processes = tree_cpu_seconds(server.pid)[1]
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    reader = _readers.pop(server.pid, None)
    if reader is not None:
        reader.join(5)
    if server.stdout is not None and (reader is None or not reader.is_alive()):
        server.stdout.close()
    # The fork server and the environments die with the server (PR_SET_PDEATHSIG); give them a moment.
    deadline = time.monotonic() + 10
    left = [pid for pid in processes if alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [pid for pid in left if alive(pid)]
    if left:
        raise NotReadyError(f"Processes {left} of `labkit serve` (pid {server.pid}) outlived it.")
