"""The Lambda service's invoke path: find or start an execution environment, run one event, log it.

Each function version (code and configuration) gets its own pool of execution environments
(`environment.py`): a warm one is reused, so module-level state survives between invocations as on
AWS; new code or configuration starts cold. The invocation's log, the platform's lines around the
function's own output, goes to CloudWatch Logs as AWS writes it (`platformlog.py`):
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.localcloud.environment import ExecutionEnvironment
from labkit.localcloud.launch import FAST, Launchers, chosen_path
from labkit.localcloud.platformlog import LogWriter, log_text
from labkit.localcloud.sandbox import LOCAL_LAMBDA_CREDENTIALS, prepare_runtime_dir, sandbox_environment
from labkit.session import Clients

# The settings whose change gives the next invocation a new environment (a cold start).
_VERSION_FIELDS = tuple(
    "FunctionArn CodeSha256 Handler Runtime Timeout MemorySize EphemeralStorage Environment Role".split()
)
# Lambda's default /tmp: https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html
DEFAULT_EPHEMERAL_MB = 512


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation."""

    request_id: str
    payload: Any
    error: dict[str, Any] | None
    logs: str
    duration_ms: float
    init_ms: float | None = None
    max_memory_mb: int = 0
    error_kind: str | None = None  # function, init, timeout, exit or memory


