"""A Lambda runtime loop for machines where AWS's runtime interface client does not install.

`awslambdaric` publishes wheels for Linux alone. Elsewhere (macOS, Windows) this loop does what its
`bootstrap.run` does, over the same documented Runtime API: load the handler, report a failure to
load it at `init/error`, then take each event from `invocation/next` and answer at
`invocation/<id>/response` or `invocation/<id>/error`, with the error documents, log lines and
JSON encoding AWS's client produces (text log format):
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html

One addition: each answer carries the process's peak memory in a header of labkit's own, since
outside Linux the lab cannot read a process's high-water mark from outside.
"""

from __future__ import annotations

import decimal
import http.client
import importlib
import logging
import math
import os
import sys
import time
import traceback
from types import TracebackType
from typing import Any

import simplejson

from .lambdacontext import LambdaContext, peak_memory_kb

API_VERSION = "2018-06-01"
PEAK_MEMORY_HEADER = "Labkit-Peak-Memory-Kb"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# What awslambdaric logs before the error of a function that failed to load (lambda_literals.py).
UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare "
    "cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, "
    "runtime updates can be triggered by a function change, or can be applied automatically. To determine if the "
    "runtime has been updated, check the runtime version in the INIT_START log entry. If this error correlates with "
    "a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)
_THIS_FILE = os.path.basename(__file__)
# The runtimes whose responses keep non-ASCII characters as they are (awslambdaric's lambda_runtime_marshaller).
_UNESCAPED = {f"AWS_Lambda_python3.{minor}" for minor in (12, 13, 14, 15)}
_request_id = ""


class Fault(Exception):
    """A failure the runtime itself reports, with the error type AWS's client gives it."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type, self.message, self.trace = error_type, message, trace


class Encoder(simplejson.JSONEncoder):
    """awslambdaric's encoder: Decimal as a JSON number, non-ASCII kept on Python 3.12 and later runtimes."""

    def __init__(self) -> None:
        unescaped = os.environ.get("AWS_EXECUTION_ENV") in _UNESCAPED
        super().__init__(use_decimal=False, ensure_ascii=not unescaped, allow_nan=True)

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return math.nan if o.is_nan() else simplejson.RawJSON(str(o))
        return super().default(o)


class RuntimeClient:
    """The Runtime API over one kept-alive HTTP connection."""

    def __init__(self, address: str) -> None:
        self._connection = http.client.HTTPConnection(address)

    def _call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        headers = {**(headers or {}), PEAK_MEMORY_HEADER: str(peak_memory_kb())}
        self._connection.request(method, f"/{API_VERSION}/runtime/{path}", body, headers)
        response = self._connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise Fault("Runtime.LambdaRuntimeClientError", f"{path} answered {response.status}: {data[:200]!r}")
        return response, data

    def next(self) -> tuple[bytes, Any]:
        response, body = self._call("GET", "invocation/next")
        return body, response.headers

    def respond(self, request_id: str, body: bytes, content_type: str) -> None:
        self._call("POST", f"invocation/{request_id}/response", body, {"Content-Type": content_type})

    def fail(self, request_id: str, error: dict[str, Any]) -> None:
        headers = {ERROR_TYPE_HEADER: error["errorType"], "Content-Type": "application/json"}
        self._call("POST", f"invocation/{request_id}/error", to_json(error).encode(), headers)

    def init_failed(self, error: dict[str, Any]) -> None:
        headers = {ERROR_TYPE_HEADER: error["errorType"], "Content-Type": "application/json"}
        self._call("POST", "init/error", to_json(error).encode(), headers)


def to_json(value: Any) -> str:
    """*value* as awslambdaric encodes it."""
    return Encoder().encode(value)


def run(handler: str) -> None:
    """Load *handler* (`module.function`) and serve invocations until the process is stopped."""
    sys.stdout = _Unbuffered(sys.stdout)
    sys.stderr = _Unbuffered(sys.stderr)
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    _setup_logging()
    error = None
    try:
        function = _load(handler)
    except Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace)
    except Exception:
        error = _error_from(sys.exc_info())
    if error is not None:
        logging.warning(UNHANDLED_WARNING)
        log_error(error)
        client.init_failed(error)
        sys.exit(1)
    while True:
        body, headers = client.next()
        _serve(client, function, body, headers)


def _load(handler: str) -> Any:
    """The handler function, with awslambdaric's errors for a name it cannot load."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise Fault(
                "Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} as a handler module"
            )
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise Fault("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'") from None


def _serve(client: RuntimeClient, function: Any, body: bytes, headers: Any) -> None:
    global _request_id
    request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
    _request_id = request_id
    trace_id = headers.get("Lambda-Runtime-Trace-Id")
    if trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    error = None
    try:
        context = LambdaContext(
            request_id,
            headers.get("Lambda-Runtime-Client-Context"),
            headers.get("Lambda-Runtime-Cognito-Identity"),
            int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
            headers.get("Lambda-Runtime-Invoked-Function-Arn"),
        )
        try:
            event = (
                simplejson.loads(body)
                if headers.get("Content-Type", "application/json") == "application/json"
                else body
            )
        except Exception as exc:
            raise Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}") from None
        result = function(event, context)
        if isinstance(result, bytes):
            payload, content_type = result, "application/unknown"
        else:
            try:
                payload, content_type = to_json(result).encode(), "application/json"
            except Exception as exc:
                raise Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None
    except Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, request_id)
    except Exception:
        error = _error_from(sys.exc_info(), request_id)
    if error is not None:
        log_error(error)
        client.fail(request_id, error)
    else:
        client.respond(request_id, payload, content_type)


def make_error(message: str, error_type: str, trace: list[str] | None, request_id: str = "") -> dict[str, Any]:
    """The error document awslambdaric posts and the Invoke API returns."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": trace or [],
    }


def _error_from(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None],
    request_id: str = "",
) -> dict[str, Any]:
    error_type, value, tb = exc_info
    frames = traceback.extract_tb(tb)
    # As awslambdaric drops its own bootstrap.py frames: the stack starts at the first frame not the runtime's.
    while frames and os.path.basename(frames[0].filename) == _THIS_FILE:
        frames.pop(0)
    name = error_type.__name__ if error_type is not None else ""
    return make_error(str(value), name, traceback.format_list(frames), request_id)


def log_error(error: dict[str, Any]) -> None:
    """awslambdaric's text-format error line: the error, then its traceback, one log event (lines joined by "\\r")."""
    description = "[ERROR]"
    if error.get("errorType"):
        description += " " + error["errorType"]
    if error.get("errorMessage"):
        description += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
    lines = [description]
    if error.get("stackTrace") is not None:
        lines.append("Traceback (most recent call last):")
        for element in error["stackTrace"]:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                indent = len(line) - len(line.lstrip(" "))
                lines.append("\u00a0" * indent + line[indent:])
    sys.stdout.write("\r".join(lines) + "\n")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _LambdaLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(self.format(record))


def _setup_logging() -> None:
    logging.Formatter.converter = time.gmtime
    handler = _LambdaLogHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.addFilter(_RequestIdFilter())
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "")
    level = {"TRACE": "DEBUG"}.get(level, level).upper()
    root = logging.getLogger()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)
    root.addHandler(handler)


class _Unbuffered:
    """Every write reaches the log at once, as with awslambdaric's wrapper of stdout and stderr."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        self.stream.flush()
        return written

    def writelines(self, lines: Any) -> None:
        self.stream.writelines(lines)
        self.stream.flush()
