"""A function's file system is Lambda's, on both ways environments start (namespaces on Linux, audit hooks elsewhere).

Its code is its working directory, `/var/task`, and read-only, as all but `/tmp` is; `/tmp` is the
environment's own, kept while it is warm, gone with it, and as large as the function's ephemeral
storage; nothing of the lab's machine (home, `~/.aws`, the project folder, the host's `/tmp`) is there.
Each test cites the AWS page it checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from function_support import create_function, create_role
from runtime_paths import PATHS, runtime_path

from labkit.config import LOCAL_RUNTIME_AUTO, Config
from labkit.localcloud import LocalCloud

ROOT = Path(__file__).resolve().parent.parent
# Linux's fork path where the kernel refuses unprivileged namespaces: its environments fall back to audit hooks.
REFUSED = "auto-without-namespaces"


@pytest.fixture(scope="module", params=[*PATHS, pytest.param(REFUSED, marks=pytest.mark.slow)])
def home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """A local cloud started by a user whose home holds AWS credentials, as a student's laptop does."""
    home = tmp_path_factory.mktemp("home")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("[default]\naws_access_key_id = AKIALAPTOPKEY\n")
    before = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        refused = mock.patch("labkit.localcloud.launch.NAMESPACES", False)
        with (
            runtime_path(request.param.split("-")[0]),
            refused if request.param == REFUSED else contextlib.nullcontext(),
        ):
            cloud = LocalCloud.in_process(Config.from_env({}))
    finally:
        if before is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = before
    expected = "namespaces" if request.param == LOCAL_RUNTIME_AUTO and _kernel_allows_namespaces() else "audit"
    assert cloud.runtime.isolation == expected
    yield cloud, home
    cloud.stop()


def _kernel_allows_namespaces() -> bool:
    """True where an unprivileged process may make a user and mount namespace and mount a tmpfs in it."""
    probe = (
        "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "uid = os.getuid()\nassert libc.unshare(0x10000000 | 0x20000) == 0\n"
        "open('/proc/self/setgroups', 'w').write('deny')\nopen('/proc/self/uid_map', 'w').write(f'{uid} {uid} 1')\n"
        "assert libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None) == 0\n"
    )
    return (
        sys.platform == "linux" and subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0
    )


@pytest.fixture(scope="module")
def cloud(home: tuple[Any, Path]) -> Any:
    return home[0]


@pytest.fixture(scope="module")
def deploy(cloud: Any) -> Callable[..., str]:
    role = create_role(cloud.clients("iam"), "fs-role")

    def deploy(name: str, source: str, timeout: int = 3) -> str:
        return create_function(cloud.clients("lambda"), name, role, source, timeout)

    return deploy


