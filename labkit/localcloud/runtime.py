"""Run deployed Lambda code in this process, the way the Lambda Python runtime does.

The runtime reads the function's settings through the Lambda API, loads the deployed zip, runs
the handler with the function's environment, a real context object and the execution role's
credentials (when IAM is enforced), and writes the invocation's log to CloudWatch Logs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.exceptions import ClientError

from labkit.session import Clients

log = logging.getLogger(__name__)

# The environment, stdout and the root logger belong to the whole process; one invocation at a time
# may borrow them. AWS runs one event per execution environment too.
_PROCESS_LOCK = threading.RLock()
_LOADER = botocore.loaders.create_loader()
LOCAL_LAMBDA_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation."""

    request_id: str
    payload: Any
    error: dict[str, Any] | None
    logs: str
    duration_ms: float


class LambdaContext:
    """The context object handed to a handler, with the attributes and method AWS documents."""

    def __init__(self, settings: dict[str, Any], request_id: str, deadline: float, stream: str) -> None:
        self.function_name = settings["FunctionName"]
        self.function_version = settings.get("Version", "$LATEST")
        self.invoked_function_arn = settings["FunctionArn"]
        self.memory_limit_in_mb = int(settings.get("MemorySize", 128))
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = stream
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _ThreadLogHandler(logging.Handler):
    """Collects log records of one thread, formatted as the Lambda runtime formats them."""

    def __init__(self, sink: io.StringIO, request_id: str) -> None:
        super().__init__(logging.INFO)
        self._thread = threading.get_ident()
        self._sink = sink
        self._request_id = request_id

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread or record.name.startswith(("botocore", "boto3", "urllib3", "labkit")):
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        self._sink.write(f"[{record.levelname}]\t{stamp}Z\t{self._request_id}\t{record.getMessage()}\n")


