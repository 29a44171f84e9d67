"""The `labkit` commands on a pipeline that stands in a cloud: up, publish, status, orders, logs, redrive, down.

Each connects through `common.connected_lab()` to a `labkit serve` endpoint or a real account, does one
thing through the facade (`labkit.lab.Lab`) or the resources' teardown, and prints the result for a
person to read, or as JSON where it offers `--json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from labkit.cli import common
from labkit.config import BACKEND_AWS
from labkit.errors import InputError
from labkit.orders import SAMPLE_ORDER, generate_orders


def cmd_up(args: argparse.Namespace) -> int:
    """Build the pipeline and print what stands."""
    pipeline = common.connected_lab().up()
    assert pipeline is not None
    rows = [
        ("table", pipeline.table.name),
        ("topic", pipeline.topic.arn),
        ("queue", f"{pipeline.queue.name} (DLQ {pipeline.dlq.name})"),
        ("subscription", pipeline.subscription.arn),
        ("role", f"{pipeline.role.name} ({pipeline.role.policy})"),
        ("function", pipeline.function.name),
        ("trigger", f"{pipeline.mapping.state}, batch size {pipeline.mapping.batch_size}"),
    ]
    for label, value in rows:
        print(f"{label:<13}{value}")
    return 0


def _orders_from_args(args: argparse.Namespace) -> list[Any]:
    if args.sample:
        return [SAMPLE_ORDER]
    if args.body is not None:
        return [args.body]
    if args.count is not None:
        if args.count < 1:
            raise InputError(f"--count must be 1 or more, not {args.count}.")
        return list(generate_orders(args.count))
    if args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"Cannot read {args.file}: {exc.strerror}.") from exc
        source = str(args.file)
    else:
        text, source = args.json_text, "--json"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{source} is not valid JSON: {exc}. Use --body to send it as it is.") from exc
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(item, dict) for item in items):
        raise InputError(f"{source} must hold an order (a JSON object) or a list of orders.")
    return items


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish what the arguments name."""
    orders = _orders_from_args(args)
    lab = common.connected_lab()
    ids = lab.publish_orders(orders)
    print(f"published {len(ids)} message(s) to {lab.config.topic_name}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print counts of orders, queue and DLQ."""
    lab = common.connected_lab()
    counts = lab.counts()
    problem = lab.delivery_problem()
    if args.json:
        print(json.dumps({**counts, "delivery_problem": problem}))
    else:
        for key, value in counts.items():
            print(f"{key:<17}{'-' if value is None else value}")
        if problem:
            print(f"delivery         {problem}")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    """Print the stored orders."""
    items = common.connected_lab().order_items()
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
    elif not items:
        print("no orders stored")
    else:
        import pandas as pd

        print(pd.DataFrame(items).to_string(index=False))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the function's log events as CloudWatch shows them."""
    from labkit.observe import logs

    try:
        since = logs.parse_since(args.since)
    except ValueError as exc:
        raise InputError(f"--since: {exc}") from exc
    lab = common.connected_lab()
    events = logs.select_events(lab, since, order_id=args.order, request_id=args.request_id)
    if not events:
        which = " and ".join(
            filter(None, [args.order and f"order {args.order}", args.request_id and f"request {args.request_id}"])
        )
        print(f"no log events in {logs.log_group(lab)} {f'for {which} ' if which else ''}in the last {args.since}")
        return 0
    for event in events:
        print(logs.format_event(event))
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    """Move DLQ messages back to the queue."""
    if args.limit is not None and args.limit < 0:
        raise InputError(f"--limit must be 0 or more, not {args.limit}.")
    try:
        moved = common.connected_lab().redrive(limit=args.limit)
    except KeyboardInterrupt:
        print(
            "labkit: redrive interrupted; nothing was lost (each message is sent before it is deleted). "
            "Run `labkit redrive` again to move the rest; a message sent twice is stored once.",
            file=sys.stderr,
        )
        return common.EXIT_ERROR
    print(f"moved {moved} message(s) from the DLQ back to the order queue")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Delete what labkit built; on a real AWS account, after showing it and asking (unless --yes)."""
    from labkit.resources import teardown

    lab = common.connected_lab()
    chosen = teardown.plan(lab.config, lab.clients)
    if lab.config.backend == BACKEND_AWS and chosen.delete and not args.yes:
        print(f"In AWS account {lab.clients.account_id} ({lab.config.region}) labkit down deletes:")
        for found in chosen.delete:
            print(f"  {found.describe()}")
        if not _confirmed(f"Delete {len(chosen.delete)} resource(s)? [y/N] "):
            print("nothing deleted")
            return 1
    removed = teardown.execute(lab.config, lab.clients, chosen)
    gone = [name for name, deleted in removed.items() if deleted]
    if gone:
        print("deleted: " + ", ".join(gone))
    else:
        print(
            "deleted: nothing " + ("(labkit created none of what it found)" if chosen.keep else "(no resources found)")
        )
    for kept in chosen.keep:
        print(f"kept:    {kept.describe()}")
    return 0


def _confirmed(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:  # no terminal to ask: the answer is no
        print()
        return False
    return answer.strip().lower() in ("y", "yes")
