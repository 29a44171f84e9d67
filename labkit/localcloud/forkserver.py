"""Start execution environments quickly: fork them from a process that has the runtime loaded.

Every function process would start Python and import the AWS SDK (a second or more on a busy
two-core machine), which made cold starts slower than AWS's and, in tests with short visibility
timeouts, made SQS deliver messages twice. A fork server imports that once; each environment is
a fork of it, given its own environment variables, folder and output pipe, and then runs AWS's
runtime interface client exactly as a fresh process would. The runtime client itself is not
loaded before the fork: it reads `AWS_LAMBDA_RUNTIME_API` when it loads.

The server and every environment die with the lab (PR_SET_PDEATHSIG), and the server reports
each environment's exit status, which Lambda shows as `Runtime exited with error: ...`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
# The server's program. It runs with `-I -S`: no site-packages, only the runtime folder.
_SERVER = r"""
import ctypes, json, os, select, signal, socket, sys
sys.path.insert(0, os.environ["LAMBDA_RUNTIME_DIR"])
import boto3, boto3.session, botocore.session, botocore.client, botocore.httpsession, botocore.parsers
import http.client, decimal, uuid, logging, traceback, importlib, concurrent.futures
import awslambdaric.lambda_context, awslambdaric.lambda_runtime_marshaller, awslambdaric.lambda_runtime_log_utils
import botocore.loaders

# Service models are read-only: every function shares one loader, warmed with the services the lab
# uses, as the parse of their JSON would otherwise be every cold start's biggest cost.
shared_loader = botocore.loaders.create_loader()
botocore.loaders.create_loader = lambda *args, **kwargs: shared_loader
botocore.session.create_loader = botocore.loaders.create_loader
for name in ("dynamodb", "sqs", "sns", "sts", "logs", "lambda", "s3"):
    boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(name)
control = socket.socket(fileno=int(sys.argv[1]))
libc = ctypes.CDLL(None)
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)


def child(spec, out):
    libc.prctl(1, signal.SIGKILL)
    if os.getppid() == 1:
        os._exit(1)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for fd in (null, out, wake_r, wake_w):
        os.close(fd)
    control.close()
    os.environ.clear()
    os.environ.update(spec["env"])
    os.chdir(spec["cwd"])
    sys.path.insert(0, spec["env"]["LAMBDA_TASK_ROOT"])
    sys.argv = [sys.argv[0], spec["env"]["_HANDLER"]]
    code = 0
    try:
        from awslambdaric.__main__ import main
        main(sys.argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


while True:
    ready = select.select([control, wake_r], [], [])[0]
    if wake_r in ready:
        os.read(wake_r, 4096)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            control.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
    if control in ready:
        message, fds, _, _ = socket.recv_fds(control, 1 << 20, 1)
        if not message:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            child(json.loads(message), fds[0])
        os.close(fds[0])
        control.send(json.dumps({"pid": pid}).encode())
"""


def _die_with_parent() -> None:
    # Between fork and exec: the kernel kills the server when the thread that started it ends.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# One long-lived thread starts every fork server: PR_SET_PDEATHSIG follows the starting thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labkit-spawner")


class Child:
    """An environment process started by the fork server: what the lab needs of a Popen."""

    def __init__(self, server: ForkServer, pid: int, stdout: int) -> None:
        self._server = server
        self.pid = pid
        self.stdout = stdout

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: the signal), once the process has ended."""
        return self._server.exit_code(self.pid)

    def poll(self) -> int | None:
        """The exit code if the process has ended, else None."""
        return self.returncode

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

    def __init__(self, runtime_dir: Path) -> None:
        script = runtime_dir.parent / "forkserver.py"
        script.write_text(_SERVER)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._socket = ours
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._replies: list[int] = []
        self._changed = threading.Condition()
        self.process = _SPAWNER.submit(
            subprocess.Popen,
            [sys.executable, "-I", "-S", "-B", "-u", str(script), str(theirs.fileno())],
            env={"LAMBDA_RUNTIME_DIR": str(runtime_dir), "LANG": "en_US.UTF-8"},
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        ).result()
        theirs.close()
        self._reader = threading.Thread(target=self._read, name="labkit-forkserver", daemon=True)
        self._reader.start()

    def spawn(self, environment: dict[str, str], cwd: Path, timeout: float = 30.0) -> Child:
        """Fork an environment process with exactly *environment*, in *cwd*."""
        read_end, write_end = os.pipe()
        try:
            with self._lock:
                request = json.dumps({"env": environment, "cwd": str(cwd)}).encode()
                socket.send_fds(self._socket, [request], [write_end])
                with self._changed:
                    if not self._changed.wait_for(lambda: self._replies or not self._alive(), timeout):
                        raise RuntimeError("The local Lambda runtime's fork server did not answer.")
                    if not self._replies:
                        raise RuntimeError("The local Lambda runtime's fork server has stopped.")
                    pid = self._replies.pop(0)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return Child(self, pid, read_end)

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
                else:
                    self._exits[int(message["exit"])] = int(message["code"])
                self._changed.notify_all()

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
