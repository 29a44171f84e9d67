"""Both ways the local cloud starts execution environments, for the tests that must pass on each.

`auto` is Linux's fast path (a fork server and AWS's runtime client, namespaces for the file
system); `portable` is what macOS and Windows run (a fresh interpreter, labkit's runtime loop,
audit hooks). A module-scoped fixture parametrised with PATHS builds its local cloud under each. The
portable path's cold starts cost a fresh interpreter each (a second of CPU on a busy two-core machine),
so its runs are marked `portable` (and slow): CI runs them as a step of their own (`make test-portable`),
`make test` and `make test-fast` the fork path alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from labkit.config import ENV_LOCAL_RUNTIME, LOCAL_RUNTIME_AUTO, LOCAL_RUNTIME_PORTABLE

PATHS = [LOCAL_RUNTIME_AUTO, pytest.param(LOCAL_RUNTIME_PORTABLE, marks=(pytest.mark.slow, pytest.mark.portable))]


@contextlib.contextmanager
def runtime_path(path: str) -> Iterator[None]:
    """Build local clouds inside this block on *path* (the setting is read when a cloud starts)."""
    before = os.environ.get(ENV_LOCAL_RUNTIME)
    os.environ[ENV_LOCAL_RUNTIME] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_LOCAL_RUNTIME, None)
        else:
            os.environ[ENV_LOCAL_RUNTIME] = before
