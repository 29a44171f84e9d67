"""Fixtures of the reliability suite: one in-process local cloud per test module, one pipeline per test.

Each test builds its own pipeline under its own name prefix, as students sharing an account do, so
tests never see each other's orders, queues or logs; the cloud itself (moto costs seconds to start
and stop) is shared by the tests of a module.
"""

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from labkit.config import Config
from labkit.experiments.scenarios import FAST, local_lab
from labkit.lab import Lab
from labkit.localcloud import LocalCloud

_PREFIXES = itertools.count(1)


@pytest.fixture(scope="module")
def shared_cloud() -> Iterator[LocalCloud]:
    """An in-process local cloud with 1 s timeouts, for the tests of one module."""
    cloud = LocalCloud.in_process(Config.from_env({}, **FAST))
    yield cloud
    cloud.stop()


@pytest.fixture
def new_lab(request: pytest.FixtureRequest) -> Iterator[Callable[..., Lab]]:
    """Build the whole pipeline under a fresh prefix; removed after the test.

    Keyword arguments override Config fields. `pollers` other than 1 gets a cloud of its own, since
    pollers are a property of the Lambda service.
    """
    with ExitStack() as stack:

        def make(pollers: int = 1, **overrides: Any) -> Lab:
            if pollers != 1:
                return stack.enter_context(local_lab(pollers=pollers, **overrides))
            cloud = request.getfixturevalue("shared_cloud")
            config = cloud.config.with_(prefix=f"r{next(_PREFIXES)}", **overrides)
            lab = Lab(config, cloud=cloud)
            stack.callback(lab.down)
            lab.up()
            return lab

        yield make
