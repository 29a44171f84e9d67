"""Run the mixed load on a fresh in-process local cloud, and with --faults each fault scenario; print the figures.

python -m labkit.experiments            # the mixed load
python -m labkit.experiments --faults   # and each fault scenario
python -m labkit.experiments --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from labkit.experiments.scenarios import SCENARIOS, run_scenario


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios on fresh in-process local clouds and print their figures."""
    parser = argparse.ArgumentParser(prog="python -m labkit.experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", action="store_true", help="run every fault scenario after the mixed load")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="run only these")
    parser.add_argument("--orders", type=int, default=40, help="valid orders in the load (default 40)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the load and the faults (default 7)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be 1 or more")
    names = args.scenario or (list(SCENARIOS) if args.faults else ["mixed-load"])
    results = {}
    for name in names:
        started = time.monotonic()
        figures, notes = run_scenario(name, orders=args.orders, seed=args.seed)
        results[name] = {**figures.as_dict(), **notes, "seconds": round(time.monotonic() - started, 1)}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        columns = ("published", "stored", "dlq", "lost", "duplicated", "stale", "needless_retries", "seconds", "ok")
        print(f"{'scenario':<16}" + "".join(f"{c.replace('_', ' '):>{max(8, len(c) + 2)}}" for c in columns))
        for name, row in results.items():
            cells = ("-" if row[c] is None else row[c] for c in columns)
            print(f"{name:<16}" + "".join(f"{v!s:>{max(8, len(c) + 2)}}" for c, v in zip(columns, cells, strict=True)))
    return 0 if all(row["ok"] for row in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
