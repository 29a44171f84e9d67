"""Orders Lab: build and run an event-driven order pipeline (SNS → SQS → Lambda → DynamoDB).

Start with ``lab = labkit.connect()``: a local cloud by default, the endpoint in ``AWS_ENDPOINT_URL``
if set, or a real account with ``LABKIT_BACKEND=aws``.

The package is layered; a module may import only from its own layer and the ones listed before it
(`tests/test_layers.py` reads every import and keeps this true):

1. the core, at the top of the package: `config`, `errors`, `session`, `aws`, `orders`, `events`,
   `lambdaerrors`, `lambdalog`;
2. `resources/` (real AWS APIs), `localcloud/` (the only place that knows moto) and `grading/`
   (read-only clients), each on the core alone;
3. `lab.py`, the facade notebooks hold: `Lab` and `connect()`;
4. `observe/`, reading and showing what the pipeline did, through a `Lab`;
5. `experiments/`: load, faults, backlog and costs;
6. the notebooks' cells (`notebook/`) and the benchmark (`bench/`, `python -m labkit.bench`);
7. on top, the `labkit` command (`cli/`) and this package's own names, which do not import each other.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

from labkit.config import Config
from labkit.errors import AccessError, ConfigError, InputError, LabkitError, NotReadyError, ResourceError
from labkit.lab import Lab, Pipeline, connect, grade
from labkit.orders import MALFORMED_BODY, SAMPLE_ORDER, generate_orders, make_order, sample_order

__version__ = "0.1.0"

# Where the modules of the flat layout went: notebooks saved before the move still say
# `from labkit import journey` or `from labkit.widgets import OrderForm`, and keep working.
MOVED = {
    "backlog": "labkit.experiments.backlog",
    "costs": "labkit.experiments.costs",
    "deliveries": "labkit.observe.deliveries",
    "dynamodb": "labkit.resources.dynamodb",
    "faults": "labkit.experiments.faults",
    "functions": "labkit.resources.functions",
    "iam": "labkit.resources.iam",
    "journey": "labkit.observe.journey",
    "logs": "labkit.observe.logs",
    "reliability": "labkit.experiments.reliability",
    "scenarios": "labkit.experiments.scenarios",
    "sns": "labkit.resources.sns",
    "sqs": "labkit.resources.sqs",
    "teardown": "labkit.resources.teardown",
    "widgets": "labkit.observe.widgets",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old module name with the module at its new place (the same object, not a copy)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.startswith("labkit.") and fullname[len("labkit.") :] in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name[len("labkit.") :]])

    def exec_module(self, module: ModuleType) -> None:
        """The module ran when it was imported at its new place."""


if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedFinder())


def __getattr__(name: str) -> Any:
    # `labkit.functions.handler_source()` after a bare `import labkit`, as older notebooks write it.
    if name in MOVED:
        return importlib.import_module(MOVED[name])
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


__all__ = [
    "MALFORMED_BODY",
    "SAMPLE_ORDER",
    "AccessError",
    "Config",
    "ConfigError",
    "InputError",
    "Lab",
    "LabkitError",
    "NotReadyError",
    "Pipeline",
    "ResourceError",
    "connect",
    "generate_orders",
    "grade",
    "make_order",
    "sample_order",
]
