"""Observing the pipeline: reading what happened and showing it.

`journey` follows one order from the topic to the table or the DLQ, `logs` reads the function's
CloudWatch logs (the lines themselves are parsed by `labkit.lambdalog` and `labkit.lambdaerrors`),
`deliveries` joins the two into per-message histories, `charts` samples queue depths and draws them,
and `widgets` is the notebook's order form. Every function takes a `Lab` (the facade in `labkit.lab`) for its config and
clients; none changes a resource except through the facade's own calls.

May import: the core, `labkit.resources` and the facade `labkit.lab`. Never the local cloud, the
grader or the experiments. For notebooks saved before the move, `labkit.observe.counts_chart`,
`CountsRecorder`, `dlq_frame` and `orders_chart` still answer here (they live in `charts`).
"""

from __future__ import annotations

import importlib
from typing import Any

# Names of the old flat `labkit.observe` module; imported on first use so that `labkit.observe.journey`
# does not load pandas and matplotlib.
_CHARTS_NAMES = frozenset({"CountsRecorder", "counts_chart", "dlq_frame", "orders_chart", "finish"})


def __getattr__(name: str) -> Any:
    if name in _CHARTS_NAMES:
        return getattr(importlib.import_module("labkit.observe.charts"), name)
    raise AttributeError(f"module 'labkit.observe' has no attribute {name!r}")
