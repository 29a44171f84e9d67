"""The Lambda Runtime API that one execution environment's runtime client talks to.

Each environment gets its own server on a loopback port (its `AWS_LAMBDA_RUNTIME_API`, as each
Lambda sandbox has its own), serving the documented endpoints of version 2018-06-01: the runtime
client's `invocation/next` blocks until an event is handed over, `invocation/<id>/response` and
`invocation/<id>/error` answer it, and `init/error` reports a function that failed to load:
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

Every request is also the moment the environment is known to be alive and waiting: the API tells
its environment (`on_contact`), with the peak memory labkit's portable runtime reports in a header
of its own (AWS's client sends none: on Linux the lab reads the kernel's figure instead).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

log = logging.getLogger(__name__)

RUNTIME_API_VERSION = "2018-06-01"
# The header in which labkit's runtime loop (guest/lambdaloop.py) reports its process's peak memory.
PEAK_MEMORY_HEADER = "Labkit-Peak-Memory-Kb"


@dataclass
class Pending:
    """An invocation handed to the runtime client, and its answer once it comes."""

    request_id: str
    body: bytes
    deadline_ms: int
    function_arn: str
    delivered: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    payload: bytes | None = None
    error: dict[str, Any] | None = None


class RuntimeAPI:
    """The Runtime API server of one environment: at most one invocation in flight."""

    def __init__(self, on_contact: Callable[[int], None] | None = None) -> None:
        self._on_contact = on_contact
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Condition()
        self._pending: Pending | None = None
        self._closed = False
        self.init_error: dict[str, Any] | None = None
        self.initialised = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name="labkit-runtime-api", daemon=True)
        self._acceptor.start()

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    @property
    def address(self) -> str:
        """`host:port`, the value of the environment's `AWS_LAMBDA_RUNTIME_API`."""
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    # The invoking side.

    def offer(self, pending: Pending) -> None:
        """Hand *pending* to the runtime client's next (or waiting) `next` call."""
        with self._lock:
            self._pending = pending
            self._lock.notify_all()

    def withdraw(self) -> None:
        """Forget the invocation in flight: a late answer to it is refused."""
        with self._lock:
            self._pending = None

    # The runtime client's side.

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, address = self._listener.accept()
            except OSError:
                return
            # Small replies go out at once: Nagle's algorithm would hold each for a delayed ACK (40 ms).
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(
                target=_serve_connection, args=(conn, address, self), name="labkit-runtime-conn", daemon=True
            ).start()

    def next_invocation(self) -> Pending | None:
        """Block until an invocation is handed to this environment (the runtime's `next` call)."""
        self.initialised.set()
        with self._lock:
            while not self._closed:
                pending = self._pending
                if pending is not None and not pending.delivered.is_set():
                    pending.delivered.set()
                    return pending
                self._lock.wait()
        return None

    def complete(self, request_id: str, payload: bytes | None, error: dict[str, Any] | None) -> bool:
        """Record the runtime's answer for *request_id*; False if it is not the invocation in flight."""
        with self._lock:
            pending = self._pending
            if pending is None or pending.request_id != request_id or pending.done.is_set():
                return False
            pending.payload, pending.error = payload, error
            pending.done.set()
            return True

    def contact(self, peak_memory_kb: int) -> None:
        """The runtime called: let the environment look at it while it waits for the answer."""
        if self._on_contact is not None:
            self._on_contact(peak_memory_kb)

    def init_failed(self, error: dict[str, Any]) -> None:
        """Record the error the runtime reported while loading the function."""
        self.init_error = error

    # Shutdown.

    def close(self) -> bool:
        """Release a waiting `next` call; False if already closed."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            self._lock.notify_all()
        return True

    def stop_listening(self) -> None:
        """Accept no more connections."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


class _RuntimeAPIHandler(BaseHTTPRequestHandler):
    """The Lambda Runtime API (2018-06-01) for one environment's runtime client."""

    protocol_version = "HTTP/1.1"
    server: RuntimeAPI  # type: ignore[assignment]
    _PREFIX = f"/{RUNTIME_API_VERSION}/runtime/"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("runtime api: " + format, *args)

    def _contact(self) -> None:
        try:
            reported = int(self.headers.get(PEAK_MEMORY_HEADER) or 0)
        except ValueError:
            reported = 0
        self.server.contact(reported)

    def do_GET(self) -> None:
        self._contact()
        if self.path != self._PREFIX + "invocation/next":
            return self._reply(404, {"errorType": "InvalidRequest", "errorMessage": f"Unknown path {self.path}"})
        pending = self.server.next_invocation()
        if pending is None:
            self.close_connection = True
            return self._reply(500, {"errorType": "Runtime.Closed", "errorMessage": "The environment is stopping."})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(pending.body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", pending.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(pending.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", pending.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{pending.request_id[:24]}")
        self.end_headers()
        self.wfile.write(pending.body)

    def do_POST(self) -> None:
        self._contact()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path[len(self._PREFIX) :] if self.path.startswith(self._PREFIX) else ""
        if path == "init/error":
            self.server.init_failed(_error_body(body, self.headers.get("Lambda-Runtime-Function-Error-Type")))
            return self._reply(202, {"status": "OK"})
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            if parts[2] == "response":
                accepted = self.server.complete(parts[1], body, None)
            else:
                error = _error_body(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                accepted = self.server.complete(parts[1], None, error)
            if accepted:
                return self._reply(202, {"status": "OK"})
            return self._reply(400, {"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"})
        return self._reply(404, {"errorType": "InvalidRequest", "errorMessage": f"Unknown path {self.path}"})

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _serve_connection(conn: socket.socket, address: Any, api: RuntimeAPI) -> None:
    # A killed environment drops its connection mid-request: that ends the conversation, nothing more.
    try:
        # The handler reads its API where http.server keeps the server (see its `server` annotation).
        _RuntimeAPIHandler(conn, address, api)  # type: ignore[arg-type]
    except OSError:
        pass
    finally:
        conn.close()


def _error_body(body: bytes, error_type: str | None) -> dict[str, Any]:
    try:
        error = json.loads(body) if body else {}
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    error.setdefault("errorType", error_type or "Runtime.Unknown")
    error.setdefault("errorMessage", "")
    return error
