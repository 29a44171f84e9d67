"""`python -m labkit.bench`: run the benchmark, print Markdown tables or one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from labkit.bench import DEFAULT_ORDERS, MODES, Sizes, check_sizes, run_benchmark
from labkit.bench.pipeline import MAX_BOUND_ORDERS
from labkit.errors import InputError

DEFAULTS = Sizes()
SMOKE_IDLE_S = 3.0
Number = TypeVar("Number", int, float)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with the command line's sizes; 0 when it finished."""
    parser = argparse.ArgumentParser(
        prog="python -m labkit.bench",
        description="Measure the local cloud: empty-handler cold and warm invocations, throughput per batch size "
        "against bare put_item, publish-to-stored latency, backlog drain, idle CPU of `labkit serve`.",
        epilog="Unless given, the backlog sizes follow --orders: the small one is a tenth of it and the large one "
        f"ten times it (100 and 10,000 by default), and the idle window is 30 s. Below {DEFAULT_ORDERS} orders "
        "a run is a smoke run, kept short: the large backlog is twice --orders and the idle window 3 s.",
    )
    parser.add_argument(
        "--orders", type=_positive, default=DEFAULT_ORDERS, help=f"orders per throughput run (default {DEFAULT_ORDERS})"
    )
    parser.add_argument(
        "--batch-sizes", type=_batch_sizes, default=DEFAULTS.batch_sizes, help="trigger batch sizes (default 1,10)"
    )
    parser.add_argument(
        "--bound-orders",
        type=_positive,
        help=f"put_item calls timed for the bound (default the smaller of --orders and {MAX_BOUND_ORDERS})",
    )
    for flag, field, what in (
        ("--invocations", "warm_invocations", "warm invocations of the empty handler, each way"),
        ("--cold-starts", "cold_invocations", "cold starts of the empty handler, each way"),
        ("--latency-orders", "latency_orders", "single orders timed publish to stored"),
    ):
        default = getattr(DEFAULTS, field)
        parser.add_argument(flag, type=_positive, default=default, help=f"{what} (default {default})")
    parser.add_argument("--backlog-small", type=_positive, help="orders in the small backlog (see below)")
    parser.add_argument("--backlog", type=_positive, help="orders in the large backlog (see below)")
    parser.add_argument(
        "--backlog-batch-size",
        type=_batch_size,
        default=DEFAULTS.backlog_batch_size,
        help=f"trigger batch size while the backlogs drain (default {DEFAULTS.backlog_batch_size})",
    )
    parser.add_argument(
        "--idle-seconds",
        type=_seconds,
        help="idle window for `labkit serve`'s CPU; 0 skips it (see below)",
    )
    parser.add_argument(
        "--modes", type=_modes, default=MODES, help=f"local clouds to measure (default {','.join(MODES)})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    smoke = args.orders < DEFAULT_ORDERS
    small = args.backlog_small or max(1, args.orders // 10)
    large = args.backlog or max(small, args.orders * (2 if smoke else 10))
    if large < small:
        parser.error(f"--backlog {large} is smaller than the small backlog ({small}).")
    idle = args.idle_seconds
    if idle is None:
        idle = SMOKE_IDLE_S if smoke else DEFAULTS.idle_seconds
    sizes = Sizes(
        orders=args.orders,
        batch_sizes=args.batch_sizes,
        bound_orders=args.bound_orders,
        warm_invocations=args.invocations,
        cold_invocations=args.cold_starts,
        latency_orders=args.latency_orders,
        backlog_small=small,
        backlog_large=large,
        backlog_batch_size=args.backlog_batch_size,
        idle_seconds=idle,
        modes=args.modes,
    )
    result = run_benchmark(sizes)
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


def _batch_size(text: str) -> int:
    sizes = _batch_sizes(text)
    if len(sizes) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one batch size, e.g. 10")
    return sizes[0]


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(f"{text!r} names no known mode: use {', '.join(MODES)} (comma-separated)")
    return modes


def _at_least(lowest: int, parse: Callable[[str], Number], what: str) -> Callable[[str], Number]:
    """An argparse type: *parse* the text as *what*, and refuse a value below *lowest*."""

    def read(text: str) -> Number:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"{value} is not at least {lowest}")
        return value

    return read


_positive = _at_least(1, int, "a whole number")
_seconds = _at_least(0, float, "a number of seconds")