def invoke(cloud: Any, name: str, event: Any = None) -> Any:
    reply = cloud.clients("lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}))
    payload = json.loads(reply["Payload"].read() or "null")
    assert reply.get("FunctionError") is None, payload
    return payload


# A handler that tries each action of the event and reports how it went: "ok" or [errno, message].
TRY = """
import os, pathlib, shutil
def attempt(action, path):
    try:
        if action == "write":
            with open(path, "w") as f:
                f.write("order")
        elif action == "read":
            with open(path) as f:
                return f.read()
        elif action == "list":
            return sorted(os.listdir(path))
        elif action == "mkdir":
            os.mkdir(path)
        elif action == "remove":
            os.remove(path)
        elif action == "write_text":
            pathlib.Path(path).write_text("order")
        elif action == "exists":
            return os.path.exists(path)
        return "ok"
    except OSError as exc:
        return [exc.errno, str(exc)]
def lambda_handler(event, context):
    return [attempt(action, path) for action, path in event["try"]]
"""


def test_the_working_directory_is_the_code_named_var_task(cloud: Any, deploy: Callable[..., str]) -> None:
    """The function's code is its working directory, /var/task (LAMBDA_TASK_ROOT), wherever the lab runs.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
    """
    source = (
        "import os\ndef lambda_handler(event, context):\n"
        "    return {'cwd': os.getcwd(), 'file': __file__, 'root': os.environ['LAMBDA_TASK_ROOT'],\n"
        "            'here': sorted(os.listdir('.')), 'code': open('/var/task/code.py').read()}\n"
    )
    deploy("fs-cwd", source)
    reply = invoke(cloud, "fs-cwd")
    assert reply["cwd"] == reply["root"] == "/var/task"
    assert reply["file"] == "/var/task/code.py"
    assert reply["here"] == ["code.py"]
    assert reply["code"] == source


def test_writing_anywhere_but_tmp_fails_as_a_read_only_file_system(cloud: Any, deploy: Callable[..., str]) -> None:
    """Lambda's file system is read-only but for /tmp: [Errno 30] Read-only file system.
    https://docs.aws.amazon.com/lambda/latest/dg/images-create.html
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html
    """
    deploy("fs-readonly", TRY)
    attempts = [
        ("write", "orders.txt"),
        ("write", "/var/task/orders.txt"),
        ("write_text", "orders.txt"),
        ("mkdir", "reports"),
        ("remove", "code.py"),
        ("write", "/var/runtime/orders.txt"),
        ("write", "/etc/orders.txt"),
    ]
    reply = invoke(cloud, "fs-readonly", {"try": attempts})
    assert reply == [[30, f"[Errno 30] Read-only file system: '{path}'"] for _, path in attempts]
    assert invoke(cloud, "fs-readonly", {"try": [("exists", "code.py"), ("exists", "orders.txt")]}) == [True, False]


def test_tmp_is_the_environments_own_and_kept_while_it_is_warm(cloud: Any, deploy: Callable[..., str]) -> None:
    """/tmp is writable, survives between invocations of a warm environment, and is no one else's.
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    host_file = Path(tempfile.gettempdir()) / f"labkit-host-{uuid.uuid4().hex}"
    host_file.write_text("the host's")
    try:
        deploy("fs-tmp", TRY)
        deploy("fs-other", TRY)
        assert invoke(cloud, "fs-tmp", {"try": [("write", "/tmp/orders.txt"), ("list", "/tmp")]}) == [
            "ok",
            ["orders.txt"],
        ]
        assert invoke(cloud, "fs-tmp", {"try": [("read", "/tmp/orders.txt")]}) == ["order"]
        other = invoke(cloud, "fs-other", {"try": [("list", "/tmp"), ("exists", f"/tmp/{host_file.name}")]})
        assert other == [[], False]
    finally:
        host_file.unlink()
    assert not (Path(tempfile.gettempdir()) / "orders.txt").exists()


def test_tmp_goes_with_its_environment(cloud: Any, deploy: Callable[..., str]) -> None:
    """A new execution environment starts with an empty /tmp.
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-shutdown
    """
    deploy("fs-gone", TRY)
    assert invoke(cloud, "fs-gone", {"try": [("write", "/tmp/cache.json")]}) == ["ok"]
    cloud.runtime.reset()
    assert invoke(cloud, "fs-gone", {"try": [("list", "/tmp")]}) == [[]]


@pytest.mark.slow
def test_tmp_holds_the_ephemeral_storage_and_no_more(cloud: Any, deploy: Callable[..., str]) -> None:
    """/tmp holds the function's EphemeralStorage (512 MB by default); a write past it fails with ENOSPC.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html
    """
    source = (
        "import os\ndef lambda_handler(event, context):\n"
        "    written, chunk = 0, b'x' * (1 << 20)\n"
        "    try:\n"
        "        with open('/tmp/big', 'wb') as f:\n"
        "            while written < (600 << 20):\n"
        "                f.write(chunk)\n"
        "                f.flush()\n"
        "                written += len(chunk)\n"
        "    except OSError as exc:\n"
        "        error = [exc.errno, exc.strerror]\n"
        "    os.remove('/tmp/big')\n"
        "    with open('/tmp/small', 'wb') as f:\n"
        "        f.write(chunk)\n"
        "    return [written, error]\n"
    )
    deploy("fs-full", source, timeout=60)
    written, error = invoke(cloud, "fs-full")
    assert error == [28, "No space left on device"]
    assert (500 << 20) <= written <= (512 << 20)


def test_nothing_of_the_lab_machine_is_there(cloud: Any, home: tuple[Any, Path], deploy: Callable[..., str]) -> None:
    """The function sees its own sandbox: not the user's home, ~/.aws or the lab's project folder.
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    user_home = home[1]
    deploy("fs-host", TRY)
    attempts = [
        ("read", str(user_home / ".aws" / "credentials")),
        ("list", str(user_home)),
        ("read", str(ROOT / "README.md")),
        ("list", str(ROOT)),
        ("read", str(ROOT / "lambda" / "code.py")),
    ]
    reply = invoke(cloud, "fs-host", {"try": attempts})
    assert [outcome[0] for outcome in reply] == [2] * len(attempts), reply
