"""Which way execution environments start here, and the launcher that starts them.

Two paths, one behaviour. The fast path (Linux with AWS's runtime client, the default there) forks
each environment from a server with the runtime loaded (`forkserver.py`) and gives it Lambda's
file system with namespaces. The portable path (macOS, Windows, or any machine with
`LABKIT_LOCAL_RUNTIME=portable`, which is how CI runs it on Linux) spawns a fresh interpreter
running labkit's runtime loop (`spawner.py`), with Python's audit hooks for the file system.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from pathlib import Path

from labkit.config import ENV_LOCAL_RUNTIME, LOCAL_RUNTIME_AUTO, LOCAL_RUNTIME_PORTABLE, LOCAL_RUNTIMES
from labkit.errors import ConfigError
from labkit.localcloud.environment import Launcher
from labkit.localcloud.forkserver import ForkServer
from labkit.localcloud.sandbox import has_aws_client
from labkit.localcloud.spawner import Spawner

log = logging.getLogger(__name__)

FAST = "fork"
PORTABLE = "portable"
# Whether the fork server tries namespaces; where the kernel refuses them it falls back to audit hooks by itself.
NAMESPACES = True


def chosen_path() -> str:
    """`fork` or `portable`: the setting if it asks for the portable path, else what this machine allows."""
    setting = os.environ.get(ENV_LOCAL_RUNTIME, "").strip().lower() or LOCAL_RUNTIME_AUTO
    if setting not in LOCAL_RUNTIMES:
        raise ConfigError(f"{ENV_LOCAL_RUNTIME}={setting!r}: use one of {', '.join(LOCAL_RUNTIMES)}.")
    if setting == LOCAL_RUNTIME_PORTABLE:
        return PORTABLE
    fork_server = sys.platform == "linux" and hasattr(os, "fork") and hasattr(socket, "send_fds")
    return FAST if fork_server and has_aws_client() else PORTABLE


def hidden_folders() -> list[str]:
    """What a function must not read of this machine: the user's home and the lab's project folder."""
    folders = {str(Path.home()), os.getcwd()}
    source = Path(__file__).resolve().parents[2]
    if (source / "pyproject.toml").is_file():
        folders.add(str(source))
    return sorted(folders)


class Launchers:
    """The launcher of one local Lambda runtime: started on first use, restarted if its server died."""

    def __init__(self, workdir: Path, runtime_dir: Path, path: str) -> None:
        self.path = path
        self._workdir = workdir
        self._runtime_dir = runtime_dir
        self._hidden = hidden_folders()
        self._lock = threading.Lock()
        self._server: ForkServer | None = None
        self._spawner = Spawner(runtime_dir, self._hidden) if path == PORTABLE else None
        self._namespaces = NAMESPACES
        self.code_dir = workdir / "code"
        self.code_dir.mkdir(parents=True, exist_ok=True)

    def get(self) -> Launcher:
        """The launcher, started if need be."""
        if self._spawner is not None:
            return self._spawner
        with self._lock:
            if self._server is None or not self._server.alive:
                if self._server is not None:
                    self._server.close()
                root = self._workdir / "root"
                root.mkdir(exist_ok=True)
                self._server = ForkServer(self._runtime_dir, self.code_dir, root, self._hidden, self._namespaces)
            return self._server

    @property
    def started(self) -> bool:
        """True once there is something to stop."""
        return self._spawner is not None or self._server is not None

    @property
    def isolation(self) -> str:
        """`namespaces` (the kernel's) or `audit` (Python's hooks): how functions get Lambda's file system."""
        launcher = self.get()
        return launcher.isolation if isinstance(launcher, ForkServer) else Spawner.isolation

    def pids(self) -> list[int]:
        """The launcher's own processes (a fork server), not the environments."""
        with self._lock:
            return self._server.pids() if self._server is not None else []

    def close(self) -> None:
        """Stop the fork server, if any, by its id."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.close()