class FunctionRuntime:
    """Loads and runs deployed handlers; one per local cloud."""

    def __init__(
        self,
        clients: Clients,
        code_for: Callable[[str], bytes],
        endpoint_url: str | None = None,
        enforce_iam: bool = False,
        write_logs: bool = True,
        assume_role: Callable[[str, str], dict[str, str]] | None = None,
        configuration_for: Callable[[str], dict[str, Any]] | None = None,
        log_sink: Callable[[str, str, list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self._clients = clients
        self._code_for = code_for
        self._endpoint_url = endpoint_url
        self.enforce_iam = enforce_iam
        self._write_logs = write_logs
        self._assume_role = assume_role
        # The local cloud reads settings and writes logs straight from and to moto's state, as the
        # Lambda service does inside AWS; each saves a request per invocation (a third of the work
        # at batch size 1). Without them, the Lambda and CloudWatch Logs APIs are used.
        self._configuration_for = configuration_for
        self._log_sink = log_sink
        # One boto3 session per execution environment: botocore caches the credentials it first
        # resolves, and each role's environment must keep its own, as each Lambda process does.
        self._sessions: dict[tuple[str, str, str], boto3.Session] = {}
        self._boto_hooks: list[tuple[str, Callable[..., Any]]] = []
        self._modules: dict[tuple[str, str, str], tuple[ModuleType, Callable[..., Any]]] = {}
        self._credentials: dict[str, tuple[float, dict[str, str]]] = {}
        self._streams: set[tuple[str, str]] = set()
        self._workdir = tempfile.TemporaryDirectory(prefix="labkit-lambda-")
        self._instance = uuid.uuid4().hex
        self._lock = threading.Lock()

    def close(self) -> None:
        """Remove unpacked code."""
        self._workdir.cleanup()

    def reset(self) -> None:
        """Forget every execution environment, so the next invocations start cold."""
        with self._lock:
            self._modules.clear()
            self._sessions.clear()

    def register_boto_hook(self, event_name: str, hook: Callable[..., Any]) -> None:
        """Register a botocore event *hook* on the boto3 sessions of execution environments made from now on."""
        with self._lock:
            self._boto_hooks.append((event_name, hook))

    def unregister_boto_hook(self, event_name: str, hook: Callable[..., Any]) -> None:
        """Stop giving *hook* to new execution environments."""
        with self._lock:
            self._boto_hooks = [(e, h) for e, h in self._boto_hooks if (e, h) != (event_name, hook)]

    def settings(self, function: str) -> dict[str, Any]:
        """The function's configuration, read from the Lambda API at every invocation.

        Not cached: once UpdateFunctionCode returns, AWS runs the new code on the next invocation,
        and a cache would run the old code a little longer.
        """
        if self._configuration_for is not None:
            return self._configuration_for(function)
        return self._clients("lambda").get_function_configuration(FunctionName=function)

    def invoke(self, function: str, event: Any) -> Invocation:
        """Run the function's handler on *event* and report what it returned or raised."""
        settings = self.settings(function)
        request_id = str(uuid.uuid4())
        timeout = float(settings.get("Timeout", 3))
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{self._instance}"
        out = io.StringIO()
        error: dict[str, Any] | None = None
        payload: Any = None
        with _PROCESS_LOCK:
            env = self._environment(settings)
            started = time.monotonic()
            context = LambdaContext(settings, request_id, started + timeout, stream)
            handler_log = _ThreadLogHandler(out, request_id)
            root = logging.getLogger()
            root.addHandler(handler_log)
            try:
                _output.sink = out
                with _patched_environ(env):
                    try:
                        with self._default_session(settings):
                            handler = self._handler(settings)
                            payload = handler(event, context)
                        json.dumps(payload)
                    except Exception as exc:
                        error = _error_payload(exc, request_id)
            finally:
                _output.sink = None
                root.removeHandler(handler_log)
            duration = time.monotonic() - started
        if error is None and duration > timeout:
            # Python threads cannot be interrupted; Lambda would have stopped the function at its
            # timeout, so the late result is discarded exactly as it would have been lost there.
            error = {"errorMessage": f"Task timed out after {timeout:.2f} seconds", "errorType": "Sandbox.Timedout"}
        text = _report(request_id, out.getvalue(), error, duration, settings)
        if self._write_logs:
            self._put_logs(settings["FunctionName"], stream, text)
        return Invocation(request_id=request_id, payload=payload, error=error, logs=text, duration_ms=duration * 1000)

    @contextlib.contextmanager
    def _default_session(self, settings: dict[str, Any]):  # type: ignore[no-untyped-def]
        key = (settings["FunctionArn"], settings["CodeSha256"], settings.get("Role", ""))
        with self._lock:
            session = self._sessions.get(key)
            hooks = list(self._boto_hooks)
        if session is None:
            core = botocore.session.Session()
            # Service models are the same for every environment: parse them once, not at each cold start.
            core.register_component("data_loader", _LOADER)
            session = boto3.Session(botocore_session=core)  # reads the patched environment: region and keys
            _LOADER.search_paths[:] = list(dict.fromkeys(_LOADER.search_paths))  # boto3 appends its path each time
            for event_name, hook in hooks:
                session.events.register(event_name, hook)
            with self._lock:
                self._sessions[key] = session
        saved = boto3.DEFAULT_SESSION
        boto3.DEFAULT_SESSION = session
        try:
            yield
        finally:
            boto3.DEFAULT_SESSION = saved

    def _handler(self, settings: dict[str, Any]) -> Callable[..., Any]:
        key = (settings["FunctionArn"], settings["CodeSha256"], settings.get("Role", ""))
        with self._lock:
            loaded = self._modules.get(key)
        if loaded is not None:
            return loaded[1]
        module_name, _, function_name = settings["Handler"].rpartition(".")
        folder = Path(self._workdir.name) / uuid.uuid4().hex
        with zipfile.ZipFile(io.BytesIO(self._code_for(settings["FunctionArn"]))) as archive:
            archive.extractall(folder)
        path = folder / (module_name.replace(".", "/") + ".py")
        if not path.is_file():
            raise ImportError(f"Unable to import module '{module_name}': No module named '{module_name}'")
        # A private module name: the handler file is called code.py, and `import code` is the stdlib.
        spec = importlib.util.spec_from_file_location(f"labkit_lambda_{uuid.uuid4().hex}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        module.__dict__["print"] = _function_print
        sys.path.insert(0, str(folder))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(folder))
        handler = getattr(module, function_name, None)
        if not callable(handler):
            raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
        with self._lock:
            self._modules[key] = (module, handler)
        return handler

    def _environment(self, settings: dict[str, Any]) -> dict[str, str]:
        region = settings["FunctionArn"].split(":")[3]
        env = {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": settings["FunctionName"],
            "AWS_LAMBDA_FUNCTION_VERSION": settings.get("Version", "$LATEST"),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(settings.get("MemorySize", 128)),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{settings['FunctionName']}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{settings.get('Runtime', 'python3.12')}",
            "_HANDLER": settings["Handler"],
        }
        if self._endpoint_url:
            env["AWS_ENDPOINT_URL"] = self._endpoint_url
        if self.enforce_iam:
            env.update(self._role_credentials(settings["Role"], settings["FunctionName"]))
        else:
            # Lambda always hands the function credentials; without IAM checks any key will do, and
            # a student's real keys never reach the local cloud.
            env.update(LOCAL_LAMBDA_CREDENTIALS)
        # botocore reads the legacy AWS_SECURITY_TOKEN before AWS_SESSION_TOKEN: one left in this
        # process's environment would go out with the function's keys and spoil them.
        env["AWS_SECURITY_TOKEN"] = env["AWS_SESSION_TOKEN"]
        env.update(settings.get("Environment", {}).get("Variables", {}))
        return env

    def _role_credentials(self, role_arn: str, session_name: str) -> dict[str, str]:
        now = time.monotonic()
        cached = self._credentials.get(role_arn)
        if cached and now < cached[0]:
            return cached[1]
        if self._assume_role is not None:
            value = self._assume_role(role_arn, session_name[:64])
        else:
            creds = self._clients("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])
            value = {
                "AWS_ACCESS_KEY_ID": creds["Credentials"]["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": creds["Credentials"]["SecretAccessKey"],
                "AWS_SESSION_TOKEN": creds["Credentials"]["SessionToken"],
            }
        self._credentials[role_arn] = (now + 600, value)
        return value

    def _put_logs(self, function_name: str, stream: str, text: str) -> None:
        group = f"/aws/lambda/{function_name}"
        if self._log_sink is not None:
            events = [{"timestamp": int(time.time() * 1000), "message": line} for line in text.splitlines() if line]
            if events:
                self._log_sink(group, stream, events)
            return
        logs = self._clients("logs")
        try:
            if (group, stream) not in self._streams:
                for create in (
                    lambda: logs.create_log_group(logGroupName=group),
                    lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream),
                ):
                    try:
                        create()
                    except ClientError as exc:
                        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                            raise
                self._streams.add((group, stream))
            now = int(time.time() * 1000)
            events = [{"timestamp": now, "message": line} for line in text.splitlines() if line]
            if events:
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except ClientError as exc:
            self._streams.discard((group, stream))
            log.debug("could not write logs of %s: %s", function_name, exc)


_output = threading.local()


def _function_print(
    *values: object, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    """`print` as the handler module sees it: stdout goes to the invocation's log, as in Lambda.

    Swapping sys.stdout instead would race with whatever else owns it (a notebook kernel, pytest).
    """
    sink = getattr(_output, "sink", None)
    if sink is None or (file is not None and file is not sys.stdout):
        print(*values, sep=sep, end=end, file=file, flush=flush)
        return
    sink.write((sep if sep is not None else " ").join(str(v) for v in values) + (end if end is not None else "\n"))


@contextlib.contextmanager
def _patched_environ(values: dict[str, str]):  # type: ignore[no-untyped-def]
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _report(
    request_id: str, output: str, error: dict[str, Any] | None, duration: float, settings: dict[str, Any]
) -> str:
    lines = [f"START RequestId: {request_id} Version: {settings.get('Version', '$LATEST')}"]
    lines.extend(output.splitlines())
    if error is not None:
        lines.append(f"[ERROR] {error['errorType']}: {error['errorMessage']}")
    ms = duration * 1000
    lines.append(f"END RequestId: {request_id}")
    lines.append(
        f"REPORT RequestId: {request_id}\tDuration: {ms:.2f} ms\tBilled Duration: {max(1, int(ms + 0.999))} ms\t"
        f"Memory Size: {settings.get('MemorySize', 128)} MB"
    )
    return "\n".join(lines) + "\n"