class FunctionRuntime:
    """Runs deployed functions in execution environments; one per local cloud."""

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
        self.endpoint_url = endpoint_url
        self.enforce_iam = enforce_iam
        self._write_logs = write_logs
        self._assume_role = assume_role
        # The local cloud reads settings and writes logs straight from and to moto's state, as the
        # Lambda service does inside AWS; without them, the Lambda and CloudWatch Logs APIs are used.
        self._configuration_for = configuration_for
        self._logs = LogWriter(clients, log_sink)
        self._credentials: dict[str, tuple[float, dict[str, str]]] = {}
        self._workdir = tempfile.TemporaryDirectory(prefix="labkit-lambda-")
        self._runtime_dir = Path(self._workdir.name) / "runtime" / "python"
        path = chosen_path()
        prepare_runtime_dir(self._runtime_dir, aws_client=path == FAST)
        # A fork server starts by `warm()` once a mapping exists, or else at the first invocation: loading
        # the runtime costs it about half a second of CPU, spent for nothing by a cloud that runs no function.
        self._launchers = Launchers(Path(self._workdir.name), self._runtime_dir, path)
        self._lock = threading.Lock()
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._current: dict[str, str] = {}
        self._live: set[ExecutionEnvironment] = set()
        self._keys: dict[ExecutionEnvironment, str] = {}
        self._streams_of: dict[ExecutionEnvironment, str] = {}
        self._generation = 0
        self._closed = False

    def close(self) -> None:
        """Stop every execution environment and remove unpacked code."""
        with self._lock:
            self._closed = True
            live = list(self._live)
            self._live.clear()
            self._idle.clear()
        for environment in live:
            environment.close()
        self._launchers.close()
        self._workdir.cleanup()

    @property
    def path(self) -> str:
        """`fork` (Linux's fast path) or `portable`: how this runtime starts its environments."""
        return self._launchers.path

    @property
    def isolation(self) -> str:
        """`namespaces` or `audit`: what gives functions Lambda's file system here."""
        return self._launchers.isolation

    def reset(self) -> None:
        """Stop every idle execution environment, so the next invocations start cold."""
        with self._lock:
            self._generation += 1
            idle = [env for group in self._idle.values() for env in group]
            self._idle.clear()
        for environment in idle:
            self._discard(environment)

    def environment_pids(self) -> list[int]:
        """The process ids of the execution environments alive now."""
        with self._lock:
            return [env.pid for env in self._live if env.alive]

    def settings(self, function: str) -> dict[str, Any]:
        """The function's configuration, read at every invocation.

        Not cached: once UpdateFunctionCode returns, AWS runs the new code on the next invocation.
        """
        if self._configuration_for is not None:
            return self._configuration_for(function)
        return self._clients("lambda").get_function_configuration(FunctionName=function)

    def invoke(self, function: str, event: Any) -> Invocation:
        """Run the function on *event* in an execution environment and report what it returned or raised."""
        settings = self.settings(function)
        request_id = str(uuid.uuid4())
        try:
            body = json.dumps(event).encode()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"The event for {settings['FunctionName']} is not JSON: {exc}") from exc
        try:
            environment = self._acquire(settings)
        except PermissionError as exc:
            error = {"errorType": "AccessDeniedException", "errorMessage": str(exc)}
            return Invocation(request_id, None, error, "", 0.0, error_kind="init")
        stream = self._streams_of.get(environment, "unknown")
        try:
            outcome = environment.invoke(request_id, body, settings["FunctionArn"], float(settings.get("Timeout", 3)))
        finally:
            self._release(environment)
        payload = None
        if outcome.payload is not None and outcome.error is None:
            try:
                payload = json.loads(outcome.payload) if outcome.payload else None
            except ValueError:
                payload = outcome.payload.decode("utf-8", "replace")
        text = log_text(outcome, settings)
        if self._write_logs:
            self._logs.put(settings["FunctionName"], stream, text)
        return Invocation(
            request_id=request_id,
            payload=payload,
            error=outcome.error,
            logs=text,
            duration_ms=outcome.duration_ms,
            init_ms=outcome.init_ms,
            max_memory_mb=outcome.max_memory_mb,
            error_kind=outcome.error_kind,
        )

    # Environments.

    def _acquire(self, settings: dict[str, Any]) -> ExecutionEnvironment:
        arn = settings["FunctionArn"]
        key = self._version_key(settings)
        stale: list[ExecutionEnvironment] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("The local Lambda runtime is stopped.")
            if self._current.get(arn) != key:
                self._current[arn] = key
                stale = self._idle.pop(arn, [])
            idle = self._idle.get(arn, [])
            while idle:
                environment = idle.pop()
                if environment.alive:
                    break
                stale.append(environment)
            else:
                environment = None
        for old in stale:
            self._discard(old)
        if environment is not None:
            return environment
        environment = self._start(settings)
        with self._lock:
            self._live.add(environment)
            self._keys[environment] = key
        return environment

    def _release(self, environment: ExecutionEnvironment) -> None:
        arn = None
        with self._lock:
            key = self._keys.get(environment)
            for function_arn, current in self._current.items():
                if current == key:
                    arn = function_arn
            keep = not self._closed and arn is not None and environment.alive
            if keep:
                assert arn is not None
                self._idle.setdefault(arn, []).append(environment)
        if not keep:
            self._discard(environment)

    def _discard(self, environment: ExecutionEnvironment) -> None:
        with self._lock:
            self._live.discard(environment)
            self._keys.pop(environment, None)
            self._streams_of.pop(environment, None)
        environment.close()

    def _version_key(self, settings: dict[str, Any]) -> str:
        fields = {name: settings.get(name) for name in _VERSION_FIELDS}
        fields["generation"] = self._generation
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()

    def _start(self, settings: dict[str, Any]) -> ExecutionEnvironment:
        task_dir = self._unpack(settings)
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{settings.get('Version', '$LATEST')}]{uuid.uuid4().hex}"
        with self._lock:
            if self._closed:
                raise RuntimeError("The local Lambda runtime is stopped.")
        environment = ExecutionEnvironment(
            self._launchers.get(),
            Path(self._workdir.name) / "environments" / uuid.uuid4().hex,
            task_dir,
            self._runtime_dir,
            self._environment(settings, stream),
            int(settings.get("MemorySize", 128)),
            int((settings.get("EphemeralStorage") or {}).get("Size", DEFAULT_EPHEMERAL_MB)),
        )
        with self._lock:
            self._streams_of[environment] = stream
        return environment

    def warm(self) -> None:
        """Start loading the runtime now, so the first invocation does not wait for it."""
        with self._lock:
            if self._closed or self._launchers.started:
                return
        self._launchers.get()

    def process_ids(self) -> list[int]:
        """The process ids of every process the runtime runs: environments and the fork server."""
        return self.environment_pids() + self._launchers.pids()

    def _unpack(self, settings: dict[str, Any]) -> Path:
        digest = hashlib.sha256(f"{settings['FunctionArn']}:{settings['CodeSha256']}".encode()).hexdigest()[:16]
        folder = self._launchers.code_dir / digest
        with self._lock:
            if not folder.is_dir():
                staging = folder.with_name(digest + ".tmp-" + uuid.uuid4().hex)
                with zipfile.ZipFile(io.BytesIO(self._code_for(settings["FunctionArn"]))) as archive:
                    archive.extractall(staging)
                staging.rename(folder)
        return folder

    def _environment(self, settings: dict[str, Any], stream: str) -> dict[str, str]:
        if self.enforce_iam:
            credentials = self._role_credentials(settings["Role"], settings["FunctionName"])
        else:
            credentials = LOCAL_LAMBDA_CREDENTIALS
        return sandbox_environment(settings, stream, self.endpoint_url, credentials)

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
