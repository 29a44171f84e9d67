"""JupyterLab as `labkit lab` runs it: in a session of its own, idle kernels culled, stopped with its kernels.

It runs as a child of `labkit lab` and never outlives it: Ctrl-C, SIGTERM or SIGHUP asks JupyterLab
to stop (it stops its kernels), and whatever is left of its process group is killed after a grace
period.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Idle kernels are stopped so nine open notebooks fit a 2 GB machine (85-200 MB per kernel). Connected ones too:
# an open tab keeps its kernel connected forever, and every notebook's catch-up cell rebuilds its state.
KERNEL_IDLE_MINUTES = 15
KERNEL_CULL_SETTINGS = {
    "--MappingKernelManager.cull_idle_timeout": str(KERNEL_IDLE_MINUTES * 60),
    "--MappingKernelManager.cull_interval": "60",
    "--MappingKernelManager.cull_connected": "True",
}
# How long JupyterLab may take to stop its kernels after SIGTERM before its process group is killed.
LAB_STOP_GRACE_S = 20.0
# nbgrader's parts in JupyterLab (the instructor extra installs them): its formgrader, assignment list and
# "Create Assignment" panel are an instructor's tools, and a student opening the student edition should
# meet the lab, not them. Switched off for `labkit lab` through a config folder of labkit's own.
NBGRADER_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"


def student_config(folder: Path) -> Path:
    """Write a Jupyter config folder that switches nbgrader's extensions off; returns it, for JUPYTER_CONFIG_PATH.

    Folders on JUPYTER_CONFIG_PATH rank above the environment's own, so these settings win over the ones
    nbgrader installed (https://docs.jupyter.org/en/latest/use/jupyter-directories.html#configuration-files),
    and JupyterLab reads disabled extensions from their `labconfig/page_config.json`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    server = {"ServerApp": {"jpserver_extensions": dict.fromkeys(NBGRADER_SERVER_EXTENSIONS, False)}}
    (folder / "jupyter_server_config.json").write_text(json.dumps(server, indent=2), encoding="utf-8")
    (folder / "labconfig").mkdir(exist_ok=True)
    page = {"disabledExtensions": {NBGRADER_LAB_EXTENSION: True}}
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=2), encoding="utf-8")
    return folder


def jupyter_args(unknown: Sequence[str]) -> list[str]:
    """The arguments `labkit lab` did not know, for JupyterLab; a first `--` only separates them."""
    extra = list(unknown)
    if "--" in extra:
        extra.remove("--")
    return extra


def command(notebooks: Path, jupyter_args: Sequence[str], *, as_root: bool) -> list[str]:
    """The JupyterLab command line `labkit lab` runs: kernel culling, --allow-root as root, then the user's arguments.

    A setting the user gives wins over labkit's: a default is left out when the user names the same option.
    """
    given = {arg.split("=", 1)[0] for arg in jupyter_args}
    line = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebooks}"]
    if as_root and not given & {"--allow-root", "--ServerApp.allow_root"}:
        line.append("--allow-root")
    line += [f"{option}={value}" for option, value in KERNEL_CULL_SETTINGS.items() if option not in given]
    return [*line, *jupyter_args]


def run(command: Sequence[str], env: dict[str, str]) -> int:
    """Run JupyterLab until it exits or Ctrl-C / SIGTERM / SIGHUP asks it to stop; its exit code (0 when asked)."""
    # Its own session: a Ctrl-C reaches labkit alone, which asks JupyterLab to stop (no y/n prompt) and waits.
    process = subprocess.Popen(command, env=env, start_new_session=True)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    # Windows has no SIGHUP (closing the console sends its own event, which ends the process).
    handled = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, stop) for sig in handled}
    try:
        code = process.wait()
        return 0 if stopping.is_set() else code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_process_group(process, LAB_STOP_GRACE_S)


def stop_process_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM *process* (JupyterLab stops its kernels on it), then kill its group if it is still there.

    Windows has no process groups to kill: there the processes JupyterLab started (its kernels) are found
    by psutil, by parent, before it is stopped, and whichever of them is left is killed by its own id.
    """
    children = _children(process.pid) if not hasattr(os, "killpg") else []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    else:
        for child in children:
            with contextlib.suppress(Exception):  # psutil.NoSuchProcess: it ended with JupyterLab
                child.kill()
    process.wait()


def _children(pid: int) -> list[Any]:
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []
