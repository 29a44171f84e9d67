"""Lambda's file system where the kernel gives none: Python's path names and audit hooks.

Where an execution environment cannot have namespaces of its own (macOS, Windows, a Linux that
forbids them), the function still meets Lambda's rules as far as Python's own file access goes
(`open`, `os`, `pathlib`, `shutil`, `tempfile`, imports):
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib

- `/var/task` names the function's code (its working directory), `/var/runtime` the runtime, and
  `/tmp` the environment's own folder; each is mapped to the real folder behind it, and errors and
  file names give the path back as the function wrote it.
- Writing anywhere but `/tmp` fails with `[Errno 30] Read-only file system`.
- `/tmp` holds at most the function's ephemeral storage; a write past it fails with `[Errno 28] No
  space left on device` (counted for files written through `open`).
- The host's home, the lab's project folder and the host's temporary folder are not there
  (`[Errno 2] No such file or directory`), apart from the runtime and the Python it runs on.

The os functions are wrapped for the names; an audit hook (PEP 578) enforces the rules again on
whatever reaches the operating system by another way (`io.FileIO`, `posix.open`). What a child
process or native code does is not seen: that takes the kernel's isolation (`mounts.py`).
"""

from __future__ import annotations

import builtins
import errno
import functools
import io
import os
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .tmpquota import quota_open

TASK, RUNTIME, TMP = "/var/task", "/var/runtime", "/tmp"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_native = sys.modules["nt" if os.name == "nt" else "posix"]
_local = threading.local()

# The os functions that take paths: where the paths are, and whether the call writes.
_READS = tuple("stat lstat listdir scandir access readlink statvfs chdir getxattr listxattr".split())
_WRITES = tuple("mkdir rmdir remove unlink chmod lchmod chown lchown utime truncate mkfifo mknod".split())
_WRITES += tuple("setxattr removexattr chflags lchflags".split())
_PAIRS = ("rename", "replace", "link", "symlink")
# The audit events that reach the file system: the positions of their paths, and whether they write.
_EVENTS: dict[str, tuple[tuple[int, ...], bool | None]] = {
    "open": ((0,), None),
    "os.listdir": ((0,), False),
    "os.scandir": ((0,), False),
    "os.chdir": ((0,), False),
    "os.rename": ((0, 1), True),
    "os.link": ((0, 1), True),
    "os.symlink": ((1,), True),
    **{f"os.{name}": ((0,), True) for name in ("mkdir", "rmdir", "remove", "chmod", "chown", "truncate", "utime")},
    **{f"os.{name}": ((0,), True) for name in ("mkfifo", "mknod", "setxattr", "removexattr", "chflags", "lchflags")},
}


