"""The `labkit` commands on a pipeline that stands in a cloud: up, publish, status, orders, logs, redrive, down.

Each connects through `common.connected_lab()` to a `labkit serve` endpoint or a real account, does one
thing through the facade (`labkit.lab.Lab`) or the resources' teardown, and prints the result for a
person to read, or as JSON where it offers `--json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from labkit.cli import common
from labkit.config import BACKEND_AWS
from labkit.errors import InputError
from labkit.lambdaerrors import advice
from labkit.orders import SAMPLE_ORDER, generate_orders

# How far back `labkit status` looks for the function's failed invocations.
STATUS_WINDOW = "1h"


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
        ("function", f"{pipeline.function.name} ({pipeline.function.deployed})"),
        ("trigger", f"{pipeline.mapping.state}, batch size {pipeline.mapping.batch_size}"),
    ]
    for label, value in rows:
        print(f"{label:<13}{value}")
    if pipeline.function.warning:
        print(f"warning: {pipeline.function.warning}", file=sys.stderr)
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
    from labkit.observe import logs

    lab = common.connected_lab()
    counts = lab.counts()
    problem = lab.delivery_problem()
    # A log group outlives its function (`labkit down` keeps it): only a function that exists has a status.
    found = logs.invocations(lab, since=logs.parse_since(STATUS_WINDOW)) if lab.function_exists() else []
    failures = [i for i in found if i.failed]
    last = failures[-1] if failures else None
    fine_since = sum(1 for i in found if last is not None and i.start > last.start and not i.failed)
    if args.json:
        failure = (
            {"count": len(failures), "last": last.reason(), "request_id": last.request_id, "ok_since": fine_since}
            if last
            else None
        )
        print(json.dumps({**counts, "delivery_problem": problem, "function_failures": failure}))
    else:
        for key, value in counts.items():
            print(f"{key:<17}{'-' if value is None else value}")
        if problem:
            print(f"delivery         {problem}")
        if last is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(last.start))
            print(
                f"function         {len(failures)} failed invocation(s) in the last {STATUS_WINDOW}; the last, at "
                f"{stamp}: {last.reason()}"
            )
            if fine_since:
                print(f"                 {fine_since} invocation(s) succeeded since then")
            else:
                print(f"                 {last.error.advice() if last.error else advice(last.reason() or '')}")
            print(f"                 its log: labkit logs --request-id {last.request_id}")
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
        if args.order:
            print(_no_order_hint(lab, args.order, args.since))
        # Asked for one order or request, finding none of it is a failure a script can see.
        return 1 if which else 0
    for event in events:
        print(logs.format_event(event))
    return 0


def _no_order_hint(lab: Any, order_id: str, since: str) -> str:
    """Where an order with no invocations in the window may be: stored earlier, still queued, or never sent."""
    if lab.get_order(order_id) is not None:
        return f"Order {order_id} is stored in {lab.config.table_name}: its invocations are older (try --since 1d)."
    return (
        f"No log line names order {order_id}, and it is not in {lab.config.dlq_name}. If it was just published it "
        f"may still be in {lab.config.queue_name} (`labkit status`); otherwise check the id."
    )


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
    chosen = teardown.plan(lab.config, lab.clients, untagged=args.untagged)
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
