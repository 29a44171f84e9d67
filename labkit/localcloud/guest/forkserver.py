"""The fork server's program: load the runtime once, then fork an execution environment on request.

It runs as `python -I -S` with the runtime folder first on its path, talks to the lab over a
socket pair (requests in, pids and exit statuses out), and receives each environment's output
file as a descriptor. With namespaces (`mounts.py`) it first moves into Lambda's file system, and
each environment is the first process of a PID namespace of its own; without them, each
environment guards its files with audit hooks (`fsguard.py`). It and every environment die with
the lab's thread that started it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

_PR_SET_PDEATHSIG = 1


def main() -> None:
    """Serve fork requests until the lab closes the socket."""
    # Every module of this package is loaded before the root changes: the package's folder is not in the new one.
    from . import fsguard, mounts  # noqa: F401

    control = socket.socket(fileno=int(sys.argv[1]))
    config: dict[str, Any] = json.loads(sys.argv[2])
    isolation, reason = config["isolation"], ""
    if isolation == "namespaces":
        try:
            lang = mounts.enter_server_root(config["root"], config["code"], config["runtime"])
        except OSError as exc:
            isolation, reason = "audit", str(exc)
        else:
            _move_paths(config["runtime"], lang)
    _load_runtime()
    control.send(json.dumps({"isolation": isolation, "reason": reason}).encode())
    libc = ctypes.CDLL(None)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    while True:
        watched: list[Any] = [control, wake_r]
        ready = select.select(watched, [], [])[0]
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(control)
        if control in ready:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 1)
            if not message:
                os._exit(0)
            spec = json.loads(message)
            if isolation == "namespaces":
                pid = mounts.start_in_pid_namespace()
            else:
                pid = os.fork()
            if pid == 0:
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
                for fd in (wake_r, wake_w):
                    os.close(fd)
                _child(spec, fds[0], control, isolation, config)
            os.close(fds[0])
            control.send(json.dumps({"pid": pid}).encode())


def _move_paths(runtime: str, lang: str) -> None:
    """Python's own folders and the runtime's under the names they have inside the new root."""
    prefixes = ((runtime, "/var/runtime"), (os.path.realpath(sys.base_prefix), lang), (sys.base_prefix, lang))

    def moved(entry: str) -> str | None:
        for old, new in prefixes:
            if entry == old or entry.startswith(old + "/"):
                return new + entry[len(old) :]
        return None

    sys.path[:] = [new for new in map(moved, sys.path) if new is not None]
    # Packages loaded before the move (encodings, json, this one) find their submodules later: through __path__.
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [moved(entry) or entry for entry in search]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    sys.executable = f"{lang}/bin/{version}"


def _load_runtime() -> None:
    # Service models are read-only: every function shares one loader, warmed with the services the lab
    # uses, as the parse of their JSON would otherwise be every cold start's biggest cost.
    import awslambdaric.lambda_context
    import awslambdaric.lambda_runtime_log_utils
    import awslambdaric.lambda_runtime_marshaller  # noqa: F401
    import boto3.session
    import botocore.loaders
    import botocore.session

    shared_loader = botocore.loaders.create_loader()
    botocore.loaders.create_loader = lambda *args, **kwargs: shared_loader
    botocore.session.create_loader = botocore.loaders.create_loader  # type: ignore[attr-defined]
    for name in ("dynamodb", "sqs", "sns", "sts", "logs", "lambda", "s3"):
        boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(name)


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def _child(spec: dict[str, Any], out: int, control: socket.socket, isolation: str, config: dict[str, Any]) -> None:
    from . import fsguard, mounts

    code = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in (null, out):
            os.close(fd)
        control.close()
        if isolation == "namespaces":
            mounts.enter_environment(os.path.relpath(spec["task"], config["code"]), spec["tmp_mb"])
        else:
            os.chdir(spec["task"])
            fsguard.install(spec["task"], spec["tmp"], config["runtime"], spec["tmp_mb"], config["hidden"])
        os.environ.clear()
        os.environ.update(spec["env"])
        sys.path.insert(0, "/var/task")
        sys.argv = [sys.argv[0], spec["env"]["_HANDLER"]]
        from awslambdaric.__main__ import main as run

        run(sys.argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
