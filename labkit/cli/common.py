"""What the `labkit` commands share: the exit statuses and the `Lab` of the cloud they act on.

The commands that build, feed, watch or grade a pipeline act on a cloud that outlives them (a
`labkit serve` behind `AWS_ENDPOINT_URL`, or a real account), so they connect through `connected_lab()`,
which refuses the in-process default: what they built would vanish with the command. Commands call it
as `common.connected_lab()`, looked up when they run, so a test can replace it here.
"""

from __future__ import annotations

from typing import Any

from labkit.config import DEFAULT_PORT, ENV_BACKEND, ENV_ENDPOINT, Config
from labkit.errors import ConfigError
from labkit.lab import Lab, connect

EXIT_ERROR = 2
EXIT_BELOW_FULL = 1  # `labkit grade`: graded, but not full marks


def connected_lab(**overrides: Any) -> Lab:
    """The `Lab` of the endpoint or account the environment names; a `ConfigError` if it names none."""
    config = Config.from_env(**overrides)
    if config.is_local:
        raise ConfigError(
            "No local cloud to talk to: start one with `labkit serve` and "
            f"`export {ENV_ENDPOINT}=http://127.0.0.1:{DEFAULT_PORT}`, or set {ENV_BACKEND}=aws for a real account."
        )
    return connect(config)
