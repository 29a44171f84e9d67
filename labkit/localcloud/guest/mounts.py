"""Lambda's file system on Linux, from the kernel, without privileges: user, mount and PID namespaces.

The fork server enters a user namespace of its own (which any user may create where the distribution
allows it) and moves into a root of its own: the system's `/usr`, `/bin`, `/lib`, `/etc`, `/dev`
and `/proc`, Python under `/var/lang`, the runtime under `/var/runtime`, everything read-only, and
nothing else of the machine (no home, no project folder, no host `/tmp`). Each execution
environment it starts is the first process of a PID namespace of its own (its `/proc` shows its
processes alone) and has a mount namespace of its own: its code read-only at `/var/task` and a
private `/tmp`, a tmpfs of the function's ephemeral storage size. It then gives up every
capability, so the function cannot undo any of it:
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import sys

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME, _MS_BIND = 32, 1024, 2048, 4096
_MS_REC, _MS_PRIVATE, _MS_RELATIME = 16384, 1 << 18, 1 << 21
_MNT_DETACH = 2
_AT_FDCWD, _AT_RECURSIVE = -100, 0x8000
_MOUNT_ATTR_RDONLY = 1
_PR_SET_NO_NEW_PRIVS = 38
_SYSCALLS = {"x86_64": {"clone": 56, "pivot_root": 155}, "aarch64": {"clone": 220, "pivot_root": 41}}
_MOUNT_SETATTR = 442  # the same number on every architecture (added in Linux 5.12)
# What the new root keeps of the machine's: the system's programs, libraries and settings.
SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc")
CODE = "/var/labkit-code"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> None:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda value: value.encode() if value is not None else None  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(kind), flags, encode(data)), f"mount {target}")


def _syscall(name: str) -> int:
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        raise OSError(0, f"no namespaces on {platform.machine()}")
    return numbers[name]


def _read_only(path: str, recursive: bool) -> None:
    attr = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
    flags = _AT_RECURSIVE if recursive else 0
    result = _libc.syscall(_MOUNT_SETATTR, _AT_FDCWD, path.encode(), flags, ctypes.byref(attr), ctypes.sizeof(attr))
    if result == 0:
        return
    if ctypes.get_errno() != 38:  # ENOSYS: a kernel before 5.12 remounts each mount instead
        _check(-1, f"read-only {path}")
    targets = [path]
    if recursive:
        with open("/proc/self/mountinfo") as table:
            mounts = [line.split()[4] for line in table]
        targets = [m for m in mounts if m == path or m.startswith(path.rstrip("/") + "/")]
    for target in targets:
        # A remount must repeat the flags the mount is locked with, or the kernel refuses it.
        kept = os.statvfs(target).f_flag
        flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
        for bit, flag in ((os.ST_NOSUID, _MS_NOSUID), (os.ST_NODEV, _MS_NODEV), (os.ST_NOEXEC, _MS_NOEXEC)):
            flags |= flag if kept & bit else 0
        for bit, flag in (
            (os.ST_NOATIME, _MS_NOATIME),
            (os.ST_NODIRATIME, _MS_NODIRATIME),
            (os.ST_RELATIME, _MS_RELATIME),
        ):
            flags |= flag if kept & bit else 0
        _mount(None, target, None, flags)


def enter_server_root(root: str, code: str, runtime: str) -> str:
    """Move this (single-threaded) process into a user namespace and Lambda's file system; returns /var/lang's Python.

    *root* is an empty folder for the new root, *code* the folder of unpacked functions (seen at
    `/var/labkit-code`, until each environment takes its own), *runtime* the runtime folder, whose
    entries are links to the packages it holds.
    """
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare")
    for name, value in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(value)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", 0, "mode=0755")
    for name in sorted(os.listdir("/")):
        source, target = "/" + name, root + "/" + name
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        elif name in SYSTEM and os.path.isdir(source):
            os.mkdir(target)
            _mount(source, target, None, _MS_BIND | _MS_REC)
    for folder in ("var/task", "var/runtime", "var/lang", CODE[1:], "tmp", ".host"):
        os.makedirs(f"{root}/{folder}", exist_ok=True)
    os.chmod(f"{root}/tmp", 0o1777)
    _mount(code, root + CODE, None, _MS_BIND)
    _mount(os.path.realpath(sys.base_prefix), root + "/var/lang", None, _MS_BIND | _MS_REC)
    for name in os.listdir(runtime):
        source, target = os.path.realpath(os.path.join(runtime, name)), f"{root}/var/runtime/{name}"
        if os.path.isdir(source):
            os.mkdir(target)
        else:
            open(target, "w").close()
        _mount(source, target, None, _MS_BIND | _MS_REC)
    _check(_libc.syscall(_syscall("pivot_root"), root.encode(), f"{root}/.host".encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.host", _MNT_DETACH), "umount the host's root")
    os.rmdir("/.host")
    _read_only("/", recursive=True)
    return "/var/lang"


def start_in_pid_namespace() -> int:
    """fork(), the child being the first process of a new PID namespace: its pid here, 0 in the child."""
    # os.fork() cannot create the namespace, and unshare(CLONE_NEWPID) only once per process; clone() can
    # for every child. Python's own fork bookkeeping runs around it as os.fork() runs it.
    ctypes.pythonapi.PyOS_BeforeFork()
    pid = _libc.syscall(_syscall("clone"), _CLONE_NEWPID | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        return 0
    code = ctypes.get_errno()
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(code, f"clone: {os.strerror(code)}")
    return int(pid)


def enter_environment(code: str, tmp_mb: int) -> None:
    """In the new child: its own mounts (code at /var/task, a private /tmp, its /proc), then no capabilities."""
    _check(_libc.unshare(_CLONE_NEWNS), "unshare mounts")
    _mount(f"{CODE}/{code}", "/var/task", None, _MS_BIND)
    _read_only("/var/task", recursive=False)
    _check(_libc.umount2(CODE.encode(), _MNT_DETACH), "umount the functions' code")
    _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={tmp_mb}m,mode=1777")
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    os.chdir("/var/task")
    _drop_capabilities()


def _drop_capabilities() -> None:
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, data), "capset")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
