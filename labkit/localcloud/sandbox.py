"""What a Lambda sandbox has: its folders and modules, its environment variables and credentials.

An execution environment's process sees the standard library, boto3 and botocore with their
dependencies, the runtime client (AWS's where it installs, else labkit's loop in `guest/`), and
the function's own code, under the names Lambda gives them (`/var/task`, `/var/runtime`); nothing
else of the lab's virtualenv. Its environment is
built from scratch, with no variable of the host: the variables every Lambda sandbox has, those
naming the function, its credentials, and the function's own variables:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

# What AWS's Python runtime has besides the standard library: the runtime client and its
# dependencies, and the AWS SDK with its own.
RUNTIME_MODULES = (
    "simplejson",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six",
    "urllib3",
)
# AWS's runtime client, where it installs (Linux): its C extension and its snapshot hooks come with it.
CLIENT_MODULES = ("awslambdaric", "runtime_client", "snapshot_restore_py")
# labkit's code for inside the environments, under a name no function's module would take.
GUEST = "labkit_guest"
TASK_ROOT = "/var/task"
RUNTIME_ROOT = "/var/runtime"
# Without IAM checks any key will do; this one is never labkit's own, so the local cloud can tell a
# function's requests from the lab's (fault injection acts on the function's alone).
LOCAL_LAMBDA_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIALOCALLAMBDAFUNC1",
    "AWS_SECRET_ACCESS_KEY": "local-lambda-secret",
    "AWS_SESSION_TOKEN": "local-lambda-session",
}
# The variables every Lambda sandbox has besides the function's own:
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
SANDBOX_VARIABLES = {
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
    "_AWS_XRAY_DAEMON_PORT": "2000",
}


def has_aws_client() -> bool:
    """True when AWS's runtime interface client is installed (it publishes wheels for Linux alone)."""
    return all(importlib.util.find_spec(name) is not None for name in CLIENT_MODULES)


def prepare_runtime_dir(folder: Path, aws_client: bool) -> None:
    """Fill *folder* with links to the modules AWS's Python runtime has, and labkit's guest code."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*RUNTIME_MODULES, *(CLIENT_MODULES if aws_client else ())):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"The local Lambda runtime needs the package {name!r}: pip install boto3 simplejson")
        source = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
        _link(source, folder / source.name)
    _link(Path(__file__).parent / "guest", folder / GUEST)


def _link(source: Path, link: Path) -> None:
    if link.exists():
        return
    try:
        link.symlink_to(source, target_is_directory=source.is_dir())
    except OSError:
        # Windows lets only administrators (or developer mode) make symbolic links; a junction needs nothing.
        if source.is_dir() and os.name == "nt":
            import _winapi

            _winapi.CreateJunction(str(source), str(link))  # type: ignore[attr-defined]
        elif source.is_dir():
            shutil.copytree(source, link)
        else:
            shutil.copy2(source, link)


def sandbox_environment(
    settings: dict[str, Any], stream: str, endpoint_url: str | None, credentials: dict[str, str]
) -> dict[str, str]:
    """Exactly what a Lambda sandbox's process sees: the reserved variables, credentials and the function's own."""
    region = settings["FunctionArn"].split(":")[3]
    env = dict(SANDBOX_VARIABLES)
    env.update(
        {
            "_HANDLER": settings["Handler"],
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{settings.get('Runtime', 'python3.12')}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": settings["FunctionName"],
            "AWS_LAMBDA_FUNCTION_VERSION": settings.get("Version", "$LATEST"),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(settings.get("MemorySize", 128)),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{settings['FunctionName']}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        }
    )
    if endpoint_url:
        # The one variable AWS does not set: it points the function's SDK at the local cloud.
        env["AWS_ENDPOINT_URL"] = endpoint_url
    env.update(credentials)
    env.update(settings.get("Environment", {}).get("Variables", {}))
    return env
