"""Create boto3 clients for the configured backend, late and once each."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.config
from botocore.exceptions import NoCredentialsError, NoRegionError, ProfileNotFound

from labkit.config import BACKEND_AWS, BACKEND_ENDPOINT, ENV_PROFILE, Config
from labkit.errors import ConfigError

# Local endpoints accept any key; these stand in when the shell has none, as the AWS CLI docs do for moto.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# Standard retry mode backs off on throttling and 5xx, which matters on a real account under load.
_BOTO_CONFIG = botocore.config.Config(retries={"mode": "standard", "max_attempts": 5})


class Clients:
    """A cache of boto3 clients for one backend; safe to share between threads."""

    def __init__(self, config: Config, session: boto3.Session | None = None) -> None:
        self.config = config
        self._session = session
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account_id: str | None = None

    @property
    def session(self) -> boto3.Session:
        """The boto3 session, created on first use."""
        if self._session is None:
            self._session = _make_session(self.config)
        return self._session

    def __call__(self, service: str) -> Any:
        """Return the client for *service*, creating it on first use."""
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                kwargs: dict[str, Any] = {"region_name": self.config.region, "config": _BOTO_CONFIG}
                if self.config.backend == BACKEND_ENDPOINT:
                    kwargs["endpoint_url"] = self.config.endpoint_url
                try:
                    client = self.session.client(service, **kwargs)
                except NoRegionError as exc:
                    raise ConfigError("No AWS region is set: export AWS_REGION, e.g. us-east-1.") from exc
                self._clients[service] = client
            return client

    @property
    def account_id(self) -> str:
        """The account the credentials belong to."""
        if self._account_id is None:
            try:
                self._account_id = self("sts").get_caller_identity()["Account"]
            except NoCredentialsError as exc:
                raise ConfigError(
                    "No AWS credentials found: run `aws configure` or `aws sso login`, "
                    f"or set {ENV_PROFILE} to a profile that has them."
                ) from exc
        return self._account_id


def _make_session(config: Config) -> boto3.Session:
    if config.backend == BACKEND_AWS:
        try:
            return boto3.Session(profile_name=config.profile, region_name=config.region)
        except ProfileNotFound as exc:
            raise ConfigError(
                f"AWS profile {config.profile!r} does not exist: check `aws configure list-profiles` "
                f"or unset {ENV_PROFILE}."
            ) from exc
    if config.backend == BACKEND_ENDPOINT:
        # A shared server may check keys (LocalStack, moto with IAM enforced): honour the shell's own.
        try:
            session = boto3.Session(region_name=config.region)
            if session.get_credentials() is not None:
                return session
        except ProfileNotFound:
            pass
    # The in-process cloud never reads a real profile, so a student's AWS keys cannot leak into it.
    return boto3.Session(region_name=config.region, **LOCAL_CREDENTIALS)
