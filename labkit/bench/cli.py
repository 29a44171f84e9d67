"""`python -m labkit.bench`: run the benchmark, print a Markdown table or one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from labkit.bench import DEFAULT_BATCH_SIZES, DEFAULT_ORDERS, MAX_BOUND_ORDERS, check_sizes, run_benchmark
from labkit.errors import InputError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with the command line's sizes; 0 when it finished."""
    parser = argparse.ArgumentParser(
        prog="python -m labkit.bench",
        description="Measure the local cloud: put_item bound, end-to-end throughput and latency per batch size, "
        "peak memory, deepest queue.",
    )
    parser.add_argument(
        "--orders", type=_positive, default=DEFAULT_ORDERS, help=f"orders per run (default {DEFAULT_ORDERS})"
    )
    parser.add_argument(
        "--batch-sizes", type=_batch_sizes, default=DEFAULT_BATCH_SIZES, help="trigger batch sizes (default 1,10)"
    )
    parser.add_argument(
        "--bound-orders",
        type=_positive,
        help=f"put_item calls timed for the bound (default the smaller of --orders and {MAX_BOUND_ORDERS})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = run_benchmark(args.orders, args.batch_sizes, bound_orders=args.bound_orders)
    sys.stdout.write((json.dumps(result.to_dict()) if args.json else result.table()) + "\n")
    return 0


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
        check_sizes(1, sizes)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of whole numbers, e.g. 1,10"
        ) from None
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return sizes


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value
