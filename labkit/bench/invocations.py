"""Cold start and warm overhead of an empty handler, through the Lambda Invoke API and at the runtime itself.

The runtime-level figure (`cloud.runtime.invoke`, wall clock around the call) is the local Lambda
service's own overhead: finding or starting an environment, the Runtime API round trip, the log
lines. The Invoke API figure adds the AWS API in front of it. A cold start is forced by stopping
every idle environment (`runtime.reset()`), as new code or configuration would; its Init Duration
is the one the REPORT line shows.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labkit.bench.probes import percentile
from labkit.errors import InputError, NotReadyError
from labkit.resources import functions

if TYPE_CHECKING:
    from labkit.lab import Lab

EMPTY_HANDLER = "def lambda_handler(e, c):\n    return None\n"
# The empty function gets its own name, beside the lab's, so the pipeline's environments are untouched.
EMPTY_PREFIX = "bench-empty"
_INIT_RE = re.compile(r"Init Duration: ([0-9.]+) ms")


@dataclass(frozen=True)
class Spread:
    """Median, 95th percentile and worst of a set of timings, in milliseconds."""

    n: int
    p50_ms: float
    p95_ms: float
    max_ms: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of *values* (at least one)."""
        if not values:
            raise InputError("No timings to summarise.")
        ordered = sorted(values)
        return cls(
            len(ordered), round(percentile(ordered, 50), 2), round(percentile(ordered, 95), 2), round(ordered[-1], 2)
        )


@dataclass(frozen=True)
class InvocationResult:
    """Warm and cold invocations of `def lambda_handler(e, c): return None`."""

    warm_runtime: Spread
    warm_api: Spread
    cold_runtime: Spread
    cold_api: Spread
    cold_init: Spread


def measure_invocations(lab: Lab, warm: int = 200, cold: int = 10) -> InvocationResult:
    """Deploy the empty handler beside *lab*'s pipeline, then time *warm* and *cold* invocations each way."""
    if lab.cloud is None:
        raise InputError("The invocation figures time the local cloud's own Lambda runtime: run them on a local cloud.")
    if warm < 1 or cold < 1:
        raise InputError(f"Give at least one warm and one cold invocation (got {warm} and {cold}).")
    runtime = lab.cloud.runtime
    role = lab.ensure_role()
    info = functions.ensure_function(lab.config.with_(prefix=EMPTY_PREFIX), lab.clients, role.arn, source=EMPTY_HANDLER)
    lam = lab.clients("lambda")

    def by_runtime() -> float | None:
        result = runtime.invoke(info.arn, {})
        if result.error is not None:
            raise NotReadyError(f"The empty function {info.name} failed: {result.error}")
        return result.init_ms

    def by_api() -> float | None:
        reply = lam.invoke(FunctionName=info.name, Payload=b"{}", LogType="Tail")
        if reply.get("FunctionError"):
            raise NotReadyError(f"The empty function {info.name} failed: {reply['Payload'].read()!r}")
        tail = base64.b64decode(reply.get("LogResult", "")).decode("utf-8", "replace")
        found = _INIT_RE.search(tail)
        return float(found.group(1)) if found else None

    # One of each first: the code is unpacked and both paths' clients are made.
    by_runtime()
    by_api()
    warm_runtime = _timed(by_runtime, warm)
    warm_api = _timed(by_api, warm)
    cold_runtime, inits = _timed_cold(by_runtime, runtime.reset, cold)
    cold_api, api_inits = _timed_cold(by_api, runtime.reset, cold)
    if len(inits) != cold or len(api_inits) != cold:
        raise NotReadyError(
            f"Only {len(inits) + len(api_inits)} of {2 * cold} cold invocations reported an Init Duration."
        )
    return InvocationResult(
        warm_runtime=Spread.of(warm_runtime),
        warm_api=Spread.of(warm_api),
        cold_runtime=Spread.of(cold_runtime),
        cold_api=Spread.of(cold_api),
        cold_init=Spread.of(inits + api_inits),
    )


def _timed(call: Callable[[], float | None], times: int) -> list[float]:
    spent = []
    for _ in range(times):
        begin = time.perf_counter()
        call()
        spent.append((time.perf_counter() - begin) * 1000)
    return spent


def _timed_cold(
    call: Callable[[], float | None], reset: Callable[[], None], times: int
) -> tuple[list[float], list[float]]:
    spent, inits = [], []
    for _ in range(times):
        reset()
        begin = time.perf_counter()
        init = call()
        spent.append((time.perf_counter() - begin) * 1000)
        if init is not None:
            inits.append(init)
    return spent, inits
