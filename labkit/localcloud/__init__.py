"""The local cloud: moto's AWS APIs plus a Lambda service that runs deployed code.

Two ways to run it: in this process (`LocalCloud.in_process()`, for tests and `labkit demo`) or as
a server on 127.0.0.1 (`serve()`, behind `labkit serve`) that notebooks, kernels and CLI calls
share through `AWS_ENDPOINT_URL`, as resources are shared in an AWS account. Either way functions
run in execution environments of their own (separate processes, `environment.py`) that reach the
AWS APIs over loopback: in-process, the cloud serves moto's endpoint on 127.0.0.1 for them alone.

Stacks (CloudFormation) are deployed by `stacks/`, through the cloud's own API, as an administrator.

May import: the core (`labkit.config`, `session`, `aws`, `errors`, `cfnyaml`), moto, awslambdaric, psutil, and
for stacks aws-sam-translator and cfn-lint's resource schemas. It is the only place that knows moto; nothing
here knows the resources' builders, the facade, the grader or `labkit.iac`. `guest/` is code for inside the
execution environments: the standard library and simplejson only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import urllib.request
from typing import Any

from labkit.config import BACKEND_ENDPOINT, BACKEND_MOTO, Config
from labkit.localcloud import queues, seam, signals
from labkit.localcloud.runtime import FunctionRuntime, Invocation
from labkit.localcloud.seam import cloudformation, lambdacode
from labkit.localcloud.service import LambdaService
from labkit.localcloud.stacks import StackEngine
from labkit.session import LOCAL_CREDENTIALS, Clients

log = logging.getLogger(__name__)

__all__ = ["FunctionRuntime", "LambdaService", "LocalCloud"]


class LocalCloud:
    """moto plus labkit's Lambda service, started and stopped together."""

    _shared: LocalCloud | None = None
    _shared_lock = threading.Lock()

    def __init__(
        self,
        config: Config,
        mock: Any = None,
        server: Any = None,
        pollers_per_mapping: int | None = None,
        function_endpoint: str | None = None,
    ) -> None:
        self.config = config
        self._mock = mock
        self._server = server
        self.clients = Clients(config)
        self.runtime = FunctionRuntime(
            self.clients,
            seam.function_code,
            endpoint_url=function_endpoint or config.endpoint_url,
            enforce_iam=config.enforce_iam,
            assume_role=seam.assume_role_as_lambda,
            configuration_for=lambda function: seam.function_configuration(
                function, self.clients.account_id, config.region
            ),
            log_sink=lambda group, stream, events: seam.put_function_logs(
                self.clients.account_id, config.region, group, stream, events
            ),
        )
        self.service = LambdaService(self.clients, self.runtime, pollers_per_mapping=pollers_per_mapping)
        seam.install(self._invoke_from_api)
        # Stacks are made through the cloud's own API, as an administrator, so its rules hold for them.
        self._regional: dict[str, Clients] = {config.region: self.clients}
        self.stacks = StackEngine(self._clients_in)
        cloudformation.install(self.stacks)
        lambdacode.install(self.function_endpoint)
        signals.install()
        queues.install()
        # With IAM enforced, labkit's local key is an administrator's and the handler runs with the
        # execution role's own credentials, so a missing permission fails as it would on AWS.
        self._enforcing = config.enforce_iam
        if self._enforcing:
            seam.enable_iam(LOCAL_CREDENTIALS["aws_access_key_id"], LOCAL_CREDENTIALS["aws_secret_access_key"])

    def _clients_in(self, region: str) -> Clients:
        if region not in self._regional:
            self._regional[region] = Clients(self.config.with_(region=region))
        return self._regional[region]

    def _invoke_from_api(self, function_arn: str, event: dict[str, Any]) -> tuple[str, bool, str]:
        return invoke_result_for_api(self.runtime.invoke(function_arn, event))

    @classmethod
    def in_process(cls, config: Config | None = None, pollers_per_mapping: int | None = None) -> LocalCloud:
        """Start moto in this process with the Lambda service polling; stop() undoes it."""
        from moto import mock_aws

        seam.install()
        config = (config or Config()).with_(backend=BACKEND_MOTO, endpoint_url=None)
        mock = mock_aws(config={"iam": {"load_aws_managed_policies": True}})
        mock.start()
        # The functions' own endpoint: moto's state is this process's, so the server shares it.
        server, endpoint = _start_server("127.0.0.1", 0)
        cloud = cls(
            config, mock=mock, server=server, pollers_per_mapping=pollers_per_mapping, function_endpoint=endpoint
        )
        cloud.service.start()
        return cloud

    @classmethod
    def shared(cls, config: Config | None = None) -> LocalCloud:
        """The process's one in-process cloud, started on first use (a second moto would wipe the first)."""
        with cls._shared_lock:
            if cls._shared is None or not cls._shared.service.running:
                cls._shared = cls.in_process(config)
            return cls._shared

    @classmethod
    def server(cls, config: Config | None = None, host: str = "127.0.0.1", port: int = 0) -> LocalCloud:
        """Start a moto server on *host*:*port* (0 picks a free port) with the Lambda service beside it."""
        seam.install()
        _check_port_free(host, port)
        server, endpoint = _start_server(host, port)
        # moto keeps its state in module globals: a new server starts empty, like a new account.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
        config = (config or Config()).with_(backend=BACKEND_ENDPOINT, endpoint_url=endpoint)
        cloud = cls(config, server=server)
        cloud.service.start()
        return cloud

    @property
    def endpoint_url(self) -> str | None:
        """The server's URL, or None in-process."""
        return self.config.endpoint_url

    @property
    def function_endpoint(self) -> str | None:
        """The URL functions' SDKs call: the server's, or in-process the loopback one served for them."""
        return self.runtime.endpoint_url

    def stop(self) -> None:
        """Stop the stack operations and the Lambda service, then moto."""
        self.stacks.stop()
        cloudformation.uninstall(self.stacks)
        self.service.stop()
        self.runtime.close()
        if self._enforcing:
            seam.disable_iam()
            self._enforcing = False
        if self._server is not None:
            _stop_server(self._server)
            self._server = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if LocalCloud._shared is self:
            LocalCloud._shared = None

    def __enter__(self) -> LocalCloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def invoke_result_for_api(result: Invocation) -> tuple[str, bool, str]:
    """The (payload, errored, logs) triple moto's Invoke API expects from a run."""
    if result.error is not None:
        return json.dumps(result.error), True, result.logs
    return json.dumps(result.payload), False, result.logs


def _start_server(host: str, port: int) -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    # One line per request on stderr would drown what a student needs to read.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def _stop_server(server: Any) -> None:
    """Stop moto's server thread without waiting out its poll interval."""
    host, port = server.get_host_and_port()
    stopping = threading.Thread(target=server.stop, name="labkit-server-stop", daemon=True)
    stopping.start()
    # The server looks for a shutdown request only between polls, every half second; a connection
    # wakes it at once. One made before the request is served and closed as an empty one.
    while stopping.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=1).close()
        stopping.join(0.01)


def _check_port_free(host: str, port: int) -> None:
    """Raise OSError if *port* is taken: moto's server thread would die there and leave start() waiting."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As werkzeug binds: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
