"""Notebook 07's figures in words: each run's rate and bill, and what batching changed, computed from the runs.

The Lambda bill of a run is its requests (one per invocation) and its billed GB-seconds (the REPORT
lines' Billed Duration times the memory size), at the prices in `labkit/data/prices.json`
(https://aws.amazon.com/lambda/pricing/). Nothing here is written in advance: every comparison is
worded by the sign and size of the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from labkit.config import FUNCTION_MEMORY_MB
from labkit.experiments import costs
from labkit.notebook.display import Note

if TYPE_CHECKING:
    import pandas as pd

    from labkit.experiments.backlog import BatchRun
    from labkit.lab import Lab


def lambda_bill(run: BatchRun, memory_mb: int = FUNCTION_MEMORY_MB, prices: costs.Prices | None = None) -> float:
    """What the run's invocations would cost on AWS Lambda, in USD: requests plus billed GB-seconds."""
    prices = prices or costs.load_prices()
    gb_seconds = run.billed_ms / 1000 * memory_mb / 1024
    return prices["lambda_request"].cost(run.invocations) + prices["lambda_gb_second"].cost(gb_seconds)


def batch_summary(runs: Sequence[BatchRun], memory_mb: int = FUNCTION_MEMORY_MB) -> Note:
    """One line per run (rate, invocations, measured and billed time, Lambda bill), then what the largest batch changed."""
    prices = costs.load_prices()
    lines = []
    for run in runs:
        init = f" + {run.init_ms:.1f} ms init" if run.init_ms else ""
        lines.append(
            f"batch size {run.batch_size}: {run.records} orders in {run.seconds:.2f} s "
            f"({run.orders_per_second:.1f} orders/s), {run.invocations} invocations, "
            f"{run.duration_ms:.1f} ms measured{init}, {run.billed_ms} ms billed, "
            f"Lambda bill ${lambda_bill(run, memory_mb, prices):.8f}"
        )
    if len(runs) >= 2:
        small, big = min(runs, key=lambda r: r.batch_size), max(runs, key=lambda r: r.batch_size)
        lines.append(_compare(small, big, memory_mb, prices))
    return Note("\n".join(lines))


def _compare(small: BatchRun, big: BatchRun, memory_mb: int, prices: costs.Prices) -> str:
    before, after = lambda_bill(small, memory_mb, prices), lambda_bill(big, memory_mb, prices)
    requests = small.invocations - big.invocations
    billed = small.billed_ms - big.billed_ms
    requests_text = (
        f"{abs(requests)} {'fewer' if requests > 0 else 'more'} requests" if requests else "as many requests"
    )
    billed_text = (
        f"{abs(billed)} ms {'less' if billed > 0 else 'more'} billed time" if billed else "as much billed time"
    )
    if small.seconds == big.seconds or not small.orders_per_second:
        speed = f"as fast ({big.seconds:.2f} s each)"
    else:
        # A rate's ratio reads right both ways ("3.0x the rate"); a percentage of time saved ("66% faster") does not.
        ratio = big.orders_per_second / small.orders_per_second
        speed = f"in {big.seconds:.2f} s against {small.seconds:.2f} s ({ratio:.1f}× the rate)"
    return (
        f"batch size {big.batch_size} against {small.batch_size}: the Lambda bill was "
        f"{_relative(before, after, 'lower', 'higher')} ({requests_text}, {billed_text}), "
        f"and the backlog drained {speed}."
    )


def _relative(before: float, after: float, less: str, more: str) -> str:
    if before == after or not before:
        return "the same"
    share = abs(after - before) / before * 100
    return f"{share:.0f}% {less if after < before else more}"


def run_orders(lab: Lab, runs: Sequence[BatchRun]) -> pd.DataFrame:
    """The stored orders of these runs only (the table may hold orders of earlier runs and notebooks)."""
    wanted = {order_id for run in runs for order_id in run.order_ids}
    frame = lab.orders()
    return frame[frame["orderId"].isin(wanted)].reset_index(drop=True) if len(frame) else frame