def install(task: str, tmp: str, runtime: str, tmp_mb: int, hidden: Iterable[str]) -> Guard:
    """Give this process Lambda's file system rules; for good (an audit hook cannot be removed)."""
    guard = Guard(task, tmp, runtime, tmp_mb * 1024 * 1024, hidden)
    guard.install()
    return guard


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Guard:
    """The mapping of Lambda's folders to real ones, and the rules for reading and writing."""

    def __init__(self, task: str, tmp: str, runtime: str, tmp_bytes: int, hidden: Iterable[str]) -> None:
        # Each folder as given and with its links followed (macOS's temporary folders are under /var -> /private/var).
        self.names = [
            (shown, form)
            for shown, real in ((TASK, task), (RUNTIME, runtime), (TMP, tmp))
            for form in dict.fromkeys([real, os.path.realpath(real)])
        ]
        self.tmp = _real(tmp)
        self.tmp_bytes = tmp_bytes
        self._tmp_used = 0
        self._tmp_lock = threading.Lock()
        libraries = [sysconfig.get_path(name) for name in ("stdlib", "platstdlib")]
        entries = [os.path.join(runtime, name) for name in os.listdir(runtime)]
        self.readable = [_real(p) for p in [task, tmp, runtime, sys.base_prefix, *libraries, *entries] if p]
        self.hidden = [_real(p) for p in hidden if p and _real(p) != _real(os.sep)]
        self.devnull = _real(os.devnull)
        self._original: dict[str, Any] = {}

    # Names.

    def to_real(self, path: Any) -> Any:
        """*path* with Lambda's folder names replaced by the real folders (same type: str or bytes)."""
        if path is None or isinstance(path, int):
            return path
        raw = os.fspath(path)
        text = os.fsdecode(raw)
        probe = text.replace("\\", "/") if os.name == "nt" else text
        # The real folders may lie under the host's /tmp (Linux): a path already in one stays as it is.
        if any(_under(text, real) for _, real in self.names):
            return raw
        for shown, real in self.names:
            if probe == shown or probe.startswith(shown + "/"):
                mapped = real + text[len(shown) :]
                return os.fsencode(mapped) if isinstance(raw, bytes) else mapped
        return raw

    def to_shown(self, path: str) -> str:
        """A real path as the function knows it: under `/var/task` or `/tmp` when it is there."""
        for shown, real in self.names:
            if _under(path, real):
                return shown + path[len(real) :].replace(os.sep, "/")
        return path

    # Rules.

    def resolve(self, path: Any, dir_fd: int | None = None) -> str | None:
        """The real, absolute *path* with links followed; None when a folder descriptor cannot be named."""
        _local.busy = True
        try:
            base = self._fd_path(dir_fd) if dir_fd is not None else self._original["getcwd"]()
            return None if base is None else _real(os.path.join(os.fsdecode(base), os.fsdecode(path)))
        finally:
            _local.busy = False

    def refusal(self, path: Any, write: bool, dir_fd: int | None = None) -> int | None:
        """The errno with which an access to the real *path* fails, or None when Lambda would allow it."""
        full = self.resolve(path, dir_fd)
        if full is None:
            return errno.EROFS if write else None
        if write:
            return None if _under(full, self.tmp) or full == self.devnull else errno.EROFS
        return self._read_refusal(full)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one guard per process, for its life
    def _read_refusal(self, full: str) -> int | None:
        if any(_under(full, root) for root in self.readable):
            return None
        return errno.ENOENT if any(_under(full, root) for root in self.hidden) else None

    def check(self, shown: Any, real: Any, write: bool, dir_fd: int | None = None) -> None:
        """Raise the OSError AWS's file system would give for this access, naming the path as the function did."""
        if real is None or isinstance(real, int):
            return
        refused = self.refusal(real, write, dir_fd)
        if refused is not None:
            raise OSError(refused, os.strerror(refused) if refused != errno.EROFS else "Read-only file system", shown)

    def _fd_path(self, fd: int) -> str | None:
        if sys.platform == "linux":
            return os.readlink(f"/proc/self/fd/{fd}")
        if sys.platform == "darwin":
            import fcntl

            return os.fsdecode(fcntl.fcntl(fd, 50, bytes(1024)).rstrip(b"\0"))  # F_GETPATH
        return None

    # /tmp's size.

    def reserve(self, count: int) -> bool:
        """Count *count* more bytes in /tmp; False (and nothing counted) when they would not fit."""
        with self._tmp_lock:
            if self._tmp_used + count > self.tmp_bytes:
                self._tmp_used = self._tmp_size()
            if self._tmp_used + count > self.tmp_bytes:
                return False
            self._tmp_used += count
            return True

    def _tmp_size(self) -> int:
        _local.busy = True
        try:
            total = 0
            for folder, _, files in os.walk(self.tmp):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(folder, name)).st_size
                    except OSError:
                        pass
            return total
        finally:
            _local.busy = False

    # Installing.

    def install(self) -> None:
        """Wrap the os functions and open(), and add the audit hook."""
        replaced: dict[int, Any] = {}
        for name in _READS + _WRITES + _PAIRS:
            original = getattr(_native, name, None) or getattr(os, name, None)
            if original is not None:
                positions = (0, 1) if name in _PAIRS else (0,)
                replaced[id(original)] = self._guarded(original, name not in _READS, positions)
        replaced[id(_native.open)] = self._guarded_os_open(_native.open)
        for name, shown in (("getcwd", str), ("getcwdb", os.fsencode)):
            self._original[name] = getattr(_native, name)
            replaced[id(self._original[name])] = self._cwd(self._original[name], shown)
        replaced[id(io.open)] = self._guarded_open(io.open)
        replaced[id(io.open_code)] = self._guarded_open_code(io.open_code)
        # Every module that took its own reference (tokenize's `_builtin_open`, `from os import stat`) gets the
        # wrapper too, or tracebacks could not read /var/task's source and names would escape the mapping.
        for module in [builtins, *list(sys.modules.values())]:
            namespace = getattr(module, "__dict__", None)
            if module is sys.modules[__name__] or not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                wrapper = replaced.get(id(value))
                if wrapper is not None and key != "__wrapped__":
                    namespace[key] = wrapper
        tempfile.tempdir = TMP
        sys.addaudithook(self._audit)

    def _cwd(self, original: Callable[[], Any], convert: Callable[[str], Any]) -> Callable[[], Any]:
        def getcwd() -> Any:
            if getattr(_local, "busy", False):
                return original()
            return convert(self.to_shown(os.fsdecode(original())))

        return getcwd

    def _guarded(self, original: Callable[..., Any], write: bool, positions: tuple[int, ...]) -> Callable[..., Any]:
        keywords = ("src", "dst") if len(positions) == 2 else ("path",)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if getattr(_local, "busy", False):
                return original(*args, **kwargs)
            values = list(args)
            shown: dict[Any, Any] = {}
            for index in positions:
                if index < len(values):
                    values[index] = self._prepare(values[index], write, kwargs.get("dir_fd"), shown)
            for key in keywords:
                if key in kwargs:
                    kwargs[key] = self._prepare(kwargs[key], write, kwargs.get("dir_fd"), shown)
            return self._call(original, shown, *values, **kwargs)

        return wrapper

    def _guarded_os_open(self, original: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(original)
        def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if getattr(_local, "busy", False):
                return original(path, flags, *args, **kwargs)
            shown: dict[Any, Any] = {}
            real = self._prepare(path, bool(flags & _WRITE_FLAGS), kwargs.get("dir_fd"), shown)
            return int(self._call(original, shown, real, flags, *args, **kwargs))

        return os_open

    def _guarded_open(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def open(file: Any, mode: str = "r", buffering: int = -1, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, int) or getattr(_local, "busy", False):
                return original(file, mode, buffering, *args, **kwargs)
            write = any(flag in mode for flag in "wax+")
            shown: dict[Any, Any] = {}
            real = self._prepare(file, write, None, shown)
            if write and _under(self.resolve(real) or "", self.tmp):
                opened = self._call(quota_open, shown, self.reserve, real, mode, buffering, *args, **kwargs)
            else:
                opened = self._call(original, shown, real, mode, buffering, *args, **kwargs)
            raw = getattr(getattr(opened, "buffer", opened), "raw", opened)
            if isinstance(raw, io.FileIO):
                raw.name = os.fspath(file)
            return opened

        return open

    def _guarded_open_code(self, original: Callable[[str], Any]) -> Callable[[str], Any]:
        @functools.wraps(original)
        def open_code(path: str) -> Any:
            if getattr(_local, "busy", False):
                return original(path)
            shown: dict[Any, Any] = {}
            return self._call(original, shown, self._prepare(path, False, None, shown))

        return open_code

    def _prepare(self, value: Any, write: bool, dir_fd: int | None, shown: dict[Any, Any]) -> Any:
        real = self.to_real(value)
        self.check(value if isinstance(value, (str, bytes)) else os.fspath(value), real, write, dir_fd)
        if real is not None and not isinstance(real, int):
            shown[real] = value
            _local.checked = real
        return real

    def _call(self, function: Callable[..., Any], shown: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except OSError as exc:
            # The error names the path the function gave, not the real folder behind it.
            if exc.filename in shown:
                exc.filename = shown[exc.filename]
            if exc.filename2 in shown:
                exc.filename2 = shown[exc.filename2]
            raise
        finally:
            _local.checked = None

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        spec = _EVENTS.get(event)
        if spec is None or getattr(_local, "busy", False):
            return
        positions, write = spec
        for index in positions:
            path = args[index] if index < len(args) else None
            if path is None or isinstance(path, int) or path == getattr(_local, "checked", None):
                continue
            writes = write if write is not None else bool((args[2] or 0) & _WRITE_FLAGS)
            self.check(path, path, writes)
