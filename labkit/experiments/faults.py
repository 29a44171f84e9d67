"""Fault injection for the local cloud: the handler's DynamoDB writes fail as a throttled or failing service's do.

    with faults.dynamodb_faults(lab, rate=0.2, seed=1) as injected:
        lab.publish_orders(orders)
        lab.wait_until_drained()
    injected.count  # how many writes failed

The faults reach only the functions that a local cloud of this process runs: the local cloud
answers a seeded fraction of their calls with the error response AWS would send, before the write
happens (`labkit.localcloud.intercept`). So that each fault reaches the handler as a write whose
retries ran out, the function's SDK retries are turned off while faults are on
(`AWS_MAX_ATTEMPTS=1`, the SDK's documented setting, added to the function's environment and
removed after; each change starts new execution environments, as on AWS). labkit's own clients
and real AWS are never touched.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from labkit.errors import ConfigError

if TYPE_CHECKING:
    from labkit.lab import Lab
    from labkit.localcloud import LocalCloud

# The responses DynamoDB sends when it throttles a write or fails inside: (HTTP status, code, message).
FAULTS: dict[str, tuple[int, str, str]] = {
    "throttle": (
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    "throttling": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    "internal": (500, "InternalServerError", "Internal server error"),
    "unavailable": (503, "ServiceUnavailable", "The service is currently unavailable or busy."),
}
WRITE_OPERATIONS = ("PutItem", "UpdateItem")
# The SDK setting for how many times a call is tried: https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
SDK_ATTEMPTS = "AWS_MAX_ATTEMPTS"


@dataclass(frozen=True)
class InjectedFault:
    """One call that was made to fail."""

    operation: str
    table: str
    key: str | None
    code: str


@dataclass
class DynamoDBFaults:
    """A context manager that fails a seeded fraction of the handler's DynamoDB writes while it is open."""

    cloud: LocalCloud
    rate: float = 0.2
    kinds: tuple[str, ...] = ("throttle", "internal")
    seed: int = 0
    operations: tuple[str, ...] = WRITE_OPERATIONS
    table: str | None = None
    function: str | None = None
    calls: int = 0
    injected: list[InjectedFault] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ConfigError(f"Fault rate {self.rate} must be between 0 and 1.")
        unknown = [kind for kind in self.kinds if kind not in FAULTS]
        if unknown or not self.kinds:
            raise ConfigError(f"Unknown fault kind(s) {unknown or '(none)'}: choose from {', '.join(FAULTS)}.")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._active = False
        self._removers: list[Any] = []

    @property
    def count(self) -> int:
        """How many calls were made to fail."""
        return len(self.injected)

    def by_code(self) -> Counter[str]:
        """How many faults of each error code were injected."""
        return Counter(fault.code for fault in self.injected)

    def keys(self) -> set[str]:
        """The orderIds whose writes were made to fail at least once."""
        return {fault.key for fault in self.injected if fault.key is not None}

    def __enter__(self) -> DynamoDBFaults:
        from labkit.localcloud import intercept

        self._active = True
        self._removers = [intercept.add("dynamodb", operation, before=self._hook) for operation in self.operations]
        self._set_sdk_attempts("1")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._active = False
        for remove in self._removers:
            remove()
        self._removers = []
        self._set_sdk_attempts(None)

    def _set_sdk_attempts(self, attempts: str | None) -> None:
        """Set (or, with None, remove) AWS_MAX_ATTEMPTS in the function's environment."""
        if self.function is None:
            return
        lam = self.cloud.clients("lambda")
        variables = dict(
            lam.get_function_configuration(FunctionName=self.function).get("Environment", {}).get("Variables", {})
        )
        if attempts is None:
            variables.pop(SDK_ATTEMPTS, None)
        else:
            variables[SDK_ATTEMPTS] = attempts
        lam.update_function_configuration(FunctionName=self.function, Environment={"Variables": variables})
        lam.get_waiter("function_updated_v2").wait(FunctionName=self.function, WaiterConfig={"Delay": 1})

    def _hook(self, call: Any) -> tuple[int, str, str] | None:
        if not self._active:
            return None
        request = call.params
        table = str(request.get("TableName", ""))
        if self.table is not None and table != self.table:
            return None
        with self._lock:
            self.calls += 1
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            status, code, message = FAULTS[kind]
            self.injected.append(InjectedFault(call.operation, table, _key(request), code))
        return status, code, message


def dynamodb_faults(
    target: Lab | LocalCloud,
    rate: float = 0.2,
    kinds: Iterable[str] = ("throttle", "internal"),
    seed: int = 0,
    operations: Iterable[str] = WRITE_OPERATIONS,
    table: str | None = None,
) -> DynamoDBFaults:
    """Fail a seeded *rate* of the handler's DynamoDB *operations* (on *table*, default the lab's) with *kinds* of fault.

    Args:
        target: a Lab on the in-process local cloud, or the LocalCloud itself.
        rate: the fraction of calls that fail, 0 to 1.
        kinds: keys of FAULTS: throttle, throttling, internal, unavailable.
        seed: makes the sequence of failures reproducible.
        operations: the DynamoDB operations to fail.
        table: only calls on this table; a Lab's own table when *target* is a Lab.
    Raises:
        ConfigError: *target* does not run its functions in this process.
    """
    cloud = _local_cloud(target)
    function = None
    if hasattr(target, "config") and target is not cloud:
        table = table if table is not None else target.config.table_name
        function = target.config.function_name
    return DynamoDBFaults(
        cloud=cloud,
        rate=rate,
        kinds=tuple(kinds),
        seed=seed,
        operations=tuple(operations),
        table=table,
        function=function,
    )


def _local_cloud(target: Any) -> LocalCloud:
    from labkit.localcloud import LocalCloud

    if isinstance(target, LocalCloud):
        return target
    cloud = getattr(target, "cloud", None)
    if isinstance(cloud, LocalCloud):
        return cloud
    backend = getattr(getattr(target, "config", None), "backend", "unknown")
    raise ConfigError(
        f"Fault injection needs a local cloud running in this process; this lab uses the {backend} backend. "
        "Use labkit.connect() without AWS_ENDPOINT_URL or LABKIT_BACKEND, or LocalCloud.in_process()."
    )


def _key(request: dict[str, Any]) -> str | None:
    item = request.get("Item") or request.get("Key") or {}
    value = item.get("orderId", {}) if isinstance(item, dict) else {}
    return value.get("S") if isinstance(value, dict) else None
